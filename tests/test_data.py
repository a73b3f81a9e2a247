import gzip
import os
import struct

import numpy as np
import pytest
import torch

from lib import data
from lib.config import ParameterError


def write_idx(path, array, compress=True):
    array = np.asarray(array, dtype=np.uint8)
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    payload = header + array.tobytes()
    opener = gzip.open if compress else open
    with opener(path, "wb") as f:
        f.write(payload)
    return payload


def test_read_idx_roundtrip(tmp_path):
    a = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    write_idx(tmp_path / "a.gz", a)
    write_idx(tmp_path / "a", a, compress=False)
    assert np.array_equal(data.read_idx(tmp_path / "a.gz"), a)
    assert np.array_equal(data.read_idx(tmp_path / "a"), a)


def test_truncated_and_corrupted_files_give_clear_errors(tmp_path):
    payload = write_idx(tmp_path / "ok", np.zeros((5, 4, 4)), compress=False)
    (tmp_path / "short").write_bytes(payload[:-7])
    with pytest.raises(data.DataError, match="truncated or corrupted.*delete it"):
        data.read_idx(tmp_path / "short")
    (tmp_path / "magic").write_bytes(b"\x01\x02" + payload[2:])
    with pytest.raises(data.DataError, match="bad magic"):
        data.read_idx(tmp_path / "magic")
    good = gzip.compress(payload)
    (tmp_path / "broken.gz").write_bytes(good[: len(good) // 2])
    with pytest.raises(data.DataError, match="cannot be read"):
        data.read_idx(tmp_path / "broken.gz")


@pytest.fixture
def fake_dataset(tmp_path, monkeypatch):
    """A 'mnist' of 6 train / 4 test 28x28 images served from a local mirror folder."""
    rng = np.random.default_rng(0)
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    arrays = {
        "train-images-idx3-ubyte.gz": rng.integers(0, 256, (6, 28, 28)),
        "train-labels-idx1-ubyte.gz": rng.integers(0, 10, 6),
        "t10k-images-idx3-ubyte.gz": rng.integers(0, 256, (4, 28, 28)),
        "t10k-labels-idx1-ubyte.gz": rng.integers(0, 10, 4),
    }
    sums = {}
    for name, a in arrays.items():
        write_idx(mirror / name, a)
        sums[name] = (data.sha256(mirror / name),)
    monkeypatch.setitem(data.IDX_FILES, "mnist", sums)
    monkeypatch.setitem(data.MIRRORS, "mnist", (mirror.as_uri() + "/",))
    cache = tmp_path / "cache"
    monkeypatch.setenv("BOOK_DATA_DIR", str(cache))
    monkeypatch.setattr(data, "PROJECT_ROOT", tmp_path / "project")
    return arrays, cache


def test_download_verifies_and_writes_atomically(fake_dataset):
    arrays, cache = fake_dataset
    ds = data.load("mnist", value_range=(-1, 1))
    assert ds.x_train.shape == (6, 784) and ds.x_test.shape == (4, 784)
    assert ds.image_shape == (28, 28)
    expected = torch.tensor(arrays["train-images-idx3-ubyte.gz"].reshape(6, -1) / 255.0 * 2 - 1,
                            dtype=torch.float32)
    assert torch.allclose(ds.x_train, expected, atol=1e-6)
    assert sorted(p.name for p in (cache / "mnist").iterdir()) == sorted(arrays)  # no .part left


def test_checksum_mismatch_rejects_download_and_keeps_nothing(fake_dataset, monkeypatch):
    arrays, cache = fake_dataset
    bad = dict(data.IDX_FILES["mnist"])
    bad["t10k-labels-idx1-ubyte.gz"] = ("0" * 64,)
    monkeypatch.setitem(data.IDX_FILES, "mnist", bad)
    with pytest.raises(data.DataError, match="SHA-256 mismatch"):
        data.load("mnist")
    assert not (cache / "mnist" / "t10k-labels-idx1-ubyte.gz").exists()
    assert not [p for p in (cache / "mnist").iterdir() if p.name.endswith(".part")]


def test_corrupted_local_file_is_reported(fake_dataset):
    arrays, cache = fake_dataset
    data.load("mnist")
    target = cache / "mnist" / "train-labels-idx1-ubyte.gz"
    target.write_bytes(target.read_bytes()[:-3])
    with pytest.raises(data.DataError, match="SHA-256 does not match.*delete it"):
        data.load("mnist")


def test_offline_and_missing_says_where_to_put_files(fake_dataset, monkeypatch, tmp_path):
    monkeypatch.setitem(data.MIRRORS, "mnist", ((tmp_path / "nowhere").as_uri() + "/",))
    with pytest.raises(data.DataError, match="(?s)not found. Put the four IDX files.*BOOK_DATA_DIR"):
        data.load("mnist")


def test_unknown_dataset_lists_valid_names():
    with pytest.raises(ParameterError, match="'digits', 'mnist', 'fashion-mnist'"):
        data.load("cifar")


def test_digits_split_range_and_determinism():
    a = data.load("digits", seed=1)
    b = data.load("digits", seed=1, value_range=(-1, 1))
    assert a.x_train.shape == (1347, 64) and a.x_test.shape == (450, 64) and a.n_classes == 10
    assert float(a.x_train.min()) == 0.0 and float(a.x_train.max()) == 1.0
    assert torch.allclose(b.x_train, a.x_train * 2 - 1)
    assert torch.equal(a.y_train, b.y_train)
    sub = data.load("digits", n_train=100, n_test=50, seed=1)
    assert len(sub.x_train) == 100 and len(sub.x_test) == 50


def test_subspace_points_lie_in_the_subspace():
    g = torch.Generator().manual_seed(0)
    s = data.subspace_points(50, d=20, k=3, rule="xor", generator=g)
    proj = s.x @ s.basis @ s.basis.T
    assert torch.allclose(proj, s.x, atol=1e-5)
    assert torch.allclose(s.basis.T @ s.basis, torch.eye(3), atol=1e-5)
    assert set(s.y.tolist()) == {0, 1}
    with pytest.raises(ParameterError, match="1 <= k <= d"):
        data.subspace_points(5, d=3, k=4)
    with pytest.raises(ParameterError, match="'rule'"):
        data.subspace_points(5, d=3, k=2, rule="nosuch")
