"""One-vs-rest runs with Outlier Exposure: one normal class (or super-category), one objective, one OE set, one
seed -> one plain record.

``RunConfig`` holds every knob; ``cfg.run()`` loads the data (kept per process), builds the network, trains,
scores the test set and returns a flat dict ready for a pandas table or the results store. ``run`` is
``prepare`` + train + ``finish``; ``RunConfig.run_group`` trains configurations with equal ``group_key()`` K at a
time (:func:`adcore.train.train_many`) between the same two halves, so its records are those of ``run``.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Callable, ClassVar, Hashable, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from . import geo
from .augment import RECIPES, Augment, default_recipe, make_augment
from .config import ConfigError, RunRecord, RunSpec, check_choice, check_common, check_range
from .data import N_CLASSES, DATASETS, cached_split, subsample
from .metrics import detection_metrics
from .nets import DEFAULT_REP_DIM, NETS, make_net, n_params, net_for_shape
from .objectives import GEO_OBJECTIVES, HSC_NORMS, OBJECTIVES, GEOLoss, Objective, make_objective
from .oe import OE_SOURCES, LazyImages, NaturalCrops, make_oe
from .train import (Model, Schedule, TrainLog, make_generator, pick_device, score, score_many, seed_everything,
                    train_many)

STREAMED_OE = ("tinyimages", "imagenet22k")  # OE sources that return a Dataset: a run of the whole source trains alone


@dataclass(frozen=True)
class RunConfig(RunSpec):
    """Every setting of one run. ``None`` means "the default for this dataset/objective"."""

    PATHS: ClassVar[tuple[str, ...]] = ("data_root", "oe_root")
    # 2: the seed's LeNet initialisation, blur after the OE augmentation, EMNIST letters as stored, Tiny Images'
    # CIFAR list applied by default.
    KEY_VERSION: ClassVar[int] = 2

    dataset: str = "fmnist"
    normal_class: int | tuple[int, ...] = 0
    objective: str = "hsc"
    oe: str | None = "natural"  # None: no Outlier Exposure
    oe_size: int | None = None  # None: the whole OE source (in-memory sources) / 2**20 virtual crops
    oe_classes: int | None = None  # cifar100 / emnist-letters OE: use k randomly chosen classes
    blur: float = 0.0  # Gaussian blur sigma applied to OE images only
    net: str | None = None
    rep_dim: int | None = None
    bias: bool | None = None  # None: on, except for centred objectives (Deep SVDD / Deep SAD semi)
    augment: str | None = None  # None: the seed's recipe for the image size
    epochs: int = 10
    lr: float = 1e-3
    milestones: tuple[int, ...] = ()
    batch_size: int = 128
    weight_decay: float = 5e-7
    hsc_norm: str = "l2_squared_linear"
    focal_gamma: float = 2.0
    seed: int = 0
    n_train: int | None = None  # subsample the normal training set
    n_test: int | None = None  # subsample the test set, stratified by normal/anomaly
    data_root: str | None = None
    oe_root: str | None = None

    def validate(self) -> None:
        check_choice("dataset", self.dataset, DATASETS)
        check_choice("objective", self.objective, OBJECTIVES)
        check_choice("oe", self.oe, (*OE_SOURCES, None))
        check_choice("net", self.net, (*NETS, None))
        check_choice("augment", self.augment, (*RECIPES, None))
        check_choice("hsc_norm", self.hsc_norm, HSC_NORMS)
        check_common(self, positive=("epochs", "batch_size"), rates=("lr",), classes=N_CLASSES[self.dataset])
        for name in ("weight_decay", "blur", "focal_gamma"):
            check_range(name, getattr(self, name), 0)
        for name in ("rep_dim", "oe_size", "oe_classes"):
            check_range(name, getattr(self, name), 1, integer=True, optional=True)
        for i, m in enumerate(self.milestones):
            check_range(f"milestones[{i}]", m, 1, integer=True)
        if self.oe_classes is not None and self.oe is not None:
            if self.oe not in ("cifar100", "emnist-letters"):
                raise ConfigError(f"oe_classes={self.oe_classes} needs a labelled OE source (oe='cifar100' or "
                                  f"'emnist-letters'), not oe={self.oe!r}; leave oe_classes unset")
            check_range("oe_classes", self.oe_classes, 1, N_CLASSES[self.oe], integer=True)
        if self.objective in GEO_OBJECTIVES:
            bad = [f"{k}={v!r}" for k, v in (("oe", self.oe), ("rep_dim", self.rep_dim), ("blur", self.blur or None))
                   if v is not None]
            if bad:
                raise ConfigError(f"objective={self.objective!r} learns from the normal images alone, one output per "
                                  f"transformation: set oe=None and leave rep_dim and blur unset (got {', '.join(bad)})")

    def run(self, device: str | None = None, progress: bool = True, *, amp: bool = False,
            channels_last: bool | str | None = None, compile: bool = False, mode: str = "auto") -> dict[str, Any]:
        """Train and evaluate this configuration; a flat record (config, AUC, timings, sizes). ``amp`` (bf16
        autocast), ``channels_last`` ("auto": the trainer's choice, ``adcore.train.resolve_layout``; training and
        scoring) and ``compile`` are speed options of the trainer;
        ``amp`` changes results slightly and is recorded."""
        p = prepare(self, device)
        try:
            (log,) = train_many([Model(p.net, p.objective, p.train_x, p.oe, p.targets, self.blur,
                                       generator=make_generator(p.device, p.rng_seed))], schedule(self),
                                augment=p.augment, device=p.device, mode="loop", progress=progress, amp=amp,
                                channels_last=channels_last, compile=compile)
        except FloatingPointError as e:
            raise FloatingPointError(f"run {self.describe()}: {e}") from e
        return finish(p, log, amp, channels_last=channels_last)

    def group_key(self) -> Hashable | None:
        """Runs with equal keys train in the same steps: same image shape, net, rep_dim, bias, head, batch size
        and steps per epoch, OE or not, schedule and augmentation (classes, seeds, objectives with the same head,
        OE sources, sizes and blur may differ). None for data that do not load and for OE pools that are streamed
        (a streamed source's subset small enough to be read into memory, e.g. ImageNet-30's 64 ImageNet-22K images,
        groups like any in-memory pool)."""
        if (self.oe in STREAMED_OE and self.oe_size is None) or self.objective in GEO_OBJECTIVES:
            return None  # GEO: its own training set and scoring, one run at a time
        try:
            x = cached_split(self.dataset, self.normal_class, self.data_root).train_x
            objective = make_objective(self.objective, **objective_kwargs(self))
        except Exception:  # noqa: BLE001 - run() reports the error when this configuration's turn comes
            return None
        n = train_size(self, len(x))
        if n == 0:
            return None
        shape = tuple(x.shape[1:])
        if self.oe in STREAMED_OE and self.oe_size * math.prod(shape) > IN_MEMORY_OE_BYTES:
            return None
        net = self.net or net_for_shape(shape)
        bs = min(self.batch_size, n)
        return (shape, str(x.dtype), net, self.rep_dim or DEFAULT_REP_DIM.get(net),
                objective.bias_allowed if self.bias is None else self.bias, objective.head, bs, n // bs,
                self.oe is not None, self.epochs, self.lr, self.weight_decay, tuple(self.milestones),
                self.augment or default_recipe(shape))

    @classmethod
    def run_group(cls, configs: Sequence["RunConfig"], device: str | None = None, progress: bool = False,
                  on_record: Callable[[Any, dict], Any] | None = None,
                  on_error: Callable[[Any, BaseException], Any] | None = None, *, amp: bool = False,
                  channels_last: bool | str | None = None, compile: bool = False, mode: str = "auto") -> None:
        """Train configurations of one ``group_key()`` as one K-model job; report each record as it is scored.
        A model whose loss becomes non-finite goes to ``on_error`` (raised when None); the others go on."""
        dev = pick_device(device)
        shared: dict[tuple, Any] = {}
        preps = [prepare(cfg, dev, shared) for cfg in configs]
        logs = train_many([Model(p.net, p.objective, p.train_x, p.oe, blur=p.cfg.blur,
                                 generator=make_generator(dev, p.rng_seed)) for p in preps], schedule(preps[0].cfg),
                          augment=preps[0].augment, device=dev, progress=progress, mode=mode, keep_going=True,
                          amp=amp, channels_last=channels_last, compile=compile)
        ok = [i for i, log in enumerate(logs) if not log.error]
        t0 = time.perf_counter()
        scores = score_many([preps[i].net for i in ok], [preps[i].objective for i in ok],
                            [preps[i].test_x for i in ok], preps[0].augment, dev, mode=mode,
                            channels_last=channels_last) if ok else []
        test_time = (time.perf_counter() - t0) / max(len(ok), 1)  # each run's share of the one scoring pass
        scored = dict(zip(ok, scores))
        for i, (p, log) in enumerate(zip(preps, logs)):
            if log.error:
                err = FloatingPointError(f"run {p.cfg.describe()}: {log.error}")
                if on_error is None:
                    raise err
                on_error(p.cfg, err)
            elif on_record is not None:
                on_record(p.cfg, finish(p, log, amp, scored[i], test_time))


def objective_kwargs(cfg: RunConfig) -> dict[str, Any]:
    return {"hsc": {"norm": cfg.hsc_norm}, "focal": {"gamma": cfg.focal_gamma}}.get(cfg.objective, {})


def schedule(cfg: RunConfig) -> Schedule:
    """The trainer's schedule for ``cfg`` (its blur is each model's own: ``Model.blur``)."""
    return Schedule(epochs=cfg.epochs, batch_size=cfg.batch_size, lr=cfg.lr, weight_decay=cfg.weight_decay,
                    milestones=tuple(cfg.milestones))


def train_size(cfg: RunConfig, n: int) -> int:
    """Number of normal training samples a run of ``cfg`` uses out of ``n``."""
    return n if cfg.n_train is None else min(n, cfg.n_train)


IN_MEMORY_OE_BYTES = 2**26  # OE pools up to 64 MB are read into memory once; larger ones are made when drawn


@lru_cache(maxsize=4)
def _oe_pool(name: str, shape: tuple[int, int, int], size: int | None, seed: int, classes: int | None,
             root: str | None) -> tuple[torch.Tensor | LazyImages, str]:
    """The OE pool of a run and a note on it for the record (e.g. whether Tiny Images' CIFAR list was applied).
    Natural crops are virtual (made when drawn); a lazy pool small enough is read into memory once, where runs
    of one job share it. The images, and so the results, are the same either way."""
    kw = {"classes": classes} if classes is not None else {}
    src = make_oe(name, shape, root=root, **kw)
    n = size if size is not None else src.size
    pool = src.virtual(n, seed) if isinstance(src, NaturalCrops) else src.sample(n, seed)
    if isinstance(pool, LazyImages) and pool.nbytes <= IN_MEMORY_OE_BYTES:
        pool = pool.materialize()
    return pool, getattr(src, "note", "")


def _data_key(cfg: RunConfig) -> tuple:
    normal = tuple(cfg.normal_class) if isinstance(cfg.normal_class, (list, tuple)) else int(cfg.normal_class)
    return cfg.dataset, normal, cfg.data_root


def _pool_keys(cfg: RunConfig, shape: tuple) -> tuple[tuple, tuple, tuple]:
    """Keys under which runs of one job share their (identical) training, OE and test pools. The test set is the
    whole test split unless ``n_test`` subsamples it (stratified by the run's normal classes, with its seed)."""
    train_key = (*_data_key(cfg), cfg.n_train, cfg.seed if cfg.n_train is not None else None)
    oe_key = (cfg.oe, shape, cfg.oe_size, cfg.seed, cfg.oe_classes, cfg.oe_root)
    test_key = (cfg.dataset, cfg.data_root) if cfg.n_test is None else (*_data_key(cfg), cfg.n_test, cfg.seed)
    return train_key, oe_key, test_key


@dataclass
class Prepared:
    """Everything one run needs before training: data, OE pool, objective, the seeded network, and the seed of
    the run's generator (drawn from the global RNG right after the network's initialisation)."""

    cfg: RunConfig
    device: torch.device
    train_x: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    objective: Objective
    oe: torch.Tensor | Dataset | None
    net: torch.nn.Module
    augment: str | Augment
    rng_seed: int
    prep_time: float
    data_source: str = ""  # where the images came from (e.g. the CIFAR-10 JPEG tarball), for the run card
    oe_note: str = ""  # what the OE source says about itself (Tiny Images: the CIFAR exclusion list applied or not)
    targets: torch.Tensor | None = None  # GEO: the transformation of each expanded training image
    geo_fit: torch.Tensor | None = None  # GEO: the normal images its Dirichlet scores are fitted on


def prepare(cfg: RunConfig, device: str | torch.device | None = None,
            shared: dict[tuple, Any] | None = None) -> Prepared:
    """Load the data and OE pool of ``cfg``, build its objective and its seeded network. ``shared``: a dict the
    runs of one K-model job pass along, so that each distinct split, training subset, test subset and OE pool is
    made once and is one tensor object (stored once on the device)."""
    t_start = time.perf_counter()
    dev = pick_device(device)
    memo = shared if shared is not None else {}

    def once(key: tuple, make: Callable[[], Any]) -> Any:
        if key not in memo:
            memo[key] = make()
        return memo[key]

    split = once(("split", *_data_key(cfg)), lambda: cached_split(cfg.dataset, cfg.normal_class, cfg.data_root))
    shape = tuple(split.train_x.shape[1:])
    train_key, oe_key, test_key = _pool_keys(cfg, shape)
    train_x = split.train_x
    if train_size(cfg, len(train_x)) < len(train_x):
        train_x = once(("train", *train_key),
                       lambda: split.train_x[torch.from_numpy(subsample(len(split.train_x), cfg.n_train, cfg.seed))])
    test_idx = torch.from_numpy(subsample(len(split.test_x), cfg.n_test, cfg.seed, split.test_y.numpy()))
    test_x, test_y = split.test_x, split.test_y  # all of it: not copied (ImageNet-30's stays memory-mapped)
    if len(test_idx) < len(test_x):
        test_x, test_y = once(("test", *test_key), lambda: split.test_x[test_idx]), split.test_y[test_idx]

    objective = make_objective(cfg.objective, **objective_kwargs(cfg))
    oe, oe_note = None, ""
    if cfg.oe:
        oe, oe_note = once(("oe", *oe_key), lambda: _oe_pool(cfg.oe, shape, cfg.oe_size, cfg.seed, cfg.oe_classes,
                                                               cfg.oe_root))
    augment: str | Augment = cfg.augment or default_recipe(shape)
    targets = geo_fit = None
    rep_dim = cfg.rep_dim
    if isinstance(objective, GEOLoss):  # the classifier of T transformations, on the T-fold expanded normal set
        geo_fit, rep_dim = train_x, objective.n_transforms
        train_x, targets = geo.expand(train_x, geo.transforms(objective.n_transforms, shape[-1]))
        augment = cfg.augment or geo.scaling(shape[0])
    seed_everything(cfg.seed)
    bias = objective.bias_allowed if cfg.bias is None else cfg.bias
    net = make_net(cfg.net or net_for_shape(shape), rep_dim, bias=bias, head=objective.head)
    rng_seed = int(torch.randint(0, 2**62, (1,)))
    return Prepared(cfg, dev, train_x, test_x, test_y, objective, oe, net, augment, rng_seed,
                    time.perf_counter() - t_start, split.source, oe_note, targets, geo_fit)


def finish(p: Prepared, log: TrainLog, amp: bool = False, scores: np.ndarray | None = None,
           test_time: float | None = None, channels_last: bool | str | None = None) -> dict[str, Any]:
    """Score the test set with the trained network of ``p`` (unless ``scores`` are given: a K-model job scores
    all its models in one pass, ``test_time`` being this run's share); the run's flat record. Times are this
    run's own: in a K-model job, its share of the training (job time / K)."""
    if scores is None and p.geo_fit is not None:
        t0 = time.perf_counter()
        scores = geo.scores(p.net, p.geo_fit, p.test_x, geo.transforms(p.objective.n_transforms, p.test_x.shape[-1]),
                            make_augment(p.augment), p.device)
        test_time = time.perf_counter() - t0
    elif scores is None:
        t0 = time.perf_counter()
        scores = score(p.net, p.objective, p.test_x, p.augment, p.device, channels_last=channels_last)
        test_time = time.perf_counter() - t0
    test_time = float(test_time or 0.0)
    return RunRecord(  # n_train: normal images (GEO trains on T copies of them)
        p.cfg, detection_metrics(p.test_y.numpy(), scores), log.train_time, test_time,
        p.prep_time + log.train_time + test_time, len(p.train_x if p.geo_fit is None else p.geo_fit), len(p.test_x),
        p.data_source, p.device, {
            "prep_time": p.prep_time, "images_per_s": log.images_per_s,
            "final_loss": log.losses[-1] if log.losses else None, "losses": log.losses, "n_params": n_params(p.net),
            "n_oe": 0 if p.oe is None else len(p.oe), "oe_note": p.oe_note, "models_in_step": log.models,
            "amp": amp, "layout": log.layout}).flat()  # layout: rounding-level differences; say which trained
