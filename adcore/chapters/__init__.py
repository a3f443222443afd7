"""The book's chapters: one :class:`Chapter` per notebook, all alike. A chapter has one frozen settings type, its
``smoke`` / ``laptop`` / ``paper`` values (:meth:`Chapter.profile`), ``runs(settings)``, ``card(settings, frame)``
and ``claims(frame)``; a notebook opens its chapter with its parameters (:func:`open`) and collects the runs.
This registry also names the sweep grids: the Rethinking seed's experiments and two composites, ``book`` (every
run the book's notebooks read under a profile) and ``all`` (every named Rethinking grid), each configuration once.
A grid's size is counted from its settings, never written down.

An override is a settings name: a field of the design (``classes``, ``seeds``, ``methods``, ``blur`` ...) or of the
configurations it starts from (``epochs``, ``lr``, ``n_train`` ...), set wherever it means something, in every
sub-design and every column; ``<part>_<name>`` (``svdd_epochs``, ``tabular_epochs``) sets it in one part only. An
unknown name, or one that no run reads, is a one-line :class:`ConfigError` naming it.

The library (``adcore.*``) never imports this package; the command line and the notebooks do.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import pandas as pd

from ..config import ConfigError, RunSpec
from . import clad, deep_sad, rethinking
from .interface import Chapter, Runs, Settings

PROFILES = ("smoke", "laptop", "paper")

# ------------------------------------------------------------------------------------ registry and open

CHAPTERS: dict[str, Chapter] = {c.name: c for c in (*rethinking.CHAPTERS, deep_sad, clad)}
NOTEBOOKS = tuple(CHAPTERS)


def chapter(notebook: str) -> Chapter:
    """The chapter of a notebook (by its file name without ``.ipynb``)."""
    if notebook not in CHAPTERS:
        raise ConfigError(f"unknown notebook {notebook!r}; choose one of {', '.join(CHAPTERS)}")
    return CHAPTERS[notebook]


@dataclass
class Opened:
    """A chapter opened by a notebook: its settings, runs and the cells every notebook shares. Other attributes
    are the chapter's own tables and figure helpers (``ch.with_paper(df)``)."""

    chapter: Chapter
    settings: Any
    runs: Runs
    device: str | None = None

    def __post_init__(self) -> None:
        from ..report import Stopwatch
        self.clock = Stopwatch()

    def __getattr__(self, name: str) -> Any:
        if name in ("chapter", "__setstate__"):
            raise AttributeError(name)
        return getattr(self.chapter, name)

    def collect(self, results_dir: str, **execute_kw: Any) -> pd.DataFrame:
        """Trains the runs missing from the store (:func:`adcore.report.run_missing`) and returns all of them."""
        from ..report import run_missing
        self.device = execute_kw.get("device")
        return run_missing(self.runs, results_dir, **{"progress": False, **execute_kw})

    def card(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The run card, glued for the prose as ``card`` and ``<prefix>_<setting>``."""
        from ..report import glue_card
        return glue_card(self.chapter.card(self.settings, frame, self.device, self.clock.minutes()),
                         self.chapter.prefix)

    def claims(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The claims table, glued as ``claims``, and the build that decided it (profile, time, adcore commit) as
        ``claims_build``: the book's front page collects both."""
        import datetime

        from myst_nb import glue

        from ..stamp import commit
        table = self.chapter.claims(frame)
        glue("claims", table, display=False)
        when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        glue("claims_build", {"profile": self.settings.profile, "executed": when,
                              "adcore": commit() or "not from a checkout"}, display=False)
        return table


def open(notebook: str, profile: str = "laptop", **params: Any) -> Opened:
    """The chapter of ``notebook`` under ``profile`` with the notebook's parameters (``None``: the profile's
    value). Every configuration is built, so validated, here: a wrong parameter fails in the notebook's first
    cell with the message the command line gives; one that no run reads fails too."""
    return _open(notebook, profile, {k: v for k, v in params.items() if v is not None})


def _open(notebook: str, profile: str, params: dict[str, Any]) -> Opened:
    """:func:`open` with ``params`` as they are (a grid's ``-p oe None`` sets None)."""
    ch = chapter(notebook)
    if profile not in PROFILES:
        raise ConfigError(f"unknown profile {profile!r}; choose one of {', '.join(PROFILES)}")
    base = ch.profile(profile, **{k: params[k] for k in ("dataset", "data_root", "oe_root") if k in params})
    s = base.replace(**params)
    runs = ch.runs(s)
    for key, value in params.items():
        without = base.replace(**{k: v for k, v in params.items() if k != key})
        if without != s and _same(ch.runs(without), runs):
            raise ConfigError(f"{key}={value!r}: no run of {notebook!r} reads it under profile {profile!r}")
    return Opened(ch, s, runs)


def _same(a: Runs, b: Runs) -> bool:
    return [c for _, c in a] == [c for _, c in b]


# ------------------------------------------------------------------------------------------------ grids


@dataclass(frozen=True)
class GridSpec:
    name: str
    title: str
    factorization: str
    members: tuple[str, ...] = ()  # composite grids: the grids (or "notebook:<name>") they unite

    @property
    def paper_runs(self) -> int:
        """Distinct runs under the paper profile, counted from the settings."""
        return _paper_runs(self.name)


GRIDS: dict[str, GridSpec] = {
    **{e.name: GridSpec(e.name, e.title, e.factorization) for e in rethinking.EXPERIMENTS.values()},
    "book": GridSpec("book", "Every run the book's notebooks read (blur 0 of the blur chapter included)",
                     "the notebooks' grids under the profile, each run once",
                     members=tuple(f"notebook:{nb}" for nb in NOTEBOOKS)),
    "all": GridSpec("all", "Every named Rethinking grid, each run once", "the grids above, each run once",
                    members=tuple(rethinking.EXPERIMENTS)),
}


@functools.lru_cache(maxsize=None)
def _paper_runs(name: str) -> int:
    return len(grid(name, "paper"))


def grid(name: str, profile: str = "laptop", **overrides: Any) -> list[RunSpec]:
    """The configurations of a named grid under ``profile`` with ``overrides`` (each configuration once). An
    override no member knows raises; each member takes the overrides it knows."""
    if name not in GRIDS:
        raise ConfigError(f"unknown grid {name!r}; choose one of {', '.join(GRIDS)}")
    if profile not in PROFILES:
        raise ConfigError(f"unknown profile {profile!r}; choose one of {', '.join(PROFILES)}")
    members = GRIDS[name].members
    if not members:
        return rethinking.grid(name, profile, **overrides)
    configs: list[RunSpec] = []
    used: set[str] = set()
    for m in members:
        known = {k: v for k, v in overrides.items() if _takes(m, profile, k, v)}
        used |= set(known)
        nb = m.split(":", 1)[1] if m.startswith("notebook:") else None
        configs += [c for _, c in _open(nb, profile, known).runs] if nb else rethinking.grid(m, profile, **known)
    unknown = set(overrides) - used
    if unknown:
        raise ConfigError(f"unknown setting(s) {', '.join(sorted(unknown))} for every grid of {name!r}")
    return list(dict.fromkeys(configs))


def _takes(member: str, profile: str, key: str, value: Any) -> bool:
    """Whether a member grid accepts the override (its settings raise no error for it)."""
    nb = member.split(":", 1)[1] if member.startswith("notebook:") else None
    try:
        _open(nb, profile, {key: value}) if nb else rethinking.grid(member, profile, **{key: value})
    except ConfigError:
        return False
    return True


__all__ = ["Chapter", "Settings", "Opened", "open", "chapter", "grid", "CHAPTERS", "GRIDS", "NOTEBOOKS", "PROFILES"]
