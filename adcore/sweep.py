"""Sweeps: the paper's experiment grids by name, and one runner that executes any list of runs into the results
store, in-process (``executor="local"``) or on a Ray cluster (``executor="ray"``).

Named grids
-----------
Every grid of the seed (lukasruff/Classification-AD, ``src/experiments/*.sh``) has a name; under the ``paper``
profile it expands to exactly the seed's runs (seeds are numbered 0..n-1 here, 1..n there). The three grids the
book's notebooks read come from :mod:`adcore.profiles`, so a sweep and a notebook with the same profile and
overrides ask for the same configurations, and share their records in the results store.

=========================  ============================================================================  ======
grid                       paper factorization                                                            runs
=========================  ============================================================================  ======
cifar10_table              10 classes x 10 seeds x 4 objectives (Deep SAD, HSC, Focal, BCE), OE 80MTI        400
cifar10_oe_sizes           10 classes x 10 seeds x 2 objectives (HSC, BCE) x 22 OE sizes 2^0..2^21          4,400
cifar10_blur               10 classes x 10 seeds x 2 objectives x 6 sigmas {1,2,4,8,16,32}, OE size 128    1,200
cifar100_oe_classes        10 classes x 10 seeds x 2 objectives x 8 CIFAR-100 class counts                 1,600
                           {1,2,4,8,16,32,64,100}, the whole OE set of those classes
cifar10_hsc_sensitivity    10 classes x 10 seeds x 4 HSC norms {l1, l2, l2_squared, l2_squared_linear}        800
                           x 2 (augmentation + normalization | normalization only)
focal_sensitivity          4 gammas {0, 0.5, 2, 4} x 10 classes x 10 seeds x 2 datasets (CIFAR-10 with       800
                           80MTI OE; ImageNet-30 classes 0..9 with ImageNet-22K OE)
imagenet30_table           30 classes x 10 seeds x 4 objectives (Deep SAD, HSC, Focal, BCE)                 1,200
imagenet30_oe_sizes        30 classes x 5 seeds x 2 objectives x 19 OE sizes 2^0..2^18                      5,700
imagenet30_blur            30 classes x 5 seeds x 2 objectives x 6 sigmas, OE size 64                       1,800
mnist_emnist_classes       10 classes x 10 seeds x 2 objectives x 8 EMNIST-letters class counts             1,600
                           {1,2,3,5,10,15,20,26}
mnist_blur                 10 classes x 5 seeds x 2 objectives x 6 sigmas, all 26 EMNIST letters              600
=========================  ============================================================================  ======

Sigma 0 (no blur) is not part of the blur grids, as in the seed: for CIFAR-10 it is the OE-size 128 point of
``cifar10_oe_sizes``, for ImageNet-30 the OE-size 64 point of ``imagenet30_oe_sizes``, for MNIST the 26-class
point of ``mnist_emnist_classes`` (seeds 0..4) -- the same configurations, so the same records. Likewise
``cifar10_hsc_sensitivity`` (l2_squared_linear, default augmentation) and ``focal_sensitivity`` (gamma 2) share
100 runs each with the tables. Two composite grids run several at once, each configuration once: ``book`` (the
three notebooks' grids, sigma 0 included: what ``make book`` needs) and ``all`` (every named grid).

``smoke`` and ``laptop`` keep each grid's design and shrink it (fewer classes, one seed, few epochs, subsampled
data, fewer axis values); CIFAR-10's 80 Million Tiny Images OE becomes the embedded ``natural`` source there, as in
the book's profiles. Any setting can be overridden (``-p key value`` on the command line). ImageNet-30 has no
loader in :mod:`adcore.data` yet: its grids expand (``--dry-run``) but do not run (the runner says why up front).

Runner
------
:func:`run_sweep` runs every configuration that has no record yet. A run that raises is retried ``retries``
times, then reported with its error while the others go on; re-running runs only what is missing, so a sweep
killed at any point is resumed by starting it again. Each finished run writes its own record atomically
(:meth:`adcore.results.ResultStore.write`), however many workers write at once. With Ray, every run is one task
asking for ``cpus_per_run`` CPUs and ``gpus_per_run`` GPUs (fractions pack several small runs onto one GPU);
workers on other machines must see the results folder at the same path (a shared file system).
"""
from __future__ import annotations

import ast
import atexit
import contextlib
import copy
import dataclasses
import importlib.util
import itertools
import json
import os
import shutil
import sys
import tempfile
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import pandas as pd

from . import profiles
from .experiment import RunConfig, run
from .results import ResultStore, config_hash

# --------------------------------------------------------------------------------------------------------------
# Named grids
# --------------------------------------------------------------------------------------------------------------

PROFILE_NAMES = tuple(profiles.PROFILES)


@dataclass(frozen=True)
class GridSpec:
    """A named grid: what it studies, the seed's size and how that factorizes."""

    name: str
    title: str
    paper_runs: int  # runs under the paper profile (the seed's script)
    factorization: str
    notebook: str | None = None  # book grids: the notebook in adcore.profiles they come from
    members: tuple[str, ...] = ()  # composite grids: the grids they unite


GRIDS: dict[str, GridSpec] = {g.name: g for g in (
    GridSpec("cifar10_table", "CIFAR-10 one-vs-rest AUC table (Table 1)", 400,
             "10 classes x 10 seeds x 4 objectives (deepsad, hsc, focal, bce) with OE", notebook="cifar10_table"),
    GridSpec("cifar10_oe_sizes", "CIFAR-10: AUC vs number of OE samples", 4400,
             "10 classes x 10 seeds x 2 objectives (hsc, bce) x 22 OE sizes 2^0..2^21", notebook="oe_size_curves"),
    GridSpec("cifar10_blur", "CIFAR-10: AUC vs Gaussian blur of the OE images", 1200,
             "10 classes x 10 seeds x 2 objectives x 6 sigmas {1,2,4,8,16,32} at OE size 128 (sigma 0 is the "
             "OE-size-128 point of cifar10_oe_sizes)", notebook="imagenet_blurring"),
    GridSpec("cifar100_oe_classes", "CIFAR-10 with CIFAR-100 OE: AUC vs number of OE classes", 1600,
             "10 classes x 10 seeds x 2 objectives x 8 CIFAR-100 class counts {1,2,4,8,16,32,64,100}"),
    GridSpec("cifar10_hsc_sensitivity", "CIFAR-10: HSC norm x data augmentation", 800,
             "10 classes x 10 seeds x 4 HSC norms x 2 (augmentation + normalization | normalization only)"),
    GridSpec("focal_sensitivity", "Focal loss gamma sensitivity, CIFAR-10 and ImageNet-30", 800,
             "4 gammas {0,0.5,2,4} x 10 classes x 10 seeds x 2 datasets (CIFAR-10; ImageNet-30 classes 0..9)"),
    GridSpec("imagenet30_table", "ImageNet-30 one-vs-rest AUC table", 1200,
             "30 classes x 10 seeds x 4 objectives (deepsad, hsc, focal, bce) with ImageNet-22K OE"),
    GridSpec("imagenet30_oe_sizes", "ImageNet-30: AUC vs number of OE samples", 5700,
             "30 classes x 5 seeds x 2 objectives x 19 OE sizes 2^0..2^18"),
    GridSpec("imagenet30_blur", "ImageNet-30: AUC vs Gaussian blur of the OE images", 1800,
             "30 classes x 5 seeds x 2 objectives x 6 sigmas at OE size 64 (sigma 0: imagenet30_oe_sizes)"),
    GridSpec("mnist_emnist_classes", "MNIST with EMNIST-letters OE: AUC vs number of OE classes", 1600,
             "10 classes x 10 seeds x 2 objectives x 8 letter-class counts {1,2,3,5,10,15,20,26}"),
    GridSpec("mnist_blur", "MNIST with EMNIST-letters OE: AUC vs blur", 600,
             "10 classes x 5 seeds x 2 objectives x 6 sigmas, all 26 letters (sigma 0: mnist_emnist_classes)"),
    GridSpec("book", "Everything the book's three notebooks read (sigma 0 included)", 6000,
             "cifar10_table + cifar10_oe_sizes + the blur notebook's grid (sigma 0..32), each run once",
             members=("cifar10_table", "cifar10_oe_sizes", "cifar10_blur")),
    GridSpec("all", "Every named paper grid, each run once", 19800,
             "the 11 grids above (20,100 runs) less the 300 they share",
             members=("cifar10_table", "cifar10_oe_sizes", "cifar10_blur", "cifar100_oe_classes",
                      "cifar10_hsc_sensitivity", "focal_sensitivity", "imagenet30_table", "imagenet30_oe_sizes",
                      "imagenet30_blur", "mnist_emnist_classes", "mnist_blur")),
)}

# Settings that become RunConfig fields directly (everything but the axes, classes and seeds).
_RUN_FIELDS = tuple(f.name for f in dataclasses.fields(RunConfig) if f.name not in
                    ("normal_class", "seed", "data_root", "oe_root"))
# Axis settings: a list of values -> the RunConfig field each value goes to, in expansion order.
AXES = {"objectives": "objective", "oe_sizes": "oe_size", "oe_class_counts": "oe_classes", "sigmas": "blur",
        "hsc_norms": "hsc_norm", "augments": "augment", "gammas": "focal_gamma"}
_FLOAT_FIELDS = ("blur", "focal_gamma")  # so 2 and 2.0 are one configuration (one config hash)
_N_CLASSES = {"cifar10": 10, "imagenet30": 30, "mnist": 10}
_SCALE = {  # how smoke and laptop shrink a dataset's paper settings
    "smoke": dict(classes=[0], seeds=1, epochs=1, milestones=[], n_train=128, n_test=256, batch_size=64),
    "laptop": dict(classes=[0, 2, 4, 6, 8], seeds=1, epochs=3, milestones=[], n_train=1000, n_test=2000),
}
_SMALL_OE = {"tinyimages": "natural"}  # OE sources replaced under smoke/laptop (80MTI is rarely at hand)


def _dataset(name: str, profile: str, **extra: Any) -> dict[str, Any]:
    """One dataset's settings under a profile: the seed's training settings, scaled down for smoke/laptop."""
    s = {"dataset": name, "classes": list(range(_N_CLASSES[name])),
         **copy.deepcopy(profiles.PAPER_TRAINING[name])}
    s["milestones"] = list(s["milestones"])
    if profile != "paper":
        s.update(copy.deepcopy(_SCALE[profile]))
        if name == "imagenet30":
            s["classes"] = [0, 10, 20] if profile == "laptop" else [0]
        s["oe"] = _SMALL_OE.get(s["oe"], s["oe"])
    s.update(extra)
    return s


def _by_profile(profile: str, paper: Any, laptop: Any, smoke: Any) -> Any:
    return copy.deepcopy({"paper": paper, "laptop": laptop, "smoke": smoke}[profile])


_HB = ["hsc", "bce"]
_SIGMAS = [1, 2, 4, 8, 16, 32]
_FOUR = ["deepsad", "hsc", "focal", "bce"]


def _own_settings(name: str, p: str) -> dict[str, Any]:
    """Settings of the grids that are not book notebooks (see the module docstring for the paper design)."""
    if name == "cifar100_oe_classes":
        return _dataset("cifar10", p, oe="cifar100", oe_size=None, objectives=_HB,
                        seeds=_by_profile(p, 10, 1, 1),
                        oe_class_counts=_by_profile(p, [1, 2, 4, 8, 16, 32, 64, 100], [1, 4, 16, 100], [1, 100]))
    if name == "cifar10_hsc_sensitivity":
        norms = ["l1", "l2", "l2_squared", "l2_squared_linear"]
        return _dataset("cifar10", p, objectives=["hsc"], seeds=_by_profile(p, 10, 1, 1),
                        hsc_norms=_by_profile(p, norms, norms, ["l1", "l2_squared_linear"]),
                        augments=[None, "cifar_normalize"])  # None: the dataset's default (augment + normalize)
    if name == "focal_sensitivity":
        gammas = _by_profile(p, [0, 0.5, 2, 4], [0, 0.5, 2, 4], [0, 2])
        return dict(_dataset("cifar10", p), objectives=["focal"], gammas=gammas, seeds=_by_profile(p, 10, 1, 1),
                    parts=[{}, _dataset("imagenet30", p, classes=_by_profile(p, list(range(10)), [0, 5], [0]))])
    if name == "imagenet30_table":
        return _dataset("imagenet30", p, objectives=_FOUR, seeds=_by_profile(p, 10, 1, 1))
    if name == "imagenet30_oe_sizes":
        return _dataset("imagenet30", p, objectives=_HB, seeds=_by_profile(p, 5, 1, 1),
                        oe_sizes=_by_profile(p, [2 ** k for k in range(19)], [1, 4, 16, 64, 256, 1024], [1, 16]))
    if name == "imagenet30_blur":
        return _dataset("imagenet30", p, objectives=_HB, seeds=_by_profile(p, 5, 1, 1), oe_size=64,
                        sigmas=_by_profile(p, _SIGMAS, _SIGMAS, [2]))
    if name == "mnist_emnist_classes":
        return _dataset("mnist", p, objectives=_HB, seeds=_by_profile(p, 10, 1, 1), oe_size=None,
                        oe_class_counts=_by_profile(p, [1, 2, 3, 5, 10, 15, 20, 26], [1, 3, 10, 26], [1, 26]))
    if name == "mnist_blur":
        return _dataset("mnist", p, objectives=_HB, seeds=_by_profile(p, 5, 1, 1), oe_size=None, oe_classes=26,
                        sigmas=_by_profile(p, _SIGMAS, _SIGMAS, [2]))
    raise KeyError(name)


def _check(name: str, profile: str) -> GridSpec:
    if name not in GRIDS:
        raise ValueError(f"unknown grid {name!r}; choose one of {', '.join(GRIDS)}")
    if profile not in PROFILE_NAMES:
        raise ValueError(f"unknown profile {profile!r}; choose one of {', '.join(PROFILE_NAMES)}")
    return GRIDS[name]


def _allowed(name: str, s: dict[str, Any]) -> set[str]:
    keys = set(s) | {k for part in s.get("parts") or [] for k in part}
    if GRIDS[name].notebook:
        return (keys | set(profiles._RUN_KEYS)) - {"profile", "parts"}
    return (keys | set(_RUN_FIELDS) | set(AXES)) - {"profile", "parts"}


def grid_settings(name: str, profile: str = "laptop", **overrides: Any) -> dict[str, Any]:
    """The settings of a (non-composite) grid under ``profile``; every override replaces the profile's value
    everywhere (in the base and in every part), ``None`` included. Unknown keys raise ``ValueError``."""
    spec = _check(name, profile)
    if spec.members:
        raise ValueError(f"{name!r} is a composite grid ({', '.join(spec.members)}); it has no settings of its own")
    if spec.notebook:
        s = profiles.settings(spec.notebook, profile)
    else:
        s = _own_settings(name, profile)
        s["parts"] = [dict(p) for p in s.get("parts") or [{}]]
        s["profile"] = profile
    unknown = set(overrides) - _allowed(name, s)
    if unknown:
        raise ValueError(f"unknown setting(s) {', '.join(sorted(unknown))} for grid {name!r}; known: "
                         f"{', '.join(sorted(_allowed(name, s)))}")
    s.update(copy.deepcopy(overrides))
    s["parts"] = [{**p, **copy.deepcopy(overrides)} for p in s["parts"]]
    return s


def _seeds(s: dict[str, Any]) -> list[int]:
    return list(range(s["seeds"])) if isinstance(s["seeds"], int) else list(s["seeds"])


def _expand_own(s: dict[str, Any]) -> list[RunConfig]:
    out = []
    for part in s["parts"]:
        p = {**s, **part}
        kw = {k: p[k] for k in _RUN_FIELDS if k in p}
        if "milestones" in kw:
            kw["milestones"] = tuple(kw["milestones"])
        base = RunConfig(**kw)
        axes = [(AXES[a], p[a]) for a in AXES if a in p]
        for cls, seed in itertools.product(p["classes"], _seeds(p)):
            cfg = base.replace(normal_class=tuple(cls) if isinstance(cls, list) else cls, seed=seed)
            for values in itertools.product(*[v for _, v in axes]):
                kv = {f: (float(v) if f in _FLOAT_FIELDS else v) for (f, _), v in zip(axes, values)}
                out.append(cfg.replace(**kv))
    return out


def _unique(configs: Iterable[RunConfig]) -> list[RunConfig]:
    return list(dict.fromkeys(configs))


def grid(name: str, profile: str = "laptop", **overrides: Any) -> list[RunConfig]:
    """The configurations of a named grid under ``profile`` with ``overrides`` (each configuration once)."""
    spec = _check(name, profile)
    if spec.members:
        valid = {m: _allowed(m, grid_settings(m, profile)) for m in spec.members}
        unknown = set(overrides) - set().union(*valid.values())
        if unknown:
            raise ValueError(f"unknown setting(s) {', '.join(sorted(unknown))} for every grid of {name!r}")
        configs = []
        for m in spec.members:
            over = {k: v for k, v in overrides.items() if k in valid[m]}
            if name == "book" and m == "cifar10_blur":  # the notebook's whole grid, sigma 0 included
                configs += profiles.grid("imagenet_blurring", grid_settings(m, profile, **over))
            else:
                configs += grid(m, profile, **over)
        return _unique(configs)
    s = grid_settings(name, profile, **overrides)
    if spec.notebook:
        configs = profiles.grid(spec.notebook, s)
        if name == "cifar10_blur":  # sigma 0 is a point of the OE-size grid; count it there, as the seed does
            valid = _allowed("cifar10_oe_sizes", grid_settings("cifar10_oe_sizes", profile))
            sizes = set(grid("cifar10_oe_sizes", profile, **{k: v for k, v in overrides.items() if k in valid}))
            configs = [c for c in configs if not (c.blur == 0 and c in sizes)]
        return _unique(configs)
    return _unique(_expand_own(s))


def describe(cfg: RunConfig) -> str:
    """A one-line summary of a configuration: the fields that differ from RunConfig's defaults."""
    d, default = cfg.key(), RunConfig().key()
    return " ".join(f"{k}={d[k]}" for k in d if d[k] != default[k] or k in ("dataset", "normal_class", "seed",
                                                                          "objective"))


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


# --------------------------------------------------------------------------------------------------------------
# Runner
# --------------------------------------------------------------------------------------------------------------

@dataclass
class Failure:
    configs: list[RunConfig]
    error: str
    attempts: int


@dataclass
class SweepResult:
    total: int  # distinct configurations asked for
    already: int  # had a record before this call
    ran: int = 0  # finished in this call
    failures: list[Failure] = field(default_factory=list)
    skipped: int = 0  # missing runs left for later by max_runs
    frame: pd.DataFrame | None = None

    @property
    def failed(self) -> int:
        return sum(len(f.configs) for f in self.failures)

    def summary(self) -> str:
        lines = [f"{self.total} runs: {self.already} already done, {self.ran} ran now, {self.failed} failed"
                 + (f", {self.skipped} left for a later call (--max-runs)" if self.skipped else "")]
        if self.failures:
            # chapter configs (e.g. deepsad.SADConfig) name their method differently: read it tolerantly
            rows = [(config_hash(c), getattr(c, "dataset", "?"), str(getattr(c, "normal_class", "?")),
                     str(getattr(c, "objective", getattr(c, "method", "?"))), str(getattr(c, "seed", "?")),
                     f.attempts, f.error)
                    for f in self.failures for c in f.configs]
            lines.append(f"\n{self.failed} failed run(s), each after its last attempt:")
            lines.append(_table(("config", "dataset", "class", "method", "seed", "tries", "error"), rows))
        return "\n".join(lines)


class SweepError(RuntimeError):
    """Some runs failed after their retries; ``.result`` holds every failure and the finished records."""

    def __init__(self, result: SweepResult):
        super().__init__(result.summary())
        self.result = result


def _table(header: Sequence[str], rows: list[Sequence[Any]], max_rows: int = 40) -> str:
    shown = [[str(x) for x in r] for r in rows[:max_rows]]
    shown = [[c if len(c) <= 100 else c[:97] + "..." for c in r] for r in shown]
    widths = [max(len(h), *(len(r[i]) for r in shown)) if shown else len(h) for i, h in enumerate(header)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    out = [fmt.format(*header).rstrip(), fmt.format(*("-" * w for w in widths))]
    out += [fmt.format(*r).rstrip() for r in shown]
    if len(rows) > max_rows:
        out.append(f"... and {len(rows) - max_rows} more")
    return "\n".join(out)


def _error_text(e: BaseException) -> str:
    cause = getattr(e, "cause", None)  # ray.exceptions.RayTaskError carries the task's own exception
    e = cause if isinstance(cause, BaseException) else e
    msg = str(e).strip().splitlines()
    return f"{type(e).__name__}: {msg[0] if msg else ''}".strip()


def preflight(configs: Sequence[RunConfig]) -> None:
    """Fail before any run starts when a name in the grid cannot work (a typo, or a dataset with no loader)."""
    from .data import DATASETS
    from .objectives import OBJECTIVES
    from .oe import OE_SOURCES
    problems = []
    datasets = {c.dataset for c in configs}
    if "imagenet30" in datasets and "imagenet30" not in DATASETS:
        problems.append("ImageNet-30 has no loader in adcore.data yet: the ImageNet grids expand (--dry-run) "
                        "but cannot run")
        datasets.discard("imagenet30")
    for what, have, known in (("dataset", datasets, DATASETS),
                              ("OE source", {c.oe for c in configs if c.oe}, OE_SOURCES),
                              ("objective", {c.objective for c in configs}, OBJECTIVES)):
        bad = sorted(have - set(known))
        if bad:
            problems.append(f"no {what} named {', '.join(map(repr, bad))} in adcore (known: {', '.join(known)})")
    if problems:
        raise ValueError("this grid cannot run:\n  - " + "\n  - ".join(problems))


def group_key(cfg: RunConfig) -> tuple:
    """Runs with equal keys share an architecture and a training schedule, so one K-model training
    (``adcore.multi.run_many``) can train them together. ``adcore.multi.group_key`` overrides this when present."""
    d = cfg.key()
    for k in ("normal_class", "seed", "oe_size", "oe_classes", "blur"):
        d.pop(k)
    return (json.dumps(d, sort_keys=True, default=str), cfg.data_root, cfg.oe_root)


def _multi() -> Any:
    """``adcore.multi`` when it offers ``run_many`` (K models in one training), else None."""
    try:
        from . import multi
    except ImportError:
        return None
    return multi if hasattr(multi, "run_many") else None


def _units(todo: list[RunConfig], group_size: int | None) -> list[list[RunConfig]]:
    multi = _multi()
    if multi is None or group_size is not None and group_size <= 1:
        return [[c] for c in todo]
    key = getattr(multi, "group_key", group_key)
    size = group_size or 16
    groups: dict[Any, list[RunConfig]] = {}
    for c in todo:
        groups.setdefault(key(c), []).append(c)
    return [g[i:i + size] for g in groups.values() for i in range(0, len(g), size)]


def run_unit(configs: list[RunConfig], store_path: str, device: str | None = None,
             env: dict[str, str] | None = None, threads: int | None = None,
             runner: Callable[..., dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """Run one unit of work (one run, or a group as one K-model training) and write its records atomically.
    This is the body of every Ray task; it returns the records so the driver can keep a copy."""
    for k, v in (env or {}).items():
        os.environ[k] = v
    if threads:
        import torch
        torch.set_num_threads(threads)
    if len(configs) > 1:
        records = list(_multi().run_many(configs, device=device, progress=False))
    else:
        records = [(runner or run)(configs[0], device=device, progress=False)]
    store = ResultStore(store_path)
    for cfg, rec in zip(configs, records):
        store.write(cfg, rec)
    return records


class _Progress:
    def __init__(self, total: int, enabled: bool, desc: str):
        self.bar = None
        if enabled and total:
            from tqdm.auto import tqdm
            self.bar = tqdm(total=total, desc=desc, unit="run", smoothing=0.05)
        self.failed = 0

    def done(self, n: int, failed: int = 0):
        self.failed += failed
        if self.bar is not None:
            self.bar.update(n)
            if self.failed:
                self.bar.set_postfix(failed=self.failed)

    def close(self):
        if self.bar is not None:
            self.bar.close()


def _drive(units: list[list[RunConfig]], retries: int, submit: Callable, wait: Callable,
           progress: _Progress, result: SweepResult, window: int | None = None) -> None:
    """The scheduling loop shared by both executors: keep up to ``window`` units in flight (all when None),
    retry failures, split failed groups into single runs, record what still fails."""
    queue = deque((u, 1) for u in units)
    pending: dict[Any, tuple[list[RunConfig], int]] = {}
    while queue or pending:
        while queue and (window is None or len(pending) < window):
            unit, attempt = queue.popleft()
            pending[submit(unit)] = (unit, attempt)
        for handle, outcome in wait(list(pending)):
            unit, attempt = pending.pop(handle)
            if not isinstance(outcome, BaseException):
                result.ran += len(unit)
                progress.done(len(unit))
            elif len(unit) > 1:  # a K-model group failed: retry its runs one by one
                queue.extend(([c], 1) for c in unit)
            elif attempt <= retries:
                queue.append((unit, attempt + 1))
            else:
                result.failures.append(Failure(unit, _error_text(outcome), attempt))
                progress.done(1, failed=1)


def _local(units, store, device, retries, progress, result, runner=None):
    outcomes: dict[int, Any] = {}
    counter = itertools.count()

    def submit(unit):
        h = next(counter)
        try:
            outcomes[h] = run_unit(unit, str(store.path), device, runner=runner)
        except Exception as e:  # KeyboardInterrupt and SystemExit end the sweep; records so far stay
            outcomes[h] = e
        return h

    def wait(handles):
        return [(h, outcomes.pop(h)) for h in handles]

    _drive(units, retries, submit, wait, progress, result, window=1)


# ---- Ray -------------------------------------------------------------------------------------------------------

_SHIM_DIR: str | None = None


@contextlib.contextmanager
def _quick_helper_imports():
    """Ray's raylet gives its helper processes (dashboard agent, ...) about 15 s to start. Each imports ``ray``,
    which imports jsonschema, which builds a grammar at import when the optional ``rfc3987_syntax`` package is
    installed (the book's Jupyter stack brings it): ~4 s of CPU per process, enough on a small, busy machine
    for a local Ray instance to time out during startup. Ray never validates IRIs, so processes of a local
    instance that adcore starts get a stand-in module that declines to load (jsonschema then skips that check).
    ``ADCORE_RAY_SHIM=0`` turns this off."""
    global _SHIM_DIR
    if os.environ.get("ADCORE_RAY_SHIM", "1") == "0" or importlib.util.find_spec("rfc3987_syntax") is None:
        yield
        return
    if _SHIM_DIR is None or not Path(_SHIM_DIR).is_dir():
        _SHIM_DIR = tempfile.mkdtemp(prefix="adcore-ray-")
        atexit.register(shutil.rmtree, _SHIM_DIR, True)
        Path(_SHIM_DIR, "rfc3987_syntax.py").write_text(
            'raise ImportError("left out by adcore in Ray processes: slow to import, not used by Ray")\n')
    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = _SHIM_DIR + (os.pathsep + old if old else "")
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = old


def _import_ray():
    try:
        import ray
    except ImportError as e:
        raise ImportError("the ray executor needs Ray: pip install 'adcore[cluster]' (or pip install "
                          "'ray[default]>=2.9')") from e
    return ray


def init_ray(address: str | None = None, **kwargs: Any) -> bool:
    """Connect to Ray: to ``address`` (or ``$RAY_ADDRESS``) when given, else start a local instance (no
    dashboard; ``kwargs`` such as ``num_cpus=2`` go to ``ray.init``). Returns False when already connected."""
    ray = _import_ray()
    if ray.is_initialized():
        return False
    if address or os.environ.get("RAY_ADDRESS"):
        ray.init(address=address, **kwargs)
    else:
        kwargs.setdefault("include_dashboard", False)
        with _quick_helper_imports():
            ray.init(**kwargs)
    return True


def _ray(units, store, device, retries, progress, result, address, gpus_per_run, cpus_per_run, runner=None):
    ray = _import_ray()
    started = init_ray(address)
    try:
        if gpus_per_run is None:
            gpus_per_run = 1.0 if ray.cluster_resources().get("GPU", 0) > 0 else 0.0
        # Data locations set in the driver's environment travel with the tasks.
        env = {k: v for k, v in os.environ.items() if k.startswith("ADCORE_") and k != "ADCORE_RAY_SHIM"}
        task = ray.remote(run_unit).options(num_cpus=cpus_per_run, num_gpus=gpus_per_run, max_retries=0)
        store_path = str(store.path.resolve())
        units_of: dict[Any, list[RunConfig]] = {}
        warned = False

        def submit(unit):
            ref = task.remote(unit, store_path, device, env, max(1, int(cpus_per_run)), runner)
            units_of[ref] = unit
            return ref

        def wait(refs):
            nonlocal warned
            ready, rest = ray.wait(refs, num_returns=1)
            if rest:  # collect whatever else has finished meanwhile
                ready += ray.wait(rest, num_returns=len(rest), timeout=0)[0]
            out = []
            for ref in ready:
                unit = units_of.pop(ref)
                try:
                    records = ray.get(ref)
                except Exception as e:  # RayTaskError (the run raised), WorkerCrashedError, NodeDiedError, ...
                    out.append((ref, e))
                    continue
                for cfg, rec in zip(unit, records):
                    if not store.has(cfg):  # the worker's results folder is not the driver's
                        if not warned:
                            warned = True
                            print(f"warning: a Ray worker's record is not visible in {store_path}: the results "
                                  "folder must be on a file system that every node shares at the same path. The "
                                  "driver writes a copy of each record it receives.", file=sys.stderr)
                        store.write(cfg, rec)
                out.append((ref, records))
            return out

        _drive(units, retries, submit, wait, progress, result)
    finally:
        if started:
            ray.shutdown()


def run_sweep(configs: Iterable[RunConfig], store: ResultStore | str | os.PathLike, *, executor: str = "local",
              address: str | None = None, device: str | None = None, progress: bool = True,
              gpus_per_run: float | None = None, cpus_per_run: float = 1, retries: int = 2,
              max_runs: int | None = None, group_size: int | None = None,
              runner: Callable[..., dict[str, Any]] | None = None) -> SweepResult:
    """Run every configuration that has no record in ``store``; never raises for a failing run (see
    ``result.failures``). ``max_runs`` caps the runs started by this call; ``group_size`` caps (or, at 1,
    switches off) K-model groups when ``adcore.multi.run_many`` exists."""
    if executor not in ("local", "ray"):
        raise ValueError(f"unknown executor {executor!r}; choose 'local' or 'ray'")
    store = store if isinstance(store, ResultStore) else ResultStore(store)
    configs = _unique(configs)
    todo = [c for c in configs if not store.has(c)]
    result = SweepResult(total=len(configs), already=len(configs) - len(todo))
    if max_runs is not None and len(todo) > max_runs:
        result.skipped = len(todo) - max_runs
        todo = todo[:max_runs]
    if todo:
        if runner is None:  # RunConfig grids: check names up front; K-model groups when available
            preflight(todo)
        store.path.mkdir(parents=True, exist_ok=True)
        units = _units(todo, group_size if runner is None else 1)
        bar = _Progress(len(todo), progress, f"runs ({executor})")
        try:
            if executor == "local":
                _local(units, store, device, retries, bar, result, runner)
            else:
                _ray(units, store, device, retries, bar, result, address, gpus_per_run, cpus_per_run, runner)
        finally:
            bar.close()
    wanted = {config_hash(c) for c in configs}
    df = store.frame() if store.path.is_dir() else pd.DataFrame()
    result.frame = df[df["config_hash"].isin(wanted)].reset_index(drop=True) if len(df) else df
    return result


def execute(configs: Iterable[RunConfig], store: ResultStore | str | os.PathLike, *, executor: str = "local",
            address: str | None = None, device: str | None = None, progress: bool = True,
            gpus_per_run: float | None = None, cpus_per_run: float = 1, retries: int = 2,
            max_runs: int | None = None, group_size: int | None = None,
            runner: Callable[..., dict[str, Any]] | None = None) -> pd.DataFrame:
    """Run every configuration missing from ``store``; return the records of all of them.

    The notebooks' entry point. ``executor="ray"`` sends each run to Ray (``address`` of an existing cluster, or
    a local instance). ``runner`` runs one configuration (default: ``adcore.experiment.run``; chapters with their
    own config class pass theirs). Raises :class:`SweepError` at the end (after every other run finished) if any
    run still failed after ``retries`` retries."""
    result = run_sweep(configs, store, executor=executor, address=address, device=device, progress=progress,
                       gpus_per_run=gpus_per_run, cpus_per_run=cpus_per_run, retries=retries, max_runs=max_runs,
                       group_size=group_size, runner=runner)
    if result.failures:
        raise SweepError(result)
    return result.frame
