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
  names the value and what is allowed.
"""
from __future__ import annotations

import ast
import copy
import dataclasses
import json
import platform
import time
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Hashable, Iterable, Sequence

import torch

from . import __version__


class ConfigError(ValueError):
    """A setting outside what a run can use; raised on construction, before any work starts."""


def check_choice(name: str, value: Any, allowed: Iterable[Any]) -> None:
    allowed = tuple(allowed)
    if value not in allowed:
        raise ConfigError(f"unknown {name} {value!r}; choose one of {', '.join(map(repr, allowed))}")


def check_range(name: str, value: Any, lo: float | None = None, hi: float | None = None, *,
                integer: bool = False, optional: bool = False, lo_open: bool = False) -> None:
    """``value`` must be a number (an int when ``integer``) in [lo, hi] ((lo, hi] when ``lo_open``)."""
    if value is None and optional:
        return
    kind = int if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kind):
        raise ConfigError(f"{name}={value!r} must be {'an integer' if integer else 'a number'}"
                          + (" or None" if optional else ""))
    if lo is not None and (value <= lo if lo_open else value < lo) or hi is not None and value > hi:
        bounds = f"{'>' if lo_open else '>='} {lo:g}" if hi is None else f"in {'(' if lo_open else '['}{lo:g}, {hi:g}]"
        raise ConfigError(f"{name}={value!r} must be {bounds}")


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


def with_overrides(name: str, settings: dict[str, Any], overrides: dict[str, Any], allowed: Iterable[str] = (),
                   profile: str | None = None) -> dict[str, Any]:
    """A deep copy of ``settings`` (a chapter's profile entry) with every override replacing the value everywhere:
    in the base and in every part (``settings["parts"]``), ``None`` included. Keys that are neither in the
    settings, nor in a part, nor ``allowed`` raise :class:`ConfigError` naming the known ones."""
    s = copy.deepcopy(settings)
    known = (set(s) | {k for part in s.get("parts") or [] for k in part} | set(allowed)) - {"profile", "parts"}
    unknown = set(overrides) - known
    if unknown:
        raise ConfigError(f"unknown setting(s) {', '.join(sorted(unknown))} for {name!r}; known: "
                          f"{', '.join(sorted(known))}")
    s.update(copy.deepcopy(overrides))
    s["parts"] = [{**part, **copy.deepcopy(overrides)} for part in s.get("parts") or [{}]]
    if profile is not None:
        s["profile"] = profile
    return s


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


def record_tail(dev: torch.device) -> dict[str, Any]:
    """What every record ends with: the device, adcore's version and when it finished."""
    return {"device": device_name(dev), "adcore": __version__, "finished": time.strftime("%Y-%m-%dT%H:%M:%S")}
