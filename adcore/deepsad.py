"""Deep SVDD and Deep SAD experiments: one ``SADConfig`` -> ``run()`` -> one plain record.

A run is one method on one semi-supervised setting (dataset, normal class, ratios of labelled normals,
labelled anomalies and pollution, known anomaly classes, seed). Methods:

* deep, on the seeds' bias-free networks, initialised from a pretrained autoencoder (``pretrain``,
  ``transfer``): ``deepsad`` (labels +1/0/-1, eta), ``deepsvdd`` (one-class), ``deepsvdd_soft`` (soft-boundary,
  nu);
* ``ae``: the pretrained autoencoder itself, scored by reconstruction error;
* the baselines of :mod:`adcore.baselines` (``ocsvm``, ``kde``, ``isoforest``, ``ssad``, ``semidgm``), on the raw
  features or, with ``hybrid=True``, on the autoencoder's codes.

As in the Deep SAD seed, the autoencoder is pretrained on the whole training set of a run, labelled anomalies
included, and the centre c of every deep method is the mean output of its initial network on the run's training
set, taken in the order of one shuffled epoch with the last incomplete batch dropped (the seed's ``train_loader``
with ``drop_last=True``): for Deep SAD that set holds the labelled anomalies. Unsupervised methods (Deep SVDD, the
autoencoder, OC-SVM, KDE, Isolation Forest) never see labelled anomalies: their canonical configuration is the
same training set without them (``ratio_known_outlier=0``; the pollution is drawn independently of it), so Deep
SVDD at any ratio of labelled anomalies is one run, with its own autoencoder and centre.

``transfer`` says what the network takes from the pretrained autoencoder: ``"full"``, every tensor of the encoder
(the intent of the seeds and of both papers); ``"seed"``, what the Deep SAD seed's code does, which is nothing (its
key filter matches no key, see :mod:`adcore.pretrain`): the network keeps its random initialisation, the
autoencoder only serves the hybrid baselines. ``"seed"`` is therefore the same computation as ``pretrain=False``
and shares its key.

``SADConfig.canonical()`` resets every field a method does not use (Deep SVDD has no use for the ratio of
labelled anomalies, OC-SVM none for epochs, nor for a gamma grid when no labelled anomaly can select from it and
gamma comes from the median heuristic; Deep SAD without any label is Deep SVDD), and ``key()`` is the key of
the canonical config, so the results store trains each distinct computation once: the flat Deep SVDD line of a
labelled-anomaly sweep is a single run per class and seed.
"""
from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import torch

from .baselines import BASELINES, make_baseline, semidgm_spec, torch_threads
from .config import RunRecord, RunSpec, check_choice, check_common
from .data import N_CLASSES, cached_images, subsample
from .environment import data_env
from .metrics import detection_metrics
from .nets import make_sad_net, mlp_for, n_params, sad_net_for
from .objectives import make_objective
from .pretrain import Reconstruction, ReconstructionError, encode, init_from_pretrained, pretrain
from .semisup import known_classes, make_semisupervised, preprocess_images
from .tabular import is_tabular, load_tabular
from .train import pick_device, score, seed_everything, train

DEEP = ("deepsad", "deepsvdd", "deepsvdd_soft")
METHODS = DEEP + ("ae",) + BASELINES
UNSUPERVISED = ("deepsvdd", "deepsvdd_soft", "ae", "ocsvm", "kde", "isoforest")
TRANSFERS = ("full", "seed")
SELECTIONS = ("heldout", "test10")

# What each method reads beyond its data, labels and sizes: canonical() resets every other field of READS, so a
# store key follows from this table. A hybrid baseline also reads the autoencoder's fields; without pretraining
# the ae_* fields are not read.
_AE_FIELDS = ("net", "rep_dim", "pretrain", "ae_epochs", "ae_lr", "ae_milestones", "ae_weight_decay")
_DEEP_FIELDS = (*_AE_FIELDS, "epochs", "lr", "milestones", "weight_decay", "transfer", "batch_size")
READS: dict[str, tuple[str, ...]] = {
    "deepsad": (*_DEEP_FIELDS, "eta"), "deepsvdd": _DEEP_FIELDS, "deepsvdd_soft": (*_DEEP_FIELDS, "warm_up", "nu"),
    "ae": (*_AE_FIELDS, "batch_size"), "ocsvm": ("hybrid", "nu", "gammas", "selection"), "kde": ("hybrid", "nu"),
    "isoforest": ("hybrid", "nu"), "ssad": ("hybrid", "nu", "kappa", "gammas", "selection"),
    "semidgm": ("hybrid", "nu", "batch_size", "dgm_epochs", "dgm_lr")}
_OPTIONAL = tuple(dict.fromkeys(f for fields in READS.values() for f in fields))


@dataclass(frozen=True)
class SADConfig(RunSpec):
    """Every setting of one Deep SVDD / Deep SAD chapter run. Defaults are the Deep SAD seed's, except
    ``transfer`` ("full": the pretrained encoder really initialises the network) and ``selection`` ("heldout":
    the baselines' RBF width chosen without the test set)."""

    # 2: PyTorch's default initialisation, the autoencoder's mean loss on all training data, the seed's centre,
    # truncated counts, the seed's SemiDGM sizes and classifier, the new label-free OC-SVM / SSAD criterion.
    KEY_VERSION = 2

    dataset: str = "fmnist"  # an image dataset (fmnist, mnist, cifar10) or a tabular one (sk-wdbc, sk-wine, ODDS)
    # images: the normal class (one-vs-rest) or a tuple of them (CLAD's super-categories); tabular sets have one
    normal_class: int | tuple[int, ...] = 0
    method: str = "deepsad"
    hybrid: bool = False  # baselines on the pretrained autoencoder's codes
    ratio_known_normal: float = 0.0
    ratio_known_outlier: float = 0.0  # gamma_l
    ratio_pollution: float = 0.0  # gamma_p
    n_known_outlier_classes: int = 1
    known_outlier_class: int | None = None  # None: drawn from the anomaly classes with the seed
    preprocess: str = "minmax"  # images: "minmax" (x / 255, Deep SAD) or "gcn" (GCN-L1 + min-max, Deep SVDD)
    net: str | None = None  # None: the seed's network for the dataset
    rep_dim: int | None = None
    pretrain: bool = True
    transfer: str = "full"  # "full": the encoder's weights initialise the network; "seed": nothing copied
    ae_epochs: int = 150
    ae_lr: float = 1e-4
    ae_milestones: tuple[int, ...] = ()
    ae_weight_decay: float = 5e-4
    epochs: int = 150
    lr: float = 1e-4
    milestones: tuple[int, ...] = (50,)
    weight_decay: float = 5e-7
    batch_size: int = 128
    eta: float = 1.0  # Deep SAD
    nu: float = 0.1  # soft-boundary Deep SVDD, OC-SVM and SSAD
    warm_up: int = 10  # soft-boundary: epochs before R is updated
    kappa: float = 1.0  # SSAD
    gammas: tuple[float, ...] | None = None  # RBF grid of OC-SVM and SSAD (None: 2^-7 ... 2^2)
    selection: str = "heldout"  # OC-SVM / SSAD: "heldout" (training data only) or "test10" (the seeds' protocol)
    dgm_epochs: int = 50  # SemiDGM
    dgm_lr: float = 1e-3
    n_train: int | None = None  # subsample the normal training samples
    n_test: int | None = None  # subsample the test set, stratified by normal / anomaly
    seed: int = 0
    data_root: str | None = None

    def __post_init__(self) -> None:
        if isinstance(self.normal_class, list):  # as JSON gives it back: a tuple, so that the data cache can key on it
            object.__setattr__(self, "normal_class", tuple(self.normal_class))
        super().__post_init__()

    def validate(self) -> None:
        check_choice("method", self.method, METHODS)
        check_choice("transfer", self.transfer, TRANSFERS)
        check_choice("selection", self.selection, SELECTIONS)
        check_common(self, positive=("epochs", "ae_epochs", "batch_size", "dgm_epochs"),
                     rates=("lr", "ae_lr", "dgm_lr"), fractions=("ratio_known_normal", "ratio_known_outlier",
                                                                 "ratio_pollution", "nu"),
                     classes=None if is_tabular(self.dataset) else N_CLASSES.get(self.dataset))

    def canonical(self) -> "SADConfig":
        """The same computation with every unused field at its default (see the module docstring)."""
        d, c = SADConfig(), self
        if c.method == "deepsad" and c.ratio_known_outlier == 0 and c.ratio_known_normal == 0:
            c = c.replace(method="deepsvdd")  # no label at all: the Deep SAD loss is the Deep SVDD loss
        m = c.method
        if m in UNSUPERVISED and c.ratio_known_normal == 0:
            c = c.replace(ratio_known_outlier=0.0)  # labelled anomalies are withheld; the rest does not change
        if c.ratio_known_outlier == 0:
            c = c.replace(n_known_outlier_classes=0, known_outlier_class=None)
        elif c.n_known_outlier_classes != 1:
            c = c.replace(known_outlier_class=None)
        if m == "ae":
            c = c.replace(pretrain=True)
        if m in DEEP and (c.transfer == "seed" or not c.pretrain):
            c = c.replace(pretrain=False, transfer="seed")  # nothing reaches the network: no autoencoder needed
        reads = {*READS[m], *(_AE_FIELDS + ("batch_size",) if c.hybrid and "hybrid" in READS[m] else ())}
        if not c.pretrain:
            reads -= {f for f in _AE_FIELDS if f.startswith("ae_")}
        if c.selection == "heldout" and c.ratio_known_outlier == 0:
            reads.discard("gammas")  # no labelled anomaly to select on: the median heuristic sets gamma (baselines)
        reset = [f for f in _OPTIONAL if f not in reads] + (["normal_class", "preprocess"] if is_tabular(c.dataset)
                                                             else [])
        return c.replace(**{f: getattr(d, f) for f in reset})

    def run(self, device: str | None = None, progress: bool = True) -> dict[str, Any]:
        """Train and evaluate this configuration; a flat record (canonical config, AUC, timings, sizes).
        Tabular runs (small MLPs) use one CPU thread, which is faster for them."""
        cfg = self.canonical()
        dev = pick_device(device)
        with torch_threads(1 if dev.type == "cpu" and is_tabular(cfg.dataset) else None):
            return _run(cfg, dev, progress)


@dataclass
class SADData:
    train_x: torch.Tensor  # float, preprocessed
    train_semi: np.ndarray  # +1 / 0 / -1
    train_y: np.ndarray  # ground truth 0 / 1
    train_idx: np.ndarray  # indices into the source training set (identify the samples)
    test_x: torch.Tensor
    test_y: np.ndarray
    known_classes: tuple
    counts: Any
    source: str = ""  # where the images were read from (the CIFAR-10 JPEG copy must say so on the run card)

    @property
    def unlabelled_mask(self) -> np.ndarray:
        """What an unsupervised method trains on: everything but the labelled anomalies."""
        return self.train_semi != -1


@lru_cache(maxsize=8)
def _data(dataset: str, normal_class: int | tuple[int, ...], rkn: float, rko: float, rp: float, n_known: int,
          known_class: int | None, preprocess: str, n_train: int | None, n_test: int | None, seed: int,
          root: str | None, env: str | None = None) -> SADData:
    """``env``: ``$ADCORE_DATA`` at the call, part of the cache key (the images found may differ with it)."""
    source = ""
    if is_tabular(dataset):
        t = load_tabular(dataset, seed, root)
        train_x, train_labels, test_x, test_y = torch.from_numpy(t.train_x), t.train_y, torch.from_numpy(t.test_x), \
            t.test_y
        normal, outliers = [0], [1]
    else:
        tr, te = cached_images(dataset, "train", root), cached_images(dataset, "test", root)
        train_x, train_labels, source = tr.x, tr.y.numpy(), tr.source
        normal = list(normal_class) if isinstance(normal_class, (tuple, list)) else [normal_class]
        outliers = [c for c in range(N_CLASSES[dataset]) if c not in normal]
        test_x, test_y = te.x, (~np.isin(te.y.numpy(), normal)).astype(np.int64)
    known = known_classes(outliers, n_known, known_class, seed)
    s = make_semisupervised(train_labels, normal, outliers, known, rkn, rko, rp, seed, n_normal=n_train)
    keep = subsample(len(test_x), n_test, seed, test_y)
    test_x, test_y = test_x[torch.from_numpy(keep)], test_y[keep]
    train_x = train_x[torch.from_numpy(s.idx)]
    if not is_tabular(dataset):
        train_x, test_x = preprocess_images(train_x, test_x, preprocess, s.y == 0)
    return SADData(train_x.float(), s.semi, s.y, s.idx, test_x.float(), test_y, known, s.counts, source)


def load(cfg: SADConfig) -> SADData:
    """The semi-supervised training set and the test set of ``cfg`` (cached per process)."""
    return _data(cfg.dataset, cfg.normal_class, cfg.ratio_known_normal, cfg.ratio_known_outlier,
                 cfg.ratio_pollution, cfg.n_known_outlier_classes, cfg.known_outlier_class, cfg.preprocess,
                 cfg.n_train, cfg.n_test, cfg.seed, cfg.data_root, data_env())


def net_name(cfg: SADConfig, data: SADData) -> str:
    if cfg.net:
        return cfg.net
    try:
        return sad_net_for(cfg.dataset)
    except ValueError:
        if data.train_x.dim() == 2:
            return mlp_for(data.train_x.shape[1])
        raise


_AE_CACHE: dict[str, tuple[dict, dict]] = {}


def pretrained_autoencoder(cfg: SADConfig, data: SADData, device: torch.device, progress: bool = False):
    """The autoencoder of ``cfg`` pretrained on its whole training set (labelled anomalies included, as the Deep SAD
    seed), with the seed's loss (the mean squared error); cached per process by the network, the training
    hyper-parameters and the exact training samples. Returns (ae, info)."""
    idx = np.sort(data.train_idx)
    order = np.argsort(data.train_idx, kind="stable")
    name = net_name(cfg, data)
    ident = repr((cfg.dataset, cfg.preprocess, name, cfg.rep_dim, cfg.ae_epochs, cfg.ae_lr, cfg.ae_milestones,
                  cfg.ae_weight_decay, cfg.batch_size, cfg.seed, str(device)))
    key = hashlib.sha1(ident.encode() + idx.tobytes()).hexdigest()
    if key in _AE_CACHE:
        state, info = _AE_CACHE[key]
        ae = make_sad_net(name, cfg.rep_dim, decoder=True)
        ae.load_state_dict(state)
        return ae.to(device), {**info, "ae_cached": True}
    seed_everything(cfg.seed)
    ae = make_sad_net(name, cfg.rep_dim, decoder=True)
    x = data.train_x[torch.from_numpy(order)]
    log = pretrain(ae, x, epochs=cfg.ae_epochs, lr=cfg.ae_lr, milestones=cfg.ae_milestones,
                   weight_decay=cfg.ae_weight_decay, batch_size=cfg.batch_size, device=device, seed=cfg.seed,
                   progress=progress, reduction="mean")
    info = {"ae_time": log.train_time, "ae_final_loss": log.losses[-1] if log.losses else None, "ae_cached": False}
    if len(_AE_CACHE) >= 8:
        _AE_CACHE.pop(next(iter(_AE_CACHE)))
    _AE_CACHE[key] = ({k: v.detach().cpu().clone() for k, v in ae.state_dict().items()}, info)
    return ae, info


@torch.no_grad()
def seed_center(net: torch.nn.Module, x: torch.Tensor, batch_size: int, seed: int, device: torch.device
                ) -> torch.Tensor:
    """The mean output of ``net`` (eval mode) over ``x`` as the Deep SAD seed's ``init_center_c`` sees it: one pass
    of its training loader (shuffled, ``drop_last=True``), so the ``len(x) % batch_size`` samples of a random
    permutation (drawn with ``seed``) are left out; all of ``x`` when it holds fewer than one batch."""
    n = len(x)
    keep = n - n % batch_size if n >= batch_size else n
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:keep]
    net.to(device).eval()
    xs = x[perm.sort().values]
    return torch.cat([net(xs[i:i + 1024].to(device)) for i in range(0, len(xs), 1024)]).mean(0)


def _test10(test_y: np.ndarray, seed: int) -> np.ndarray:
    """The seeds' validation set for OC-SVM / SSAD: int(10 %) of the test set, normals and anomalies in the test
    set's proportions (each count truncated), drawn at random (with ``seed``); indices into the test set."""
    n = len(test_y)
    n_val = int(0.1 * n)
    n_norm, n_out = int(n_val * np.mean(test_y == 0)), int(n_val * np.mean(test_y == 1))
    perm = np.random.default_rng([seed, 10]).permutation(n)
    norm, out = perm[test_y[perm] == 0][:n_norm], perm[test_y[perm] == 1][:n_out]
    return np.concatenate([norm, out])


def _run(cfg: SADConfig, dev: torch.device, progress: bool) -> dict[str, Any]:
    t_start = time.perf_counter()
    data = load(cfg)
    m = cfg.method
    extra: dict[str, Any] = {}
    ae = None
    if m in DEEP and cfg.pretrain or m == "ae" or cfg.hybrid:
        ae, info = pretrained_autoencoder(cfg, data, dev, progress)
        extra.update(info)
    t0 = time.perf_counter()
    if m in DEEP:
        okw = {"eta": cfg.eta} if m == "deepsad" else {"nu": cfg.nu, "warm_up": cfg.warm_up} \
            if m == "deepsvdd_soft" else {}
        objective = make_objective("deepsad_semi" if m == "deepsad" else m, **okw)
        seed_everything(cfg.seed)
        net = make_sad_net(net_name(cfg, data), cfg.rep_dim)
        extra["transferred"] = len(init_from_pretrained(net, ae)) if ae is not None else 0
        mask = np.ones(len(data.train_semi), bool) if m == "deepsad" else data.unlabelled_mask
        x = data.train_x[torch.from_numpy(np.flatnonzero(mask))]
        targets = torch.from_numpy(data.train_semi[mask]) if m == "deepsad" else None
        objective.set_center(seed_center(net, x, cfg.batch_size, cfg.seed, dev))
        log = train(net, objective, x, targets=targets, epochs=cfg.epochs, lr=cfg.lr, milestones=cfg.milestones,
                    weight_decay=cfg.weight_decay, batch_size=cfg.batch_size, device=dev, seed=cfg.seed,
                    progress=progress)
        train_time = time.perf_counter() - t0
        t1 = time.perf_counter()
        scores = score(net, objective, data.test_x, device=dev)
        extra.update(final_loss=log.losses[-1] if log.losses else None, n_params=n_params(net),
                     radius=getattr(objective, "R", None))
    elif m == "ae":
        train_time, t1 = 0.0, time.perf_counter()
        scores = score(ReconstructionError(ae, reduction="mean"), Reconstruction(), data.test_x, device=dev)
    else:
        kw: dict[str, Any] = {"seed": cfg.seed, "nu": cfg.nu}
        if m == "ssad":
            kw["kappa"] = cfg.kappa
        if m in ("ocsvm", "ssad") and cfg.gammas:
            kw["gammas"] = tuple(cfg.gammas)
        if m == "semidgm":
            kw.update(epochs=cfg.dgm_epochs, lr=cfg.dgm_lr, batch_size=cfg.batch_size, device=str(dev))
            if not cfg.hybrid:
                kw.update(semidgm_spec(cfg.dataset, tuple(data.train_x.shape[1:])))
        model = make_baseline(m, **kw)
        feats_train, feats_test = ((encode(ae.encoder, x, dev) if cfg.hybrid else x).flatten(1).numpy()
                                   for x in (data.train_x, data.test_x))
        fit_kw = {}
        if m in ("ocsvm", "ssad") and cfg.selection == "test10":
            val = _test10(data.test_y, cfg.seed)
            fit_kw["val"] = (feats_test[val], data.test_y[val])
        model.fit(feats_train, data.train_semi, **fit_kw)
        train_time = time.perf_counter() - t0
        t1 = time.perf_counter()
        scores = model.score(feats_test)
        extra["selected"] = model.selected.get("param")
        extra["selection"] = model.selected.get("criterion")
    test_time = time.perf_counter() - t1
    c = data.counts
    return RunRecord(cfg, detection_metrics(data.test_y, scores), train_time, test_time,
                     time.perf_counter() - t_start, len(data.train_semi), len(data.test_y), data.source, dev, {
                         "n_known_normal": c.known_normal, "n_unlabelled_normal": c.unlabelled_normal,
                         "n_pollution": c.unlabelled_outlier, "n_known_outlier": c.known_outlier,
                         "known_classes": list(data.known_classes),
                         "test_anomaly_ratio": float(np.mean(data.test_y)), **extra}).flat()
