"""The interface every chapter satisfies (:class:`Chapter`) and the base of their settings (:class:`Settings`):
what an override sets is decided here, once, for every chapter (see :mod:`adcore.chapters`)."""
from __future__ import annotations

import dataclasses
from typing import Any, Protocol, runtime_checkable

import pandas as pd

from ..config import ConfigError, RunSpec, check_range

Runs = list[tuple[dict[str, Any], RunSpec]]


@runtime_checkable
class Chapter(Protocol):
    """What a notebook, a grid and the command line need of a chapter (checked for each by the test suite)."""

    name: str  # its notebook (file name without .ipynb)
    prefix: str  # of the names its notebook glues into the prose (e.g. "tab_profile")
    Settings: type

    def profile(self, name: str, **where: Any) -> Any:
        """The ready-made settings of profile ``name`` (``where``: data_root / oe_root, for a data probe)."""

    def runs(self, settings: Any) -> Runs:
        """Every (labels, config) of these settings."""

    def card(self, settings: Any, frame: pd.DataFrame, device: str | None = None, wall: str | None = None
             ) -> pd.DataFrame:
        """The run card: what a reader needs before trusting a number."""

    def claims(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The paper's claims checked against this build's runs."""


class Settings:
    """Base of the chapters' frozen settings dataclasses; see the module docstring for what an override sets."""

    FIXED = ("profile", "data_choice")  # set by the chapter, not by an override

    def __post_init__(self) -> None:
        seeds = getattr(self, "seeds", 1)
        for s in seeds if isinstance(seeds, tuple) else ():
            check_range("seeds", s, 0, integer=True)
        if not isinstance(seeds, tuple):
            check_range("seeds", seeds, 1, integer=True)
        if getattr(self, "classes", (0,)) == ():
            raise ConfigError("classes=[] must be a non-empty list of class indices, e.g. [0, 1]")

    def replace(self, **overrides: Any) -> Any:
        """These settings with ``overrides`` set (lists as tuples; see the module docstring)."""
        s = self
        for key, value in overrides.items():
            if key in self.FIXED:
                raise ConfigError(f"{key}={value!r} is set by the chapter, not by an override")
            new, hit = _set(s, key, _frozen(value))
            if not hit and "_" in key and key.split("_", 1)[0] in _names(s):  # svdd_epochs: epochs in svdd only
                part, rest = key.split("_", 1)
                inner, hit = _set(getattr(s, part), rest, _frozen(value)) if getattr(s, part) is not None else (0, 0)
                new = dataclasses.replace(s, **{part: inner}) if hit else s
            if not hit:
                raise ConfigError(f"unknown setting {key}={value!r} for {type(s).__module__.rsplit('.', 1)[-1]!r}; "
                                  f"known: {', '.join(sorted(names(s) - set(self.FIXED)))}")
            s = new
        return s


def _frozen(v: Any) -> Any:
    return tuple(_frozen(x) for x in v) if isinstance(v, (list, tuple)) else v


def _names(obj: Any) -> set[str]:
    return {f.name for f in dataclasses.fields(obj)} if dataclasses.is_dataclass(obj) else set()


def names(obj: Any, prefixed: bool = True) -> set[str]:
    """Every name an override may use on ``obj``: its fields, those of its parts and configurations, and
    ``<part>_<name>`` for the names of a part of its own."""
    out = set(_names(obj)) - {"normal_class", "seed"}
    for f in _names(obj):
        for v in _parts(getattr(obj, f)):
            out |= names(v, False) | ({f"{f}_{n}" for n in names(v, False)} if prefixed else set())
    return out


def _parts(v: Any) -> list[Any]:
    items = v if isinstance(v, tuple) else (v,)
    return [x for x in items if dataclasses.is_dataclass(x) and not isinstance(x, type)]


def _set(obj: Any, key: str, value: Any) -> tuple[Any, bool]:
    """``obj`` with ``key`` set wherever it is a name: in ``obj`` itself, in its sub-designs, and, where ``obj``
    has no such field, in its configurations (so a design's own ``blur`` axis is not its configs' ``blur``)."""
    if key in ("normal_class", "seed"):
        return obj, False
    own, changes, hit = key in _names(obj), {}, False
    if own:
        old = getattr(obj, key)
        if dataclasses.is_dataclass(old) and not dataclasses.is_dataclass(value) and value is not None:
            raise ConfigError(f"{key}={value!r} must be a {type(old).__name__}")
        changes[key], hit = value, True
    for f in _names(obj) - {key}:
        v = getattr(obj, f)
        parts = _parts(v)
        if not parts or own and all(isinstance(x, RunSpec) for x in parts):
            continue
        done = [_set(x, key, value) for x in (v if isinstance(v, tuple) else (v,))]
        if any(h for _, h in done):
            changes[f] = tuple(x for x, _ in done) if isinstance(v, tuple) else done[0][0]
            hit = True
    return (obj.replace(**changes) if isinstance(obj, RunSpec) else dataclasses.replace(obj, **changes)), hit
