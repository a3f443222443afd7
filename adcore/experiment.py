"""One run = one normal class (or super-category), one objective, one OE set, one seed -> one plain record.

``RunConfig`` holds every knob; ``run(config)`` loads data (cached per process), builds the network, trains,
scores the test set and returns a flat dict ready for a pandas table or the results store. ``run`` is
``prepare`` + ``train`` + ``finish``; ``adcore.multi.run_many`` uses the same two halves around one K-model
training job, so its records are the same.
"""
from __future__ import annotations

import dataclasses
import platform
import time
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Sequence

from torch.utils.data import Dataset

import numpy as np
import torch
from sklearn.metrics import roc_auc_score

from . import __version__
from .augment import default_recipe, gaussian_blur
from .data import ad_split
from .nets import make_net, n_params, net_for_shape
from .objectives import make_objective
from .oe import make_oe
from .objectives import Objective
from .train import TrainLog, make_generator, pick_device, score, seed_everything, train


@dataclass(frozen=True)
class RunConfig:
    """Every setting of one run. ``None`` means "the default for this dataset/objective"."""

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
    n_train: int | None = None  # subsample the normal training set (smoke runs)
    n_test: int | None = None  # subsample the test set, stratified by normal/anomaly (smoke runs)
    data_root: str | None = None
    oe_root: str | None = None

    def key(self) -> dict[str, Any]:
        """Fields that define the result (paths excluded), in a JSON-friendly form."""
        d = dataclasses.asdict(self)
        for k in ("data_root", "oe_root"):
            d.pop(k)
        d["normal_class"] = list(self.normal_class) if isinstance(self.normal_class, tuple) else self.normal_class
        d["milestones"] = list(self.milestones)
        return d

    def replace(self, **kw) -> "RunConfig":
        return dataclasses.replace(self, **kw)


def objective_kwargs(cfg: RunConfig) -> dict[str, Any]:
    if cfg.objective == "hsc":
        return {"norm": cfg.hsc_norm}
    if cfg.objective == "focal":
        return {"gamma": cfg.focal_gamma}
    return {}


@lru_cache(maxsize=8)
def _split(dataset: str, normal: int | tuple[int, ...], root: str | None):
    return ad_split(dataset, normal, root=root)


@lru_cache(maxsize=4)
def _oe_pool(name: str, shape: tuple[int, int, int], size: int | None, seed: int, classes: int | None,
             blur: float, root: str | None):
    kw = {"classes": classes} if classes is not None else {}
    src = make_oe(name, shape, root=root, **kw)
    pool = src.sample(size if size is not None else src.size, seed)
    if blur and isinstance(pool, torch.Tensor):
        pool = gaussian_blur(pool, blur)
    elif blur:
        raise ValueError(f"blur is supported for in-memory OE sources, not for streamed {name!r}")
    return pool


def _subsample(n: int, k: int | None, seed: int, strata: np.ndarray | None = None) -> np.ndarray:
    """Indices of a seeded subsample of size k (stratified over ``strata`` so both test labels stay present)."""
    if k is None or k >= n:
        return np.arange(n)
    rng = np.random.default_rng(seed)
    if strata is None:
        return np.sort(rng.choice(n, k, replace=False))
    out = []
    for s in np.unique(strata):
        members = np.flatnonzero(strata == s)
        take = max(1, round(k * len(members) / n))
        out.append(rng.choice(members, min(take, len(members)), replace=False))
    return np.sort(np.concatenate(out))


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
    augment: str
    rng_seed: int
    t_start: float
    data_source: str = ""  # where the images came from (e.g. "CIFAR-10 (JPEG copy)"), for the book's run card


def train_size(cfg: RunConfig, n: int) -> int:
    """Number of normal training samples a run of ``cfg`` uses out of ``n``."""
    return n if cfg.n_train is None else min(n, cfg.n_train)


def prepare(cfg: RunConfig, device: str | torch.device | None = None) -> Prepared:
    """Load the data and OE pool of ``cfg``, build its objective and its seeded network."""
    t_start = time.perf_counter()
    dev = device if isinstance(device, torch.device) else pick_device(device)
    normal = tuple(cfg.normal_class) if isinstance(cfg.normal_class, (list, tuple)) else int(cfg.normal_class)
    split = _split(cfg.dataset, normal, cfg.data_root)
    train_x = split.train_x
    if train_size(cfg, len(train_x)) < len(train_x):
        train_x = train_x[torch.from_numpy(_subsample(len(train_x), cfg.n_train, cfg.seed))]
    test_idx = torch.from_numpy(_subsample(len(split.test_x), cfg.n_test, cfg.seed, split.test_y.numpy()))
    test_x, test_y = split.test_x[test_idx], split.test_y[test_idx]
    shape = tuple(train_x.shape[1:])

    objective = make_objective(cfg.objective, **objective_kwargs(cfg))
    oe = None
    if cfg.oe:
        oe = _oe_pool(cfg.oe, shape, cfg.oe_size, cfg.seed, cfg.oe_classes, cfg.blur, cfg.oe_root)
    seed_everything(cfg.seed)
    bias = objective.bias_allowed if cfg.bias is None else cfg.bias
    net = make_net(cfg.net or net_for_shape(shape), cfg.rep_dim, bias=bias, head=objective.head)
    rng_seed = int(torch.randint(0, 2**62, (1,)))
    return Prepared(cfg, dev, train_x, test_x, test_y, objective, oe, net, cfg.augment or default_recipe(shape),
                    rng_seed, t_start, split.source)


def finish(p: Prepared, log: TrainLog, amp: bool = False) -> dict[str, Any]:
    """Score the test set with the trained network of ``p``; the run's flat record."""
    t0 = time.perf_counter()
    scores = score(p.net, p.objective, p.test_x, p.augment, p.device)
    test_time = time.perf_counter() - t0
    return {
        **p.cfg.key(),
        "auc": float(roc_auc_score(p.test_y.numpy(), scores)),
        "train_time": log.train_time,
        "test_time": test_time,
        "wall_time": time.perf_counter() - p.t_start,
        "images_per_s": log.images_per_s,
        "final_loss": log.losses[-1] if log.losses else None,
        "losses": log.losses,
        "n_params": n_params(p.net),
        "n_train": len(p.train_x),
        "n_test": len(p.test_x),
        "n_oe": 0 if p.oe is None else len(p.oe),
        "data_source": p.data_source,
        "models_in_step": log.models,
        "amp": amp,
        "device": device_name(p.device),
        "adcore": __version__,
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }


def train_kwargs(cfg: RunConfig) -> dict[str, Any]:
    """The trainer's settings for ``cfg``."""
    return dict(epochs=cfg.epochs, batch_size=cfg.batch_size, lr=cfg.lr, weight_decay=cfg.weight_decay,
                milestones=cfg.milestones)


def run(cfg: RunConfig, device: str | None = None, progress: bool = True, *, amp: bool = False,
        channels_last: bool = False, compile: bool = False) -> dict[str, Any]:
    """Train and evaluate one configuration; returns a flat record (config, AUC, timings, sizes).

    ``amp`` (bf16 autocast), ``channels_last`` and ``compile`` are speed options of the trainer; ``amp`` changes
    results slightly and is recorded."""
    p = prepare(cfg, device)
    log = train(p.net, p.objective, p.train_x, p.oe, augment=p.augment, device=p.device, progress=progress,
                generator=make_generator(p.device, p.rng_seed), amp=amp, channels_last=channels_last,
                compile=compile, **train_kwargs(cfg))
    return finish(p, log, amp)


def device_name(dev: torch.device) -> str:
    if dev.type == "cuda":
        return torch.cuda.get_device_name(dev)
    return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def grid(base: RunConfig | None = None, **axes: Sequence[Any]) -> list[RunConfig]:
    """Cartesian product of ``axes`` over a base config: ``grid(objective=['hsc','bce'], seed=range(3))``."""
    configs = [base or RunConfig()]
    for name, values in axes.items():
        configs = [c.replace(**{name: v}) for c in configs for v in values]
    return configs
