"""The protocol every run configuration follows, and the tail every record carries.

A run configuration is a frozen dataclass holding everything one run depends on. Each kind (``RunConfig`` for
one-vs-rest runs with Outlier Exposure, ``SADConfig`` for Deep SVDD / Deep SAD, ``CLADConfig`` and ``OCSVMConfig``
for the CLAD pipeline and its baseline) implements the same small surface, so one runner
(:func:`adcore.runner.execute`) stores, groups, retries and distributes all of them:

* ``key()``: the fields that define the result, JSON-friendly, data paths left out: the results store's key;
* ``replace(**changes)``: a copy with some fields changed (validated again);
* ``run(device, progress) -> record``: train and evaluate; a flat, JSON-able dict;
* ``group_key()``: configurations with equal keys can share K-model training steps (``None``: run alone), and
  ``run_group(configs, ...)`` runs such a group;
* ``validate()``: called on construction, so a bad value fails before any work starts, with a message that
  names the value and what is allowed. Before it, every field is checked against its annotation (a string where
  an integer belongs fails here, numpy scalars become Python numbers, lists for tuple fields become tuples) and
  every path field that is given (``PATHS``) and ``$ADCORE_DATA`` must exist: a given path is used or fails.
"""
from __future__ import annotations

import ast
import contextlib
import dataclasses
import functools
import json
import math
import os
import platform
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Callable, ClassVar, Hashable, Iterable, Iterator, Sequence

import numpy as np
import torch

from ._version import __version__
from .environment import data_env


class ConfigError(ValueError):
    """A setting outside what a run can use; raised on construction, before any work starts."""


def check_choice(name: str, value: Any, allowed: Iterable[Any]) -> None:
    allowed = tuple(allowed)
    if value not in allowed:
        raise ConfigError(f"unknown {name} {value!r}; choose one of {', '.join(map(repr, allowed))}")


def check_range(name: str, value: Any, lo: float | None = None, hi: float | None = None, *,
                integer: bool = False, optional: bool = False, lo_open: bool = False) -> None:
    """``value`` must be a finite number (an int when ``integer``) in [lo, hi] ((lo, hi] when ``lo_open``)."""
    if value is None and optional:
        return
    kind = int if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kind) or not math.isfinite(value):
        raise ConfigError(f"{name}={value!r} must be {'an integer' if integer else 'a finite number'}"
                          + (" or None" if optional else ""))
    if lo is not None and (value <= lo if lo_open else value < lo) or hi is not None and value > hi:
        if hi is None:
            bounds = f"{'>' if lo_open else '>='} {lo:g}"
        elif lo is None:
            bounds = f"<= {hi:g}"
        else:
            bounds = f"in {'(' if lo_open else '['}{lo:g}, {hi:g}]"
        raise ConfigError(f"{name}={value!r} must be {bounds}" + (" (or None)" if optional else ""))


def check_classes(name: str, value: Any, n_classes: int, dataset: str = "") -> None:
    """``value``: one class index or a tuple of distinct ones, in 0..n_classes-1, not all of them (the test set
    would have no anomalies)."""
    classes = value if isinstance(value, tuple) else (value,)
    where = f" of {dataset}" if dataset else ""
    if not classes:
        raise ConfigError(f"{name}=() names no class; give one class or several, e.g. 0 or 0,1")
    bad = [c for c in classes if not 0 <= c < n_classes]
    if bad:
        raise ConfigError(f"{name}={value!r}: class {bad[0]} out of range; the classes{where} are 0..{n_classes - 1}")
    repeated = sorted({c for c in classes if classes.count(c) > 1})
    if repeated:
        raise ConfigError(f"{name}={value!r} repeats class {repeated[0]}; give each class once")
    if len(classes) >= n_classes:
        raise ConfigError(f"{name}={value!r} makes every class{where} normal: the test set would have no anomalies")


def check_common(spec: Any, positive: Iterable[str] = (), rates: Iterable[str] = (), fractions: Iterable[str] = (),
                 classes: int | None = None) -> None:
    """Range checks shared by the run configurations: ``positive`` integer fields >= 1 (epochs, batch sizes),
    ``rates`` > 0 (learning rates), ``fractions`` in [0, 1] (``nu`` in (0, 1]); ``seed`` >= 0, ``n_train`` /
    ``n_test`` >= 1 or None where the config has them; ``normal_class`` within ``classes`` classes when given."""
    for name in positive:
        check_range(name, getattr(spec, name), 1, integer=True)
    for name in rates:
        check_range(name, getattr(spec, name), 0, lo_open=True)
    for name in fractions:
        check_range(name, getattr(spec, name), 0, 1, lo_open=name == "nu")
    if hasattr(spec, "seed"):
        check_range("seed", spec.seed, 0, integer=True)
    for name in ("n_train", "n_test"):
        if hasattr(spec, name):
            check_range(name, getattr(spec, name), 1, integer=True, optional=True)
    if classes is not None:
        check_classes("normal_class", spec.normal_class, classes, getattr(spec, "dataset", ""))


def check_path(name: str, value: Any) -> None:
    """A path that is given must exist (it is used or the run fails; no silent fallback to other data)."""
    if value is not None and not Path(os.path.expanduser(str(value))).exists():
        raise ConfigError(f"{name}={str(value)!r}: no such file or folder; give an existing path, or leave "
                          f"{name} unset to use the default locations")


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb", *, prefix: str | None = None,
                 fsync: bool = False) -> Iterator[IO[Any]]:
    """A hidden temporary file beside ``path`` (``prefix``, default ``.<name>.``, then ``.part``), renamed onto
    ``path`` when the block succeeds: readers see the old file or the new one whole; on any failure the temporary
    file is removed and ``path`` is left as it was. ``fsync``: on disk before the rename."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=prefix or f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, mode) as f:
            yield f
            if fsync:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def check_results(value: Any, name: str = "results") -> None:
    """A results store is a folder: an existing path that is not one (a file) is refused before any run, not
    at the first record's ``mkdir`` (``FileExistsError``)."""
    if value is not None and Path(os.path.expanduser(str(value))).exists() \
            and not Path(os.path.expanduser(str(value))).is_dir():
        raise ConfigError(f"{name}={str(value)!r} is a file, not a folder; give a results folder (new or existing)")


def check_data_env() -> None:
    """``$ADCORE_DATA``, when set, must name an existing folder (it is used or fails, as ``data_root``)."""
    env = data_env()
    if env and not Path(env).is_dir():
        raise ConfigError(f"$ADCORE_DATA={env!r}: no such folder; point it at the data folder or unset it")


def check_device(device: Any) -> None:
    """``None``/"auto" (CUDA when present, else CPU), or a device this machine has: "cpu", "cuda", "cuda:N",
    "mps". Asking for CUDA where there is none fails here, in one line, not in the driver at the first step."""
    if device is None or device == "auto":
        return
    try:
        dev = device if isinstance(device, torch.device) else torch.device(str(device))
    except (RuntimeError, ValueError, TypeError):
        raise ConfigError(f"device={device!r} is not a device; use cpu, cuda or cuda:N (default: CUDA when "
                          "present, else cpu)") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"device={str(device)!r} asked for, but this machine has no usable CUDA device "
                              "(torch.cuda.is_available() is False); use --device cpu or leave --device unset")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ConfigError(f"device={str(device)!r}: this machine has {torch.cuda.device_count()} CUDA "
                              f"device(s), cuda:0..cuda:{torch.cuda.device_count() - 1}")
    elif dev.type == "mps":
        if not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
            raise ConfigError(f"device={str(device)!r} asked for, but MPS is not available on this machine")
    elif dev.type not in ("cpu", "meta"):
        raise ConfigError(f"device={str(device)!r} is not supported; use cpu, cuda or cuda:N")


_KIND_NAMES = {"int": "an integer", "float": "a number", "str": "a string", "bool": "True or False", "None": "None"}


def _describe_type(annotation: str) -> str:
    names = []
    for alt in annotation.split(" | "):
        if alt.startswith("tuple["):
            inner = alt[len("tuple["):].split(",")[0].strip()
            names.append(f"a tuple of {_KIND_NAMES.get(inner, inner).split(' ', 1)[-1]}s (e.g. 1,2)")
        else:
            names.append(_KIND_NAMES.get(alt, alt))
    return " or ".join(names)


_NO = object()


def _conform_one(value: Any, alt: str) -> Any:
    """``value`` as type ``alt`` (one alternative of an annotation), or ``_NO``."""
    if alt == "None":
        return None if value is None else _NO
    if alt == "bool":
        return bool(value) if isinstance(value, (bool, np.bool_)) else _NO
    if isinstance(value, (bool, np.bool_)):
        return _NO
    if alt == "int":
        return value if type(value) is int else int(value) if isinstance(value, (int, np.integer)) else _NO
    if alt == "float":
        if isinstance(value, np.integer):
            return int(value)
        if isinstance(value, np.floating):
            return float(value)
        return value if isinstance(value, (int, float)) else _NO
    if alt == "str":
        return value if isinstance(value, str) else _NO
    if alt.startswith("tuple[") and isinstance(value, (tuple, list)):
        inner = alt[len("tuple["):].split(",")[0].strip()
        items = [_conform_one(v, inner) for v in value]
        if any(v is _NO for v in items):
            return _NO
        return value if isinstance(value, tuple) and all(a is b for a, b in zip(items, value)) else tuple(items)
    return _NO


@functools.lru_cache(maxsize=None)
def _field_types(cls: type) -> tuple[tuple[str, str, tuple[str, ...] | None], ...]:
    """(name, annotation, its alternatives or None when this check does not know one of them) per field."""
    out = []
    for f in dataclasses.fields(cls):
        alts = tuple(str(f.type).split(" | "))
        known = all(a in _KIND_NAMES or a.startswith("tuple[") for a in alts)
        out.append((f.name, str(f.type), alts if known else None))
    return tuple(out)


def check_types(spec: Any) -> None:
    """Every field of the dataclass ``spec`` against its annotation (``int | None``, ``tuple[int, ...]``, ...):
    :class:`ConfigError` naming the field, the value and the allowed types; numpy scalars and lists are made the
    annotated Python types in place (the dataclass may be frozen). Annotations it does not know are left to
    ``validate()``."""
    for name, annotation, alts in _field_types(type(spec)):
        if alts is None:
            continue
        value = getattr(spec, name)
        for alt in alts:
            fixed = _conform_one(value, alt)
            if fixed is not _NO:
                break
        else:
            raise ConfigError(f"{name}={value!r} must be {_describe_type(annotation)}")
        if fixed is not value:
            object.__setattr__(spec, name, fixed)


def _plain(v: Any) -> Any:
    """JSON-friendly copy: tuples become lists, recursively."""
    if isinstance(v, (tuple, list)):
        return [_plain(x) for x in v]
    return v


@dataclass(frozen=True)
class RunSpec:
    """Base of the run configurations (see the module docstring). Subclasses are frozen dataclasses."""

    PATHS: ClassVar[tuple[str, ...]] = ("data_root",)  # where data live: not part of the result's key
    TAG: ClassVar[str | None] = None  # written into the key as "model"; None for the kinds whose keys predate tags
    # Raised when the same settings start to compute something else (a fixed initialisation, say), so that records
    # of the old computation in a results store are not read as the new one's. Version 1 adds nothing to the key.
    KEY_VERSION: ClassVar[int] = 1

    def __post_init__(self) -> None:
        check_types(self)
        for name in self.PATHS:
            check_path(name, getattr(self, name, None))
        check_data_env()
        self.validate()

    def validate(self) -> None:
        """Raise :class:`ConfigError` for a value that cannot work."""

    def canonical(self) -> "RunSpec":
        """The configuration whose key this one shares (fields the run does not read reset); itself by default."""
        return self

    def key(self) -> dict[str, Any]:
        """The fields that define the result (of the canonical configuration), paths excluded, JSON-friendly."""
        c = self.canonical()
        d = {f.name: _plain(getattr(c, f.name)) for f in dataclasses.fields(c) if f.name not in self.PATHS}
        if self.KEY_VERSION > 1:
            d["key_version"] = self.KEY_VERSION
        return {"model": self.TAG, **d} if self.TAG else d

    def replace(self, **changes: Any):
        return dataclasses.replace(self, **changes)

    def describe(self) -> str:
        """One line: the fields that differ from the defaults (and a few that identify the run)."""
        d, default = self.key(), type(self)().key()
        return " ".join(f"{k}={d[k]}" for k in d if d[k] != default.get(k) or k in ("dataset", "normal_class", "seed"))

    def run(self, device: str | None = None, progress: bool = True, **opts: Any) -> dict[str, Any]:
        raise NotImplementedError

    def group_key(self) -> Hashable | None:
        """Configurations with equal keys can train in the same steps (``run_group``); None: alone."""
        return None

    @classmethod
    def run_group(cls, configs: Sequence["RunSpec"], device: str | None = None, progress: bool = False,
                  on_record: Callable[[Any, dict], Any] | None = None,
                  on_error: Callable[[Any, BaseException], Any] | None = None, **opts: Any) -> None:
        """Run configurations with equal ``group_key()``; report each record (or failure) as it is ready.
        Default: one after the other."""
        for cfg in configs:
            try:
                rec = cfg.run(device=device, progress=progress, **opts)
            except FloatingPointError as e:
                if on_error is None:
                    raise
                on_error(cfg, e)
                continue
            if on_record is not None:
                on_record(cfg, rec)


def parse_value(text: str) -> Any:
    """A ``-p key value`` value: JSON or a Python literal (``3``, ``[0,1]``, ``None``, ``0.5``), else a string."""
    if text.lower() in ("none", "null"):
        return None
    for parse in (json.loads, ast.literal_eval):
        try:
            return parse(text)
        except (ValueError, SyntaxError):
            pass
    return text


def grid(base: RunSpec, **axes: Sequence[Any]) -> list:
    """Cartesian product of ``axes`` over a base config: ``grid(RunConfig(), objective=['hsc', 'bce'],
    seed=range(3))``."""
    configs = [base]
    for name, values in axes.items():
        configs = [c.replace(**{name: v}) for c in configs for v in values]
    return configs


def device_name(dev: torch.device) -> str:
    if dev.type == "cuda":
        return torch.cuda.get_device_name(dev)
    return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


@dataclass(frozen=True)
class RunRecord:
    """A finished run as the results store keeps it (``flat()``): the configuration's key, the detection metrics
    of its test scores (:func:`adcore.metrics.detection_metrics`), its times in seconds (in a K-model job its own
    share), its data sizes and source, the kind's own figures (``extra``), then the device, adcore's version, when
    it finished and the reproducibility stamp (:func:`adcore.stamp.stamp`: package versions, commit, threads),
    never part of the key. Every kind of run returns one's ``flat()``, so what every record holds is decided here."""
    spec: RunSpec
    metrics: dict[str, float]
    train_time: float
    test_time: float
    wall_time: float
    n_train: int
    n_test: int
    data_source: str
    device: torch.device
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)

    def flat(self) -> dict[str, Any]:
        from .stamp import stamp
        return {**self.spec.key(), **self.metrics, "train_time": float(self.train_time),
                "test_time": float(self.test_time), "wall_time": float(self.wall_time), "n_train": int(self.n_train),
                "n_test": int(self.n_test), "data_source": self.data_source, **self.extra, **stamp(),
                "device": device_name(self.device), "adcore": __version__,
                "finished": time.strftime("%Y-%m-%dT%H:%M:%S")}
