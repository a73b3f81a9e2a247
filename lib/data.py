"""Datasets as device-resident tensors: digits (embedded), MNIST / Fashion-MNIST (IDX), synthetic.

Image data come back flattened to ``(N, H*W)`` (``image_shape`` says how to
reshape) and scaled to ``value_range`` (``(0, 1)`` by default, ``(-1, 1)`` on
request). The IDX files are looked for in ``$BOOK_DATA_DIR``, then ``data/`` at
the project root, then Debian's ``/usr/share/datasets/<name>/``; when missing they
are downloaded into the first of those, verified by SHA-256 and written atomically,
so a crash never leaves a half-written file under the final name. Every file found
is verified too: a gzip file by its own SHA-256 or that of its decompressed payload,
an uncompressed one by its payload's (``data/SHA256SUMS``); a file that is another
known dataset's, or another of the same dataset's four files under this one's name, is
named and skipped, never reported as damaged. :func:`availability` says before any
compute (``lib.config.resolve`` asks it) whether a dataset can be had at all.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import os
import socket
import struct
import threading
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from . import locks
from .config import DATASET_SIZES, DATASETS, ParameterError

PROJECT_ROOT = Path(__file__).resolve().parent.parent

# Accepted SHA-256 of each gzip file: the published one (the same bytes on every
# mirror) and, for Fashion-MNIST, Debian's `dataset-fashion-mnist` repack, whose gzip
# headers differ but whose decompressed IDX payload is the same.
IDX_FILES: dict[str, dict[str, tuple[str, ...]]] = {
    "mnist": {
        "train-images-idx3-ubyte.gz": ("440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",),
        "train-labels-idx1-ubyte.gz": ("3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",),
        "t10k-images-idx3-ubyte.gz": ("8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",),
        "t10k-labels-idx1-ubyte.gz": ("f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",),
    },
    "fashion-mnist": {
        "train-images-idx3-ubyte.gz": (
            "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
            "b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7",
        ),
        "train-labels-idx1-ubyte.gz": (
            "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
            "0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056",
        ),
        "t10k-images-idx3-ubyte.gz": (
            "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
            "cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa",
        ),
        "t10k-labels-idx1-ubyte.gz": (
            "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
            "8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05",
        ),
    },
}
SUMS_FILE = PROJECT_ROOT / "data" / "SHA256SUMS"
SYSTEM_DIR = Path("/usr/share/datasets")  # Debian's dataset packages (dataset-fashion-mnist)


def read_sums(path: str | os.PathLike = SUMS_FILE) -> dict[str, dict[str, str]]:
    """SHA-256 of each uncompressed IDX payload, per dataset and file name, from a ``sha256sum`` listing."""
    sums: dict[str, dict[str, str]] = {}
    path = Path(path)
    if not path.is_file():
        return sums
    for line in path.read_text().splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        digest, name = line.split(maxsplit=1)
        dataset, _, filename = name.lstrip("*").partition("/")
        sums.setdefault(dataset, {})[filename] = digest
    return sums


# Payload checksums: what a decompressed (or never compressed) IDX file must hash to.
PAYLOAD_SHA256: dict[str, dict[str, str]] = read_sums()
MIRRORS: dict[str, tuple[str, ...]] = {
    "mnist": (
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
    ),
    "fashion-mnist": (
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
    ),
}
CLASS_NAMES = {
    "digits": [str(i) for i in range(10)],
    "mnist": [str(i) for i in range(10)],
    "fashion-mnist": [
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    ],
}


class DataError(RuntimeError):
    """A dataset file is missing, corrupted or cannot be fetched."""


@dataclass
class Dataset:
    """Train/test tensors on one device, with the facts a chapter needs about them."""

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    image_shape: tuple[int, ...]
    value_range: tuple[float, float]
    class_names: list[str]

    @property
    def n_features(self) -> int:
        return self.x_train.shape[1]

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    def images(self, x: torch.Tensor) -> torch.Tensor:
        """Reshape flat rows to ``(N, 1, H, W)`` for conv nets and plots."""
        return x.reshape(-1, 1, *self.image_shape)

    def __repr__(self) -> str:
        return (
            f"Dataset({self.name!r}, train={tuple(self.x_train.shape)}, "
            f"test={tuple(self.x_test.shape)}, range={self.value_range}, "
            f"device={self.x_train.device})"
        )


# ---------------------------------------------------------------- IDX files


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (optionally gzip-compressed) into a numpy array, checking its size."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as exc:
        raise DataError(f"{path}: cannot be read as an IDX file ({exc}); delete it and retry") from exc
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise DataError(f"{path}: not an IDX file (bad magic number)")
    dtypes = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
    if raw[2] not in dtypes:
        raise DataError(f"{path}: unknown IDX element type 0x{raw[2]:02x}")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path}: truncated IDX header")
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    dtype = np.dtype(dtypes[raw[2]])
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(raw) - header != expected:
        raise DataError(
            f"{path}: truncated or corrupted IDX file: header promises {expected} bytes of data "
            f"for shape {shape}, found {len(raw) - header}; delete it and retry"
        )
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)


def sha256(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def search_dirs(name: str) -> list[Path]:
    """Where the IDX files of dataset ``name`` are looked for, in order."""
    dirs = []
    if os.environ.get("BOOK_DATA_DIR"):
        base = Path(os.environ["BOOK_DATA_DIR"])
        dirs += [base / name, base]
    dirs += [PROJECT_ROOT / "data" / name, SYSTEM_DIR / name]
    return dirs


def payload_sha256(path: str | os.PathLike) -> str | None:
    """Hex SHA-256 of a file's IDX payload (decompressed if ``.gz``); None if it cannot be read."""
    path = Path(path)
    if path.suffix != ".gz":
        return sha256(path)
    h = hashlib.sha256()
    try:
        with gzip.open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    except (OSError, EOFError):
        return None
    return h.hexdigest()


def identify(*digests: str | None) -> str | None:
    """Which known file (``dataset/file``) has one of these SHA-256 (of the file or its payload), or None."""
    for dataset, files in IDX_FILES.items():
        for filename, accepted in files.items():
            if any(d in accepted for d in digests):
                return f"{dataset}/{filename}"
    for dataset, files in PAYLOAD_SHA256.items():
        for filename, digest in files.items():
            if digest in digests:
                return f"{dataset}/{filename}"
    return None


def download(url: str, dest: Path, accepted_sha256: tuple[str, ...], timeout: float = 60) -> Path:
    """Download ``url`` to ``dest`` atomically, keeping it only if its SHA-256 is accepted.

    The partial file is named after this process; partial files of dead processes are removed first.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    locks.remove_stale_temps(dest.parent)
    tmp = locks.temp_name(dest, "part")
    try:
        with open(tmp, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as resp:
            for chunk in iter(lambda: resp.read(1 << 20), b""):
                out.write(chunk)
        got = sha256(tmp)
        if got not in accepted_sha256:
            raise DataError(f"{url}: SHA-256 mismatch (expected {accepted_sha256[0]}, got {got})")
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return dest


PARTS = {
    "train-images": "train images",
    "train-labels": "train labels",
    "t10k-images": "test images",
    "t10k-labels": "test labels",
}


def part(filename: str) -> str:
    """What an IDX file of a dataset holds, by its name: ``t10k-labels-idx1-ubyte.gz`` -> ``test labels``."""
    return PARTS.get(filename.split("-idx")[0], filename)


def idx_shape(path: str | os.PathLike) -> tuple[int, ...] | None:
    """The shape an IDX file's header declares (its first bytes only, gunzipped if ``.gz``); None if unreadable."""
    path = Path(path)
    try:
        with (gzip.open if path.suffix == ".gz" else open)(path, "rb") as f:
            head = f.read(4)
            if len(head) < 4 or head[:2] != b"\0\0" or head[3] == 0:
                return None
            dims = f.read(4 * head[3])
    except (OSError, EOFError):
        return None
    if len(dims) < 4 * head[3]:
        return None
    return struct.unpack(f">{head[3]}I", dims)


def _header_part(name: str, shape: tuple[int, ...]) -> str:
    """What a header's shape says a file of ``name`` holds: ``test labels``, ``train images``, or ``labels``/``images``."""
    kind = "labels" if len(shape) == 1 else "images"
    split = {n: s for s, n in zip(("train", "test"), DATASET_SIZES.get(name, ()))}.get(shape[0])
    return f"{split} {kind}" if split else kind


def _misnamed(name: str, filename: str, path: Path, other: str) -> str:
    """The note for ``path``, found as ``name``'s ``filename``, that is the known file ``other`` (``dataset/file``)."""
    dataset, _, file = other.partition("/")
    if dataset != name:
        return f"{path} is {dataset}'s {file} (not {name}): skipped, kept; its place is {search_dirs(dataset)[0]}/"
    raw = file.removesuffix(".gz")
    if raw == filename.removesuffix(".gz"):  # the right data, compressed or not against its name
        if path.suffix == ".gz":
            return f"{path} holds the {part(raw)} of {name} uncompressed: skipped, kept; rename it to {raw}"
        return f"{path} holds the {part(raw)} of {name} gzip-compressed: skipped, kept; rename it to {raw}.gz"
    right = raw + (".gz" if path.suffix == ".gz" else "")
    beside = path.with_name(right)
    fix = f"{right} is already beside it, so this copy is not needed" if beside.exists() else f"rename it to {right}"
    return f"{path} holds the {part(raw)} of {name}, not the {part(filename)}: skipped, kept; {fix}"


def _verify(name: str, filename: str, path: Path) -> str | None:
    """None if ``path`` is ``name``'s ``filename``; a note if it is another known file; else DataError.

    Another known file is named by its checksum: another dataset's file, or another of this
    dataset's four files under this one's name (the test labels saved as the train images,
    say), which is a good file to rename, never one to delete.
    """
    raw = filename.removesuffix(".gz")
    payload_expected = PAYLOAD_SHA256.get(name, {}).get(raw)
    digest = sha256(path)
    if path.suffix == ".gz" and digest in IDX_FILES[name][filename]:
        return None
    payload = payload_sha256(path) if path.suffix == ".gz" else digest
    if payload_expected is not None and payload == payload_expected:
        return None  # the same data (a repacked gzip, or the uncompressed file)
    other = identify(digest, payload)
    if other is not None:
        return _misnamed(name, filename, path, other)
    if path.suffix != ".gz" and payload_expected is None:
        raise DataError(
            f"{path}: an uncompressed {name} file cannot be verified (no checksum of its payload is "
            f"in data/SHA256SUMS); use the published {filename} instead"
        )
    shape = idx_shape(path)
    expected_kind = "labels" if "-labels-" in filename else "images"
    if shape is not None and ("labels" if len(shape) == 1 else "images") != expected_kind:
        raise DataError(
            f"{path}: SHA-256 matches no known file (got {digest}), and its IDX header declares "
            f"{_header_part(name, shape)} of shape {shape}, not the {part(filename)} its name says: "
            f"a file saved under another's name (rename it) or not {name} (delete it)"
        )
    raise DataError(
        f"{path}: SHA-256 does not match {name}'s {path.name} nor any other known file "
        f"(got {digest}); it is damaged or not {name}: delete it and retry"
    )


def locate(name: str, filename: str, *, allow_download: bool = True) -> Path:
    """Find (or download) one IDX file of ``name``, verified; a clear error when impossible.

    Files of another known dataset, and this dataset's other files under this one's name,
    are skipped with a note naming what they are (shown if nothing else is found); a file
    matching no known checksum stops with a DataError naming it.
    """
    expected = IDX_FILES[name][filename]
    notes = []
    for d in search_dirs(name):
        for stem in (filename, filename.removesuffix(".gz")):
            p = d / stem
            if p.is_file():
                note = _verify(name, filename, p)
                if note is None:
                    return p
                notes.append(note)
    found = "".join(f"\n  {n}" for n in notes)
    if not allow_download:
        raise DataError(_missing_message(name, filename) + found)
    target = search_dirs(name)[0] / filename
    if target.exists():
        raise DataError(_missing_message(name, filename) + found + f"\nNot downloading over {target}.")
    errors = []
    for mirror in MIRRORS[name]:
        try:
            return download(mirror + filename, target, expected)
        except (urllib.error.URLError, OSError, TimeoutError) as exc:
            errors.append(f"{mirror}: {exc}")
    raise DataError(_missing_message(name, filename) + found + "\nDownload failed:\n  " + "\n  ".join(errors))


def _missing_message(name: str, filename: str) -> str:
    where = "\n  ".join(str(d) for d in search_dirs(name))
    return (
        f"{name}: {filename} not found. Put the four IDX files ({', '.join(IDX_FILES[name])}) "
        f"in one of:\n  {where}\nor set BOOK_DATA_DIR, or run once with network access."
    )


# How to get each dataset's files by hand, beyond copying them into one of search_dirs.
HOW_TO_GET = {
    "fashion-mnist": "on Debian or Ubuntu, `apt-get install dataset-fashion-mnist` installs them in "
    "/usr/share/datasets/fashion-mnist/"
}


@functools.lru_cache(maxsize=None)
def _host_resolves(host: str, timeout: float = 3.0) -> bool | None:
    """Whether ``host``'s name resolves (True/False), or None when the lookup gives no answer in ``timeout`` s."""
    answer: list[bool] = []

    def look() -> None:
        try:
            socket.getaddrinfo(host, None)
            answer.append(True)
        except (OSError, UnicodeError):
            answer.append(False)

    thread = threading.Thread(target=look, daemon=True)
    thread.start()
    thread.join(timeout)
    return answer[0] if answer else None


def _mirror_unreachable(url: str) -> str:
    """Why ``url`` surely cannot be fetched ("" when it may be): a local folder missing, a host that does not resolve."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "file":
        folder = Path(urllib.request.url2pathname(parts.path))
        return "" if folder.is_dir() else f"{folder} is no folder"
    proxy = urllib.request.getproxies().get(parts.scheme)
    host = urllib.parse.urlsplit(proxy).hostname if proxy else parts.hostname
    if host and _host_resolves(host) is False:
        return f"{host} does not resolve" + (" (the proxy)" if proxy else "")
    return ""


def _unwritable(folder: Path) -> str:
    """Why files cannot be written into ``folder`` (created if missing), or ""."""
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        return f"{existing} is a file, not a folder"
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"{existing} is not writable"
    return ""


def availability(name: str, *, allow_download: bool = True) -> tuple[bool, str]:
    """Whether dataset ``name`` can be had, decided before any compute: ``(usable, message)``.

    Cheap enough to run for every point of a sweep: it looks only at which files exist
    (none is read or hashed; :func:`locate` verifies each when it is read) and, only when a
    file is missing, whether the download mirrors' hosts resolve (one name lookup per
    host and process, at most 3 s each).

    - ``(True, "")``: no files are needed (``digits``) or each of the four IDX files is on
      disk in one of :func:`search_dirs` (under its ``.gz`` name or uncompressed).
    - ``(True, note)``: some are missing but can be downloaded: the note says which, where
      they were looked for and where they will be written. A mirror counts as reachable
      unless its host surely does not resolve (a lookup that does not answer in time does
      not refuse), so the download itself may still fail, with its own message.
    - ``(False, why)``: refused, the message naming the dataset, where it was looked for
      and how to get it, when ``$BOOK_DATA_DIR`` is set to something that exists and is not
      a folder (a mistake even if a copy is elsewhere: the data would not be read from
      where it points), or when a file is missing and cannot be downloaded (downloads not
      allowed, no mirror reachable, as without network, or the download folder not writable).
      A ``$BOOK_DATA_DIR`` that does not exist is refused only then: the files may be found
      in the other folders, and a download creates it.
    """
    if name not in IDX_FILES:
        return True, ""
    dirs = search_dirs(name)
    env = os.environ.get("BOOK_DATA_DIR")
    if env and Path(env).exists() and not Path(env).is_dir():
        return False, (
            f"{name} cannot be looked for: BOOK_DATA_DIR is {env}, a file, not a folder. Point it at "
            f"the folder that holds the data sets' files (or their {name}/ subfolder), or unset it "
            f"to use data/ and /usr/share/datasets/."
        )
    missing = [
        f for f in IDX_FILES[name] if not any((d / stem).is_file() for d in dirs for stem in (f, f.removesuffix(".gz")))
    ]
    if not missing:
        return True, ""
    searched = (
        f"\nNot found: {', '.join(missing)} (nor uncompressed), looked for in:"
        + "".join(f"\n  {d}" for d in dirs)
        + (f"\n(BOOK_DATA_DIR is {env}, which does not exist.)" if env and not Path(env).exists() else "")
    )
    to_get = (
        f"\nTo get them: copy the four IDX files of {name} into one of those folders, "
        f"or set BOOK_DATA_DIR to the folder holding them (or its {name}/ subfolder)"
        + "".join(f"; {how}" for how in [HOW_TO_GET.get(name)] if how)
        + "; or run once with network access. Or choose another dataset."
    )
    if not allow_download:
        return False, f"{name} is not on this machine, and downloading is not allowed.{searched}{to_get}"
    target = dirs[0]
    why_not = _unwritable(target)
    if why_not:
        return False, (
            f"{name} is not on this machine and cannot be downloaded ({target} cannot be written: "
            f"{why_not}).{searched}{to_get}"
        )
    unreachable = [_mirror_unreachable(url) for url in MIRRORS[name]]
    if all(unreachable):
        return False, (
            f"{name} is not on this machine and cannot be downloaded (no mirror can be reached: "
            f"{'; '.join(unreachable)}).{searched}{to_get}"
        )
    return (
        True,
        f"{name} is not on this machine: it will be downloaded into {target}/ when the data are loaded.{searched}",
    )


def load_idx_dataset(name: str, *, allow_download: bool = True) -> tuple[np.ndarray, ...]:
    """The four arrays (x_train, y_train, x_test, y_test) of an IDX dataset, uint8."""
    files = list(IDX_FILES[name])
    arrays = [read_idx(locate(name, f, allow_download=allow_download)) for f in files]
    xtr, ytr, xte, yte = arrays
    if len(xtr) != len(ytr) or len(xte) != len(yte):
        raise DataError(f"{name}: image and label counts differ ({len(xtr)}/{len(ytr)}, {len(xte)}/{len(yte)})")
    classes = len(CLASS_NAMES[name])
    for split, x, y in (("train", xtr, ytr), ("test", xte, yte)):
        if x.ndim != 3 or y.ndim != 1:
            raise DataError(f"{name}: {split} images must be (N, H, W) and labels (N,), got {x.shape} and {y.shape}")
        if len(y) and (int(y.min()) < 0 or int(y.max()) >= classes):
            raise DataError(
                f"{name}: {split} labels must be classes 0..{classes - 1}, found {int(y.min())}..{int(y.max())}"
            )
    return xtr, ytr, xte, yte


# ---------------------------------------------------------------- loading


def _subsample(x: np.ndarray, y: np.ndarray, n: int | None, rng: np.random.Generator):
    if n is None or n >= len(x):
        return x, y
    idx = np.sort(rng.choice(len(x), size=n, replace=False))
    return x[idx], y[idx]


def load(
    name: str,
    *,
    device: torch.device | str = "cpu",
    value_range: tuple[float, float] = (0.0, 1.0),
    n_train: int | None = None,
    n_test: int | None = None,
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
    allow_download: bool = True,
) -> Dataset:
    """Load dataset ``name`` (one of DATASETS) onto ``device``, flattened and scaled.

    ``n_train``/``n_test`` take a seeded random subset. ``digits`` (1,797 8x8 images
    shipped with scikit-learn) is split 1,347/450 stratified by ``seed``.
    """
    if name not in DATASETS:
        raise ParameterError(f"parameter 'dataset' is {name!r}; allowed values: " + ", ".join(map(repr, DATASETS)))
    lo, hi = value_range
    if not hi > lo:
        raise ParameterError(f"parameter 'value_range' must have max > min, got {value_range}")
    rng = np.random.default_rng(seed)
    if name == "digits":
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split

        d = load_digits()
        x = d.images.reshape(len(d.images), -1) / 16.0
        xtr, xte, ytr, yte = train_test_split(x, d.target, test_size=0.25, random_state=seed, stratify=d.target)
        shape = (8, 8)
    else:
        xtr, ytr, xte, yte = load_idx_dataset(name, allow_download=allow_download)
        shape = tuple(xtr.shape[1:])
        xtr = xtr.reshape(len(xtr), -1) / 255.0
        xte = xte.reshape(len(xte), -1) / 255.0
    xtr, ytr = _subsample(xtr, ytr, n_train, rng)
    xte, yte = _subsample(xte, yte, n_test, rng)

    def to_x(a):
        return (torch.as_tensor(np.asarray(a), dtype=dtype) * (hi - lo) + lo).to(device)

    def to_y(a):
        return torch.as_tensor(np.asarray(a, dtype=np.int64)).to(device)

    return Dataset(name, to_x(xtr), to_y(ytr), to_x(xte), to_y(yte), shape, (float(lo), float(hi)), CLASS_NAMES[name])


# ---------------------------------------------------------------- synthetic


@dataclass
class SubspaceData:
    """Points on a random k-dim linear subspace P of R^d. ``basis`` is (d, k) orthonormal."""

    x: torch.Tensor
    y: torch.Tensor
    basis: torch.Tensor
    coords: torch.Tensor

    @property
    def d(self) -> int:
        return self.basis.shape[0]

    @property
    def k(self) -> int:
        return self.basis.shape[1]


LABEL_RULES = ("sign", "xor", "random")


def random_subspace(
    d: int,
    k: int,
    *,
    generator: torch.Generator | None = None,
    axis_aligned: bool = False,
    device="cpu",
    dtype=torch.float32,
) -> torch.Tensor:
    """An orthonormal (d, k) basis of a uniformly random k-dim subspace (or the first k axes)."""
    if not 1 <= k <= d:
        raise ParameterError(f"parameters must satisfy 1 <= k <= d, got k={k}, d={d}")
    if axis_aligned:
        return torch.eye(d, k, dtype=dtype, device=device)
    g = torch.randn(d, k, generator=generator, dtype=torch.float64)
    q, r = torch.linalg.qr(g)
    q = q * torch.sign(torch.diagonal(r))  # Haar-uniform, not biased by QR's sign convention
    return q.to(device=device, dtype=dtype)


def subspace_points(
    n: int,
    d: int,
    k: int,
    *,
    rule: str = "sign",
    generator: torch.Generator | None = None,
    axis_aligned: bool = False,
    radius: float = 1.0,
    device="cpu",
    dtype=torch.float32,
) -> SubspaceData:
    """``n`` points uniform on a sphere of ``radius`` inside a random k-dim subspace of R^d.

    Labels (+1/-1 as 1/0): ``sign`` of the first coordinate, ``xor`` of the signs of the
    first two coordinates (needs k >= 2), or ``random``.
    """
    if rule not in LABEL_RULES:
        raise ParameterError(f"parameter 'rule' is {rule!r}; allowed values: {', '.join(map(repr, LABEL_RULES))}")
    if rule == "xor" and k < 2:
        raise ParameterError("rule 'xor' needs k >= 2")
    if n < 2:
        raise ParameterError(f"parameter 'n' must be >= 2, got {n}")
    basis = random_subspace(d, k, generator=generator, axis_aligned=axis_aligned, dtype=torch.float64)
    c = torch.randn(n, k, generator=generator, dtype=torch.float64)
    c = radius * c / c.norm(dim=1, keepdim=True)
    if rule == "sign":
        y = (c[:, 0] > 0).long()
    elif rule == "xor":
        y = ((c[:, 0] > 0) ^ (c[:, 1] > 0)).long()
    else:
        y = torch.randint(0, 2, (n,), generator=generator)
    x = c @ basis.T
    return SubspaceData(
        x.to(device=device, dtype=dtype),
        y.to(device),
        basis.to(device=device, dtype=dtype),
        c.to(device=device, dtype=dtype),
    )


def diagonal_points(device="cpu", dtype=torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    """The 7 points ``(r, r)``, ``r = 2i/6 - 1``, of Melamed et al.'s 2-D figure; labels +-1
    alternate along the diagonal and are negative at both ends (their ``diagonal/data.py``)."""
    r = torch.tensor([2 * i / 6 - 1 for i in range(7)], dtype=dtype)
    y = torch.tensor([1.0 if i % 2 else -1.0 for i in range(7)], dtype=dtype)
    return torch.stack([r, r], 1).to(device), y.to(device)


def chessboard_points(z: float = 0.5, device="cpu", dtype=torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    """The 5x5 grid ``{0, .25, .5, .75, 1}^2`` on the plane ``x_3 = z`` of R^3 with XNOR labels
    (+1 where the two grid indices have the same parity), as in Melamed et al.'s ``chess/data.py``."""
    i = torch.cartesian_prod(torch.arange(5), torch.arange(5))
    xy = i.to(dtype) / 4
    y = torch.where(i[:, 0] % 2 == i[:, 1] % 2, 1.0, -1.0).to(dtype)
    return torch.cat([xy, torch.full((25, 1), float(z), dtype=dtype)], 1).to(device), y.to(device)
