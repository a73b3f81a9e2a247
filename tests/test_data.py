import gzip
import hashlib
import os
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from lib import data, locks
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
    expected = torch.tensor(arrays["train-images-idx3-ubyte.gz"].reshape(6, -1) / 255.0 * 2 - 1, dtype=torch.float32)
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


def payloads(arrays):
    """The uncompressed IDX bytes of the fake files."""
    out = {}
    for name, a in arrays.items():
        a = np.asarray(a, dtype=np.uint8)
        out[name.removesuffix(".gz")] = (
            struct.pack(">BBBB", 0, 0, 0x08, a.ndim) + struct.pack(f">{a.ndim}I", *a.shape) + a.tobytes()
        )
    return out


def test_uncompressed_files_are_verified_by_their_payload(fake_dataset, monkeypatch):
    arrays, cache = fake_dataset
    raw = payloads(arrays)
    monkeypatch.setitem(data.PAYLOAD_SHA256, "mnist", {k: hashlib.sha256(v).hexdigest() for k, v in raw.items()})
    (cache / "mnist").mkdir(parents=True)
    for k, v in raw.items():
        (cache / "mnist" / k).write_bytes(v)
    assert data.load("mnist").x_train.shape == (6, 784)  # nothing downloaded: the raw files verify
    assert sorted(p.name for p in (cache / "mnist").iterdir()) == sorted(raw)
    images, labels = cache / "mnist" / "train-images-idx3-ubyte", cache / "mnist" / "train-labels-idx1-ubyte"
    damaged = {
        "flipped pixel": (
            images,
            raw["train-images-idx3-ubyte"][:-1] + bytes([255 - raw["train-images-idx3-ubyte"][-1]]),
        ),
        "zeroed images": (images, raw["train-images-idx3-ubyte"][:16] + bytes(6 * 784)),
        "shuffled labels": (labels, raw["train-labels-idx1-ubyte"][:8] + raw["train-labels-idx1-ubyte"][8:][::-1]),
    }
    for what, (path, content) in damaged.items():
        path.write_bytes(content)
        with pytest.raises(data.DataError, match="SHA-256 does not match mnist's"):
            data.load("mnist")
        path.write_bytes(raw[path.name])
    # Without a payload checksum an uncompressed file cannot be verified: refused, not trusted.
    monkeypatch.setitem(data.PAYLOAD_SHA256, "mnist", {})
    with pytest.raises(data.DataError, match="cannot be verified"):
        data.load("mnist")


def planted_mnist(tmp_path, monkeypatch, arrays: dict):
    """``arrays`` written as IDX files the book knows as 'mnist' (by their checksums) under ``tmp_path/mnist``."""
    folder = tmp_path / "mnist"
    folder.mkdir()
    for name, a in arrays.items():
        write_idx(folder / name, a)
    monkeypatch.setitem(data.IDX_FILES, "mnist", {n: (data.sha256(folder / n),) for n in arrays})
    monkeypatch.setenv("BOOK_DATA_DIR", str(tmp_path))
    return folder


def test_labels_outside_the_classes_are_refused(tmp_path, monkeypatch):
    arrays = {
        "train-images-idx3-ubyte.gz": np.zeros((3, 28, 28)),
        "train-labels-idx1-ubyte.gz": [1, 200, 2],
        "t10k-images-idx3-ubyte.gz": np.zeros((2, 28, 28)),
        "t10k-labels-idx1-ubyte.gz": [0, 1],
    }
    planted_mnist(tmp_path, monkeypatch, arrays)
    with pytest.raises(data.DataError, match=r"train labels must be classes 0..9, found 1..200"):
        data.load("mnist", allow_download=False)


def fake_fashion(folder, monkeypatch):
    """Files that the book knows as 'fashion-mnist' (by their checksums), written into ``folder``."""
    rng = np.random.default_rng(1)
    folder.mkdir(parents=True, exist_ok=True)
    sums = {}
    for name, shape in (
        ("train-images-idx3-ubyte.gz", (5, 28, 28)),
        ("train-labels-idx1-ubyte.gz", (5,)),
        ("t10k-images-idx3-ubyte.gz", (3, 28, 28)),
        ("t10k-labels-idx1-ubyte.gz", (3,)),
    ):
        write_idx(folder / name, rng.integers(0, 10, shape))
        sums[name] = (data.sha256(folder / name),)
    monkeypatch.setitem(data.IDX_FILES, "fashion-mnist", sums)


def test_another_datasets_file_is_named_and_never_called_damaged(fake_dataset, monkeypatch, tmp_path):
    arrays, cache = fake_dataset
    fake_fashion(cache, monkeypatch)  # at the top of BOOK_DATA_DIR, under the names mnist uses too
    monkeypatch.setitem(data.MIRRORS, "mnist", ((tmp_path / "nowhere").as_uri() + "/",))
    with pytest.raises(data.DataError) as err:
        data.load("mnist")
    message = str(err.value)
    assert "is fashion-mnist's train-images-idx3-ubyte.gz (not mnist): skipped, kept" in message
    assert "delete" not in message and (cache / "train-images-idx3-ubyte.gz").exists()
    # With the real mnist files reachable they are downloaded next to it; the other set stays.
    monkeypatch.setitem(data.MIRRORS, "mnist", (fake_dataset_mirror(tmp_path),))
    assert data.load("mnist").x_train.shape == (6, 784)
    assert data.load("fashion-mnist", allow_download=False).x_train.shape == (5, 784)


def skip_unless_ci(why: str) -> None:
    """Skip on a machine without real data; in CI (which installs it: .ci/run) a missing dataset is a failure."""
    if os.environ.get("CI"):
        pytest.fail(f"{why}, in CI: .ci/run installs it")
    pytest.skip(why)


def fake_dataset_mirror(tmp_path):
    return (tmp_path / "mirror").as_uri() + "/"


def test_real_fashion_mnist_under_the_mnist_name_is_refused(monkeypatch, tmp_path):
    real = "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"
    if not os.path.exists(real):
        skip_unless_ci("Debian's dataset-fashion-mnist is not installed")
    (tmp_path / "mnist").mkdir()
    os.symlink(real, tmp_path / "mnist" / "train-images-idx3-ubyte.gz")
    monkeypatch.setenv("BOOK_DATA_DIR", str(tmp_path))
    with pytest.raises(data.DataError, match=r"is fashion-mnist's train-images-idx3-ubyte.gz \(not mnist\)"):
        data.locate("mnist", "train-images-idx3-ubyte.gz", allow_download=False)


def test_partial_downloads_of_dead_processes_are_removed(fake_dataset):
    arrays, cache = fake_dataset
    (cache / "mnist").mkdir(parents=True)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    host = locks.HOST.split(".")[0]
    stale = cache / "mnist" / f".train-images-idx3-ubyte.gz.{host}-{int(dead.stdout)}.part"
    stale.write_bytes(b"half")
    data.load("mnist")
    assert not stale.exists()


@pytest.fixture
def no_data(tmp_path, monkeypatch):
    """No dataset anywhere: BOOK_DATA_DIR an empty folder, data/ and the system folder in tmp_path; offline."""
    monkeypatch.setattr(data, "PROJECT_ROOT", tmp_path / "project")
    monkeypatch.setattr(data, "SYSTEM_DIR", tmp_path / "system")
    cache = tmp_path / "cache"
    cache.mkdir()
    monkeypatch.setenv("BOOK_DATA_DIR", str(cache))
    monkeypatch.setattr(data, "_host_resolves", lambda host: False)
    return cache


def test_availability_reads_no_file_and_says_where_it_looked_and_how_to_get_the_data(no_data, monkeypatch, tmp_path):
    def no_reading(*args, **kwargs):
        raise AssertionError("availability reads or hashes a file")

    monkeypatch.setattr(data, "sha256", no_reading)
    monkeypatch.setattr(data, "read_idx", no_reading)
    assert data.availability("digits") == (True, "")
    usable, message = data.availability("fashion-mnist")
    assert not usable
    assert message.startswith(
        "fashion-mnist is not on this machine and cannot be downloaded (no mirror can be "
        "reached: fashion-mnist.s3-website.eu-central-1.amazonaws.com does not resolve; "
        "raw.githubusercontent.com does not resolve)."
    )
    for folder in (
        no_data / "fashion-mnist",
        no_data,
        tmp_path / "project" / "data" / "fashion-mnist",
        tmp_path / "system" / "fashion-mnist",
    ):
        assert f"\n  {folder}\n" in message
    assert "To get them: copy the four IDX files of fashion-mnist into one of those folders" in message
    assert "apt-get install dataset-fashion-mnist" in message
    # Present (empty files will do: only their existence is looked at), gzip or not, in any of the folders.
    (tmp_path / "system" / "fashion-mnist").mkdir(parents=True)
    for i, name in enumerate(data.IDX_FILES["fashion-mnist"]):
        (tmp_path / "system" / "fashion-mnist" / (name if i % 2 else name.removesuffix(".gz"))).touch()
    assert data.availability("fashion-mnist") == (True, "")
    assert not data.availability("mnist", allow_download=False)[0]


def test_missing_files_that_can_be_downloaded_are_announced_not_refused(no_data, monkeypatch, tmp_path):
    monkeypatch.setattr(data, "_host_resolves", lambda host: True)
    (no_data / "mnist").mkdir()
    (no_data / "mnist" / "train-labels-idx1-ubyte.gz").touch()
    usable, note = data.availability("mnist")
    assert usable and note.startswith(f"mnist is not on this machine: it will be downloaded into {no_data / 'mnist'}/")
    assert "Not found: train-images-idx3-ubyte.gz, t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz" in note
    # A local mirror is reachable when its folder exists; a name lookup that never answers does not refuse.
    monkeypatch.setattr(data, "_host_resolves", lambda host: None)
    assert data.availability("mnist")[0]
    monkeypatch.setattr(data, "_host_resolves", lambda host: False)
    monkeypatch.setitem(data.MIRRORS, "mnist", (tmp_path.as_uri() + "/",))
    assert data.availability("mnist")[0]
    monkeypatch.setitem(data.MIRRORS, "mnist", ((tmp_path / "nowhere").as_uri() + "/",))
    assert f"no mirror can be reached: {tmp_path / 'nowhere'} is no folder" in data.availability("mnist")[1]


def test_book_data_dir_that_is_a_file_or_missing(no_data, monkeypatch, tmp_path):
    a_file = tmp_path / "notes.txt"
    a_file.write_text("x")
    monkeypatch.setenv("BOOK_DATA_DIR", str(a_file))
    usable, message = data.availability("mnist")
    assert not usable and message.startswith(
        f"mnist cannot be looked for: BOOK_DATA_DIR is {a_file}, a file, not a folder"
    )
    # A missing BOOK_DATA_DIR: fine when the files are elsewhere or can be downloaded into it, said otherwise.
    monkeypatch.setenv("BOOK_DATA_DIR", str(tmp_path / "typo"))
    usable, message = data.availability("mnist")
    assert not usable and f"(BOOK_DATA_DIR is {tmp_path / 'typo'}, which does not exist.)" in message
    monkeypatch.setattr(data, "_host_resolves", lambda host: True)
    assert data.availability("mnist")[0]
    # ... but not below a file: nothing can be written there.
    monkeypatch.setenv("BOOK_DATA_DIR", str(a_file / "sub"))
    usable, message = data.availability("mnist")
    assert (
        not usable
        and f"cannot be downloaded ({a_file / 'sub' / 'mnist'} cannot be written: {a_file} is a file" in message
    )


def test_a_name_that_does_not_resolve_is_not_reachable():
    assert data._host_resolves("mirror.invalid") in (False, None)  # None: no answer within the time allowed


@pytest.fixture
def fashion_here(no_data, monkeypatch):
    """Fake Fashion-MNIST files the book knows by their checksums, in BOOK_DATA_DIR/fashion-mnist/, and nowhere else."""
    folder = no_data / "fashion-mnist"
    fake_fashion(folder, monkeypatch)
    monkeypatch.setitem(data.MIRRORS, "fashion-mnist", ((no_data / "nowhere").as_uri() + "/",))
    return folder


def test_a_file_of_the_same_dataset_under_another_ones_name_is_named_never_called_damaged(fashion_here):
    images, labels = fashion_here / "train-images-idx3-ubyte.gz", fashion_here / "t10k-labels-idx1-ubyte.gz"
    images.write_bytes(labels.read_bytes())  # the test labels saved as the train images
    with pytest.raises(data.DataError) as err:
        data.load("fashion-mnist")
    message = str(err.value)
    assert (
        f"{images} holds the test labels of fashion-mnist, not the train images: skipped, kept; "
        f"t10k-labels-idx1-ubyte.gz is already beside it, so this copy is not needed"
    ) in message
    assert "damaged" not in message and "delete" not in message
    labels.unlink()  # the only copy of the test labels: its right name is said
    with pytest.raises(
        data.DataError,
        match=r"holds the test labels of fashion-mnist, not the train images: "
        r"skipped, kept; rename it to t10k-labels-idx1-ubyte.gz",
    ):
        data.load("fashion-mnist", allow_download=False)
    images.rename(labels)
    # A gzip file without its .gz ending is the right file in the wrong form.
    images.with_suffix("").write_bytes(labels.read_bytes())
    (fashion_here / "t10k-images-idx3-ubyte.gz").rename(fashion_here / "t10k-images-idx3-ubyte")
    with pytest.raises(
        data.DataError,
        match=r"t10k-images-idx3-ubyte holds the test images of fashion-mnist "
        r"gzip-compressed: skipped, kept; rename it to t10k-images-idx3-ubyte.gz",
    ):
        data.locate("fashion-mnist", "t10k-images-idx3-ubyte.gz", allow_download=False)


def test_an_unknown_labels_file_under_an_images_name_is_named_by_its_header(fashion_here):
    write_idx(fashion_here / "train-images-idx3-ubyte.gz", np.arange(10) % 10)
    with pytest.raises(data.DataError) as err:
        data.locate("fashion-mnist", "train-images-idx3-ubyte.gz", allow_download=False)
    assert (
        "its IDX header declares labels of shape (10,), not the train images its name says: a file saved "
        "under another's name (rename it) or not fashion-mnist (delete it)"
    ) in str(err.value)
    assert data.idx_shape(fashion_here / "train-labels-idx1-ubyte.gz") == (5,)
    assert data._header_part("fashion-mnist", (10000,)) == "test labels"


def test_real_fashion_mnist_test_labels_under_the_train_images_name_are_named(no_data, tmp_path):
    real = data.Path("/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz")
    if not real.exists():
        skip_unless_ci("Debian's dataset-fashion-mnist is not installed")
    (no_data / "fashion-mnist").mkdir()
    os.symlink(real, no_data / "fashion-mnist" / "train-images-idx3-ubyte.gz")
    with pytest.raises(
        data.DataError,
        match=r"holds the test labels of fashion-mnist, not the train images: "
        r"skipped, kept; rename it to t10k-labels-idx1-ubyte.gz",
    ):
        data.locate("fashion-mnist", "train-images-idx3-ubyte.gz", allow_download=False)


def test_an_unknown_labels_file_of_a_known_split_size_is_named_with_its_split(fashion_here):
    """A header declaring 10,000 labels (fashion-mnist's test size) is called the test labels, 60,000 the train
    labels, by the dataset's sizes; other sizes are just labels (the test above)."""
    for n, what in ((10000, "test labels"), (60000, "train labels")):
        write_idx(fashion_here / "train-images-idx3-ubyte.gz", np.arange(n) % 7)  # no known file: 7 classes
        with pytest.raises(data.DataError, match=rf"its IDX header declares {what} of shape \({n},\), not the train"):
            data.locate("fashion-mnist", "train-images-idx3-ubyte.gz", allow_download=False)


def test_idx_shape_refuses_a_bad_magic_number_and_a_zero_dimensional_header(tmp_path):
    """The header's shape is read only behind the magic ``0 0`` and with at least one dimension."""
    good = struct.pack(">BBBB", 0, 0, 0x08, 2) + struct.pack(">2I", 3, 4) + bytes(12)
    (tmp_path / "good").write_bytes(good)
    (tmp_path / "magic").write_bytes(b"\x01\x00" + good[2:])  # one bad magic byte, ndim 2
    (tmp_path / "magic2").write_bytes(b"\x00\x01" + good[2:])
    (tmp_path / "ndim0").write_bytes(struct.pack(">BBBB", 0, 0, 0x08, 0) + bytes(8))
    (tmp_path / "short").write_bytes(good[:3])
    (tmp_path / "dims").write_bytes(good[:9])  # a header cut inside its second dimension
    assert data.idx_shape(tmp_path / "good") == (3, 4)
    for name in ("magic", "magic2", "ndim0", "short", "dims"):
        assert data.idx_shape(tmp_path / name) is None, name


def test_test_split_labels_outside_the_classes_are_refused_by_name(tmp_path, monkeypatch):
    """Train labels in range, test labels not: the message names the test split (and its range)."""
    arrays = {
        "train-images-idx3-ubyte.gz": np.zeros((3, 28, 28)),
        "train-labels-idx1-ubyte.gz": [1, 9, 2],
        "t10k-images-idx3-ubyte.gz": np.zeros((2, 28, 28)),
        "t10k-labels-idx1-ubyte.gz": [10, 3],
    }
    folder = planted_mnist(tmp_path, monkeypatch, arrays)
    with pytest.raises(data.DataError, match=r"^mnist: test labels must be classes 0..9, found 3..10$"):
        data.load("mnist", allow_download=False)
    write_idx(folder / "t10k-images-idx3-ubyte.gz", np.zeros((2, 784)))  # flat test images
    write_idx(folder / "t10k-labels-idx1-ubyte.gz", [0, 3])
    monkeypatch.setitem(data.IDX_FILES, "mnist", {n: (data.sha256(folder / n),) for n in arrays})
    with pytest.raises(data.DataError, match=r"^mnist: test images must be \(N, H, W\) and labels \(N,\)"):
        data.load("mnist", allow_download=False)


def test_axis_aligned_subspace_is_the_first_k_axes():
    basis = data.random_subspace(5, 2, axis_aligned=True, dtype=torch.float64)
    expected = torch.zeros(5, 2, dtype=torch.float64)
    expected[0, 0] = expected[1, 1] = 1.0
    assert torch.equal(basis, expected)
    with pytest.raises(ParameterError, match="1 <= k <= d"):
        data.random_subspace(3, 0)


def test_xor_labels_need_two_coordinates_and_k_2_suffices():
    """``xor`` at its boundary k = 2: labels are the XOR of the signs of the two coordinates; k = 1 is refused."""
    s = data.subspace_points(40, d=5, k=2, rule="xor", generator=torch.Generator().manual_seed(1))
    assert s.y.tolist() == [int((a > 0) != (b > 0)) for a, b in s.coords.tolist()]
    assert set(s.y.tolist()) == {0, 1}
    with pytest.raises(ParameterError, match="rule 'xor' needs k >= 2"):
        data.subspace_points(40, d=5, k=1, rule="xor")


def test_diagonal_points_by_hand():
    """Seven points ``(r, r)`` from -1 to 1 in steps of 1/3, labels -, +, -, +, -, +, -."""
    x, y = data.diagonal_points(dtype=torch.float64)
    r = torch.tensor([-1, -2 / 3, -1 / 3, 0, 1 / 3, 2 / 3, 1], dtype=torch.float64)
    torch.testing.assert_close(x, torch.stack([r, r], 1))
    assert y.tolist() == [-1.0, 1.0, -1.0, 1.0, -1.0, 1.0, -1.0]


def test_chessboard_points_by_hand():
    """The 5x5 grid of step 1/4 at height z; +1 where both indices have the same parity (13 of 25 points)."""
    x, y = data.chessboard_points(z=0.25)
    assert x.shape == (25, 3) and (x[:, 2] == 0.25).all()
    labels = {(round(a * 4), round(b * 4)): v for (a, b, _), v in zip(x.tolist(), y.tolist())}
    assert len(labels) == 25 and set(labels) == {(i, j) for i in range(5) for j in range(5)}
    assert labels[(0, 0)] == labels[(1, 1)] == labels[(4, 2)] == 1.0
    assert labels[(0, 1)] == labels[(3, 4)] == -1.0
    assert int((y == 1).sum()) == 13 and int((y == -1).sum()) == 12


def test_subsample_draws_distinct_points_in_order():
    """A subsample is n different points (no point twice), kept in their original order, labels alongside."""
    x = np.arange(200) * 10
    xs, ys = data._subsample(x, np.arange(200), 199, np.random.default_rng(0))
    assert len(np.unique(ys)) == 199 and np.array_equal(ys, np.sort(ys)) and np.array_equal(xs, ys * 10)
    same = data._subsample(x, np.arange(200), 200, np.random.default_rng(0))  # n = len: everything, as is
    assert same[0] is x


def test_download_writes_its_partial_file_beside_the_destination(tmp_path, monkeypatch):
    """The partial file is .NAME.HOST-PID.part in the destination's folder (so a dead writer's is found there).

    The source is a local file (a file:// URL): nothing is downloaded.
    """
    src = tmp_path / "src.bin"
    src.write_bytes(b"payload")
    dest = tmp_path / "out" / "f.gz"
    moved = []
    real_replace = os.replace
    monkeypatch.setattr(data.os, "replace", lambda a, b: moved.append(Path(a)) or real_replace(a, b))
    data.download(src.as_uri(), dest, (data.sha256(src),))
    assert dest.read_bytes() == b"payload"
    assert moved == [locks.temp_name(dest, "part")] and moved[0].parent == dest.parent
    assert moved[0].name.startswith(".f.gz.") and moved[0].name.endswith(".part")


@pytest.mark.parametrize(
    "code, dtype, values",
    [(0x0D, ">f4", [1.5, -2.25, 0.0]), (0x0E, ">f8", [1e-300, -3.5, 7.0]), (0x0B, ">i2", [-300, 2, 32767])],
)
def test_read_idx_reads_float_and_wide_integer_types(tmp_path, code, dtype, values):
    """IDX element types 0x0B (int16), 0x0D (float32), 0x0E (float64) are big-endian: planted values come back."""
    a = np.array(values, dtype=dtype)
    (tmp_path / "a").write_bytes(struct.pack(">BBBBI", 0, 0, code, 1, len(a)) + a.tobytes())
    got = data.read_idx(tmp_path / "a")
    assert got.dtype == np.dtype(dtype) and got.tolist() == values


def test_read_sums_of_a_missing_or_planted_listing(tmp_path):
    """No listing gives an empty dict; a listing gives dataset -> file -> digest, skipping blanks and comments."""
    assert data.read_sums(tmp_path / "nosuch") == {}
    listing = tmp_path / "SHA256SUMS"
    listing.write_text("# comment\n\n" + "a" * 64 + " *mnist/train-labels-idx1-ubyte\n" + "b" * 64 + "  fashion/x\n")
    assert data.read_sums(listing) == {"mnist": {"train-labels-idx1-ubyte": "a" * 64}, "fashion": {"x": "b" * 64}}


def test_sign_rule_labels_by_the_first_coordinate():
    """Rule 'sign' labels a point 1 exactly when its first subspace coordinate is positive (not the second)."""
    s = data.subspace_points(200, d=6, k=3, rule="sign", generator=torch.Generator().manual_seed(3))
    assert torch.equal(s.y, (s.coords[:, 0] > 0).long())
    assert not torch.equal(s.y, (s.coords[:, 1] > 0).long())  # the planted data can tell the two apart
