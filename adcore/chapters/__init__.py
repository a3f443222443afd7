"""The book's chapters, one module each: its notebooks' profiles (smoke / laptop / paper), run grid, tables and
figure helpers, and the checks of the paper's claims. This registry maps a notebook to its chapter and names the
sweep grids: the Rethinking seed's experiments (their paper profiles are the seed's runs) and two composites,
``book`` (every run the book's notebooks read under a profile) and ``all`` (every named Rethinking grid). Each
composite runs every configuration once.

The library (``adcore.*``) never imports this package; the command line and the notebooks do.
"""
from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType
from typing import Any

from ..config import ConfigError, RunSpec, check_range
from . import clad, deep_sad, rethinking

PROFILES = ("smoke", "laptop", "paper")
CHAPTERS: tuple[ModuleType, ...] = (rethinking, deep_sad, clad)
NOTEBOOKS: dict[str, ModuleType] = {nb: ch for ch in CHAPTERS for nb in ch.NOTEBOOKS}


def chapter(notebook: str) -> ModuleType:
    """The chapter module of a notebook (by its file name without ``.ipynb``)."""
    if notebook not in NOTEBOOKS:
        raise ConfigError(f"unknown notebook {notebook!r}; choose one of {', '.join(NOTEBOOKS)}")
    return NOTEBOOKS[notebook]


def settings(notebook: str, profile: str = "laptop", **overrides: Any) -> dict[str, Any]:
    """The settings of ``notebook`` under ``profile`` with ``overrides`` (``None`` included) applied everywhere.
    A notebook's first code cell calls this with its (papermill) parameters, then ``runs``, which builds, so
    validates, every configuration: a wrong parameter fails there, with the message the command line gives."""
    if profile not in PROFILES:
        raise ConfigError(f"unknown profile {profile!r}; choose one of {', '.join(PROFILES)}")
    check_overrides(overrides)
    return chapter(notebook).settings(notebook, profile, **overrides)


def check_overrides(overrides: dict[str, Any]) -> None:
    """The chapter-level settings every chapter reads the same way: ``seeds`` (a count >= 1 or a list of seeds)
    and ``classes`` (a list of class indices); the rest is checked by the configurations they become."""
    seeds = overrides.get("seeds")
    if seeds is not None:
        if isinstance(seeds, (list, tuple)):
            for s in seeds:
                check_range("seeds", s, 0, integer=True)
        else:
            check_range("seeds", seeds, 1, integer=True)
    classes = overrides.get("classes")
    if classes is not None:
        if not isinstance(classes, (list, tuple)) or not classes:
            raise ConfigError(f"classes={classes!r} must be a non-empty list of class indices, e.g. [0, 1]")
        for c in classes:
            if not isinstance(c, (list, tuple)):  # a super-category is a list of classes
                check_range("classes", c, 0, integer=True)


def runs(notebook: str, s: dict[str, Any]) -> list[tuple[dict[str, Any], RunSpec]]:
    """Every (labels, config) of a notebook's settings."""
    return chapter(notebook).runs(notebook, s)


@dataclass(frozen=True)
class GridSpec:
    name: str
    title: str
    paper_runs: int  # distinct runs under the paper profile
    factorization: str
    members: tuple[str, ...] = ()  # composite grids: the grids (or "notebook:<name>") they unite


GRIDS: dict[str, GridSpec] = {
    **{e.name: GridSpec(e.name, e.title, e.paper_runs, e.factorization) for e in rethinking.EXPERIMENTS.values()},
    "book": GridSpec("book", "Every run the book's notebooks read (sigma 0 of the blur chapter included)", 12320,
                     "the five notebooks' grids under the profile, each run once",
                     members=tuple(f"notebook:{nb}" for nb in NOTEBOOKS)),
    "all": GridSpec("all", "Every named Rethinking grid, each run once", 19800,
                    "the 11 grids above (20,100 runs) less the 300 they share", members=tuple(rethinking.EXPERIMENTS)),
}


def grid(name: str, profile: str = "laptop", **overrides: Any) -> list[RunSpec]:
    """The configurations of a named grid under ``profile`` with ``overrides`` (each configuration once). An
    override no member knows raises; each member takes the overrides it knows."""
    if name not in GRIDS:
        raise ConfigError(f"unknown grid {name!r}; choose one of {', '.join(GRIDS)}")
    if profile not in PROFILES:
        raise ConfigError(f"unknown profile {profile!r}; choose one of {', '.join(PROFILES)}")
    check_overrides(overrides)
    members = GRIDS[name].members
    if not members:
        return rethinking.grid(name, profile, **overrides)
    configs: list[RunSpec] = []
    used: set[str] = set()
    for m in members:
        nb = m.split(":", 1)[1] if m.startswith("notebook:") else None
        known = _known(m, profile, overrides)
        used |= set(known)
        configs += [c for _, c in runs(nb, settings(nb, profile, **known))] if nb else \
            rethinking.grid(m, profile, **known)
    unknown = set(overrides) - used
    if unknown:
        raise ConfigError(f"unknown setting(s) {', '.join(sorted(unknown))} for every grid of {name!r}")
    return list(dict.fromkeys(configs))


def _known(member: str, profile: str, overrides: dict[str, Any]) -> dict[str, Any]:
    """The overrides a member grid accepts: those for which its settings raise no 'unknown setting'."""
    nb = member.split(":", 1)[1] if member.startswith("notebook:") else None
    ok = {}
    for k, v in overrides.items():
        try:
            settings(nb, profile, **{k: v}) if nb else rethinking.experiment_settings(member, profile, **{k: v})
        except ConfigError:
            continue
        ok[k] = v
    return ok
