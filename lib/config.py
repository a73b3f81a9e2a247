"""Profiles, parameter validation, device choice and seeding.

Every chapter declares its parameters once as a dict of :class:`Param`; the
notebook's ``parameters`` cell leaves them at ``None`` ("the profile's value")
and one call to :func:`resolve` fills, checks and returns them before any
compute, failing with a message that names the bad parameter and what is allowed.
"""

from __future__ import annotations

import ast
import json
import os
import random
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any, Callable, Mapping

import numpy as np
import pandas as pd
import torch
import yaml

from .provenance import RUN_INFO_ENV

PROFILES = ("quick", "paper")
DATASETS = ("digits", "mnist", "fashion-mnist")
# (train, test) points of each image dataset as lib.data.load splits it, and its classes:
# what the size checks of resolve use, without loading anything.
DATASET_SIZES = {"digits": (1347, 450), "mnist": (60000, 10000), "fashion-mnist": (60000, 10000)}
IMAGE_SHAPES = {"digits": (8, 8), "mnist": (28, 28), "fashion-mnist": (28, 28)}  # (height, width)
N_CLASSES = 10
# The widest layer a chapter accepts: a 784 x 65536 float32 layer is 205 MB with its gradient and Adam state
# tripled, far beyond the papers' widths; a wider request is refused before anything is allocated.
MAX_WIDTH = 65536
SEED_MAX = 2**32 - 1  # numpy's seed range; torch accepts more, but every seed must seed all three


class ParameterError(ValueError):
    """A chapter parameter has a value that is not allowed."""


@dataclass(frozen=True)
class Param:
    """One chapter parameter: its type, its value per profile and its constraint.

    ``check`` is one of: ``None``, ``"positive"``, ``"nonnegative"``, ``"unit"``
    (0..1 inclusive) or a callable returning an error string (or ``None``).
    ``min`` and ``max`` are bounds (inclusive) on the value, or on every item of a list.
    ``kind`` is ``int``, ``float``, ``str``, ``bool``, ``list[int]`` style tuples
    ``(list, int)`` / ``(list, float)``, or ``(tuple, int)`` for pairs.
    """

    kind: Any
    quick: Any
    paper: Any = None
    choices: tuple | None = None
    check: str | Callable[[Any], str | None] | None = None
    help: str = ""
    max: float | None = None
    min: float | None = None

    def default(self, profile: str) -> Any:
        """The profile's value (``paper`` falls back to ``quick`` when not given)."""
        if profile == "paper" and self.paper is not None:
            return self.paper
        return self.quick


_CHECKS: dict[str, tuple[Callable[[float], bool], str]] = {
    "positive": (lambda v: v > 0, "> 0"),
    "nonnegative": (lambda v: v >= 0, ">= 0"),
    "unit": (lambda v: 0 <= v <= 1, "in [0, 1]"),
}


def _type_name(kind: Any) -> str:
    if isinstance(kind, tuple):
        return f"a list of {kind[1].__name__}"
    return kind.__name__


def _coerce(name: str, kind: Any, value: Any) -> Any:
    """Coerce ``value`` to ``kind`` or raise a ParameterError naming ``name``."""
    bad = ParameterError(f"parameter {name!r} must be {_type_name(kind)}, got {value!r} ({type(value).__name__})")
    if isinstance(kind, tuple):
        if isinstance(value, str):  # `papermill -p widths "[64, 64]"` passes the text
            try:
                value = yaml.safe_load(value)
            except yaml.YAMLError:
                raise bad from None
        if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
            raise bad
        items = [_coerce(name, kind[1], v) for v in value]
        if not items:
            raise ParameterError(f"parameter {name!r} must be a non-empty list, got {value!r}")
        return items
    if kind is bool:
        if isinstance(value, bool):
            return value
        raise bad
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            if isinstance(value, float) and value.is_integer():
                return int(value)
            raise bad
        return int(value)
    if kind is float:
        if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
            raise bad
        value = float(value)
        if not np.isfinite(value):
            raise ParameterError(f"parameter {name!r} must be finite, got {value!r}")
        return value
    if kind is str:
        if not isinstance(value, str):
            raise bad
        return value
    raise TypeError(f"unsupported parameter kind for {name!r}: {kind!r}")


def validate_value(name: str, spec: Param, value: Any) -> Any:
    """``value`` of parameter ``name`` coerced to its type and checked, or :class:`ParameterError` naming it."""
    value = _coerce(name, spec.kind, value)
    items = value if isinstance(value, list) else [value]
    if spec.choices is not None:
        for v in items:
            if v not in spec.choices:
                allowed = ", ".join(repr(c) for c in spec.choices)
                raise ParameterError(f"parameter {name!r} is {v!r}; allowed values: {allowed}")
    if spec.check is not None:
        for v in items:
            if callable(spec.check):
                msg = spec.check(v)
                if msg:
                    raise ParameterError(f"parameter {name!r} is {v!r}: {msg}")
            else:
                ok, text = _CHECKS[spec.check]
                if not ok(v):
                    raise ParameterError(f"parameter {name!r} must be {text}, got {v!r}")
    for bound, bad, word in ((spec.min, lambda v, b: v < b, ">="), (spec.max, lambda v, b: v > b, "<=")):
        if bound is None:
            continue
        for v in items:
            if bad(v, bound):
                shown = int(bound) if float(bound).is_integer() else bound
                raise ParameterError(f"parameter {name!r} must be {word} {shown}, got {v!r}")
    return value


def check_device(value: str) -> str | None:
    """Return an error message if ``value`` is not a usable device string."""
    if value == "auto":
        return None
    try:
        dev = torch.device(value)
    except (RuntimeError, ValueError):
        return "allowed values: 'auto', 'cpu', 'cuda', 'cuda:N', 'mps'"
    if dev.type not in ("cpu", "cuda", "mps"):
        return "allowed values: 'auto', 'cpu', 'cuda', 'cuda:N', 'mps'"
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            return "CUDA is not available on this machine; use 'cpu' or 'auto'"
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            return f"only {torch.cuda.device_count()} CUDA device(s) are visible"
    if dev.type == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
        return "MPS is not available on this machine; use 'cpu' or 'auto'"
    return None


# Parameters every chapter has; chapters add their own on top.
COMMON: dict[str, Param] = {
    "seed": Param(int, 0, check="nonnegative", max=SEED_MAX, help="seeds torch, numpy and python"),
    "device": Param(str, "auto", check=check_device, help="'auto' picks cuda when available"),
}


def pick_device(name: str | None = None) -> torch.device:
    """``name`` (or ``$BOOK_DEVICE``, or ``auto``) as a torch device; auto = cuda if available."""
    name = name or os.environ.get("BOOK_DEVICE", "auto")
    msg = check_device(name)
    if msg:
        raise ParameterError(f"parameter 'device' is {name!r}: {msg}")
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("cpu")
    return torch.device(name)


def seed_everything(seed: int) -> torch.Generator:
    """Seed python, numpy and torch (all devices); return a CPU generator seeded likewise."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def generator(seed: int, device: torch.device | str = "cpu") -> torch.Generator:
    """A fresh torch generator on ``device`` seeded with ``seed``."""
    return torch.Generator(device=device).manual_seed(seed)


@dataclass
class Checks:
    """What a chapter checks beyond single values (see :func:`register`)."""

    hooks: list[Callable[[SimpleNamespace], Any]] = field(default_factory=list)
    min_per_class: int = 0
    within: dict[str, str] = field(default_factory=dict)


# chapter name ("ch03": the module lib.chapters.ch03) -> (its PARAMS, its checks)
_CHECKS_OF: dict[str, tuple[Mapping[str, Param], Checks]] = {}


def register(
    chapter: str,
    spec: Mapping[str, Param],
    check: Callable[[SimpleNamespace], Any] | None = None,
    *,
    min_per_class: int = 0,
    within: Mapping[str, str] | None = None,
) -> None:
    """Attach a chapter's cross-parameter checks to its spec; :func:`resolve` and ``lib.sweep`` run them.

    ``chapter`` is the chapter's name, its module in ``lib.chapters`` (``"ch03"``), the name
    ``lib.chapters.NOTEBOOKS`` gives its notebook; ``spec`` its ``PARAMS``. Registering a name
    again with another spec (its module re-imported) replaces what it had; one spec may have
    only one name. ``check(cfg)`` raises :class:`ParameterError`; ``min_per_class`` is the
    fewest training and test points per class the chapter's statistics need (``n_train``/
    ``n_test`` and ``dataset`` are checked against it); ``within`` maps parameters that count
    points to the split they are drawn from (``"train"`` or ``"test"``), which they may not exceed.
    """
    other = next((name for name, (s, _) in _CHECKS_OF.items() if s is spec and name != chapter), None)
    if other is not None:
        raise ValueError(f"these parameters are registered as chapter {other!r} already, not {chapter!r}")
    entry = _CHECKS_OF.get(chapter)
    if entry is None or entry[0] is not spec:
        entry = _CHECKS_OF[chapter] = (spec, Checks())
    checks = entry[1]
    if check is not None and check not in checks.hooks:
        checks.hooks.append(check)
    checks.min_per_class = max(checks.min_per_class, min_per_class)
    checks.within.update(within or {})


def dataset_sizes(cfg: Any) -> tuple[int, int]:
    """(train, test) points the chapter gets from ``cfg.dataset``, ``cfg.n_train``, ``cfg.n_test`` (0/None: all)."""
    full = DATASET_SIZES[cfg.dataset]
    asked = (getattr(cfg, "n_train", None), getattr(cfg, "n_test", None))
    return tuple(n if n and n < f else f for n, f in zip(asked, full))


def check_sizes(cfg: Any, checks: Checks) -> None:
    """Enough points per class in each split, and point counts within their split."""
    if getattr(cfg, "dataset", None) not in DATASET_SIZES:
        return
    for split, full in zip(("train", "test"), DATASET_SIZES[cfg.dataset]):
        name = f"n_{split}"
        asked = getattr(cfg, name, None)
        if asked and asked > full:
            raise ParameterError(
                f"parameter {name!r} is {asked} but the {split} set of {cfg.dataset} has {full} "
                f"points; use at most {full} (0 = all)"
            )
        if asked == full:  # the whole split, as 0 asks: one run, one id, one parameter table
            setattr(cfg, name, 0)
    sizes = dict(zip(("train", "test"), dataset_sizes(cfg)))
    need = checks.min_per_class * N_CLASSES
    for split, n in sizes.items():
        if n < need:
            name = f"n_{split}" if hasattr(cfg, f"n_{split}") else "dataset"
            raise ParameterError(
                f"parameter {name!r} gives a {split} set of {n} points; this chapter needs at least {need} "
                f"({checks.min_per_class} per class of {N_CLASSES})"
            )
    for name, split in checks.within.items():
        value = getattr(cfg, name)
        if value > sizes[split]:
            raise ParameterError(
                f"parameter {name!r} is {value} but the {split} set of {cfg.dataset} "
                f"has {sizes[split]} points; use at most {sizes[split]}"
            )


def run_checks(spec: Mapping[str, Param], cfg: SimpleNamespace) -> None:
    """Run the dataset-size checks and cross-parameter hooks registered for ``spec`` (its chapter's)."""
    checks = next((c for s, c in _CHECKS_OF.values() if s is spec), None)
    if checks is None:
        return
    check_sizes(cfg, checks)
    for hook in checks.hooks:
        hook(cfg)


def injected_names(namespace: Mapping[str, Any]) -> set[str]:
    """Names papermill injected into this kernel (its ``# Parameters`` cell, read from the input history)."""
    names: set[str] = set()
    for source in namespace.get("_ih") or []:
        if not (isinstance(source, str) and source.lstrip().startswith("# Parameters")):
            continue
        try:
            tree = ast.parse(source)
        except SyntaxError:
            continue
        for node in tree.body:
            if isinstance(node, ast.Assign):
                names.update(t.id for t in node.targets if isinstance(t, ast.Name))
    return names


def check_dataset(cfg: SimpleNamespace) -> str:
    """Refuse ``cfg.dataset`` if its files are not on this machine and cannot be downloaded.

    A :class:`ParameterError` names the dataset, the folders searched and how to get the
    files (:func:`lib.data.availability`: existence checks only, no file read). Returns the
    note to show when the files will be downloaded, else "".
    """
    if getattr(cfg, "dataset", None) not in DATASETS:
        return ""
    from . import data  # lib.data imports this module

    usable, message = data.availability(cfg.dataset)
    if not usable:
        raise ParameterError(f"parameter 'dataset' is {cfg.dataset!r}, but {message}")
    return message


def resolve_values(
    spec: Mapping[str, Param], given: Mapping[str, Any], *, check_device: bool = True, check_data: bool | None = None
) -> SimpleNamespace:
    """The parameters of ``given`` filled from the profile and validated, all chapter checks run.

    No device is picked and nothing is seeded: this is what ``lib.sweep`` checks a point
    with. ``check_device=False`` leaves ``device`` unchecked (a cluster may have GPUs).
    ``check_data`` (by default as ``check_device``: a cluster may have the data) refuses a
    ``dataset`` whose files are neither on this machine nor downloadable (:func:`check_dataset`).
    """
    full = {**COMMON, **spec}
    unknown = sorted(set(given) - set(full) - {"profile"})
    if unknown:
        raise ParameterError(f"unknown parameter(s) {', '.join(map(repr, unknown))}; known: {', '.join(sorted(full))}")
    profile = given.get("profile") or os.environ.get("BOOK_PROFILE", "quick")
    if profile not in PROFILES:
        raise ParameterError(f"parameter 'profile' is {profile!r}; allowed values: {', '.join(map(repr, PROFILES))}")
    out: dict[str, Any] = {"profile": profile}
    for name, p in full.items():
        value = given.get(name)
        if name == "device":
            value = value or os.environ.get("BOOK_DEVICE") or p.default(profile)
            if check_device:
                value = validate_value(name, p, value)
            out[name] = value
            continue
        out[name] = validate_value(name, p, p.default(profile) if value is None else value)
    cfg = SimpleNamespace(**out)
    run_checks(spec, cfg)
    if check_device if check_data is None else check_data:
        check_dataset(cfg)
    return cfg


def device_name(device: torch.device) -> str:
    """What a device is, for provenance: ``cpu``, ``mps`` or the CUDA device's name."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return device.type


def resolve(spec: Mapping[str, Param], namespace: Mapping[str, Any] | None = None, /, **values: Any) -> SimpleNamespace:
    """Fill a chapter's parameters from its profile, validate them, seed and pick the device.

    ``namespace`` (typically the notebook's ``globals()``) supplies ``profile`` and any
    parameter named in ``spec``; keyword arguments override it. ``None`` means "the
    profile's value". Names papermill injected that the chapter does not know are
    refused, and so are values that fail the chapter's registered checks
    (:func:`register`) and a ``dataset`` whose files are neither here nor downloadable
    (:func:`check_dataset`; a note is printed when they will be downloaded). Raises
    :class:`ParameterError` naming the first bad parameter.
    """
    full = {**COMMON, **spec}
    given: dict[str, Any] = {}
    if namespace is not None:
        unknown = sorted(injected_names(namespace) - set(full) - {"profile"})
        if unknown:
            raise ParameterError(
                f"unknown parameter(s) {', '.join(map(repr, unknown))} (given to papermill); "
                f"known: {', '.join(sorted(full))}"
            )
        given.update({k: namespace[k] for k in (*full, "profile") if k in namespace})
    given.update(values)
    cfg = resolve_values(spec, given, check_data=False)
    note = check_dataset(cfg)  # refuses a dataset that cannot be had; a note when it will be downloaded
    if note:
        print(note)
    cfg.device = pick_device(cfg.device)
    cfg.generator = seed_everything(cfg.seed)
    if os.environ.get(RUN_INFO_ENV):
        with open(os.environ[RUN_INFO_ENV], "w") as f:
            # CPU results depend on the thread count (reductions split across threads round
            # differently), so an exact re-run needs it as much as the device.
            json.dump({"device": device_name(cfg.device), "threads": torch.get_num_threads()}, f)
    return cfg


def describe(spec: Mapping[str, Param], cfg: SimpleNamespace) -> pd.DataFrame:
    """A table of the resolved parameters: value, quick and paper defaults, meaning."""
    full = {**COMMON, **spec}
    rows = [
        {"parameter": k, "value": getattr(cfg, k), "quick": p.quick, "paper": p.default("paper"), "meaning": p.help}
        for k, p in full.items()
    ]
    return pd.DataFrame(rows).set_index("parameter")
