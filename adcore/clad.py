"""CLAD: latent-class anomaly detection (Park, Moon, Ahn, Sohn, "What is Wrong with One-Class Anomaly
Detection?", ICLR 2021 SecML workshop).

When the normal data are a *super-category* (several semantic classes merged), a one-class model draws one loose
boundary around all of them. CLAD instead recovers the hidden classes without labels and scores test images by a
classifier's confidence over those self-labels. Four stages, each usable on its own; every network sees the images standardised with the normal classes' mean
and std (``normal_stats``: the per-class means and stds of the normal training images, averaged over the classes,
as the seed's pre-computed tables):

1. ``ConvAutoencoder`` (the seed's conv / ELU / max-pool encoder, dense 512, a reparameterised code with a learned
   σ; see ``adcore.nets``) + ``train_autoencoder``: MSE, Adam (lr 1e-3), batch 512, input dropout 0.1.
2. DEC self-labelling (Xie et al., 2016): ``kmeans_init`` (seeded, deterministic) gives k centres in code space;
   ``soft_assign`` is the Student-t kernel (alpha = 1); ``target_distribution`` P ∝ q² / Σᵢq, row-normalized;
   ``dec`` minimizes ``kl_div`` KL(P‖Q) over encoder and centres with SGD (lr 0.01, momentum 0.9, batch 512), the
   target P computed from each mini-batch's own q (as the seed), until fewer than 0.1 % of the labels change
   between passes or the round cap; labels = argmax q of the mean code.
3. ``ResNet18`` trained with cross-entropy on those labels (``train_classifier``). For 28-32 px inputs it uses a
   small-image stem (3x3 stride-1 convolution, no max-pool); the seed kept ImageNet's 7x7 stride-2 stem + max-pool,
   which shrinks a 28-px image to 7 px before the first block. ``width`` scales the channels (64 = the standard
   ResNet-18; smaller widths are this project's CPU budget option and are labelled as such).
4. ``odin_normality`` (Liang et al., 2018): x̃ = x − δ·sign(−∇ₓ log S_ŷ(x; T)), normality = max softmax(f(x̃)/T);
   the anomaly score is its negative. The seed multiplies the gradient sign by ``ODIN_SCALE`` = 50 / (79 / 255)
   ≈ 161 (a constant from ODIN's CIFAR code), so its flag ε means a step δ = 161·ε in standardised units, i.e.
   161·ε·std of the pixel range (``odin_pixel_step``); ``CLADConfig.eps`` is the seed's flag, and the step taken
   is the seed's. The AUROC is reported as it is (``auc``); the seed replaced an AUROC below 0.5 by 1 − AUROC,
   which the record keeps apart as ``auc_seed``.

``CLADConfig(...).run()`` gives a plain record (AUROC, NMI of the self-labels against the true classes, timings),
like ``adcore.experiment``. The CLAD paper's shallow baseline, an RBF OC-SVM with fixed ν and γ on raw pixels, is
``OCSVMConfig(...).run()`` (``adcore.baselines.OCSVM`` with a one-value grid); Deep SVDD and HSC + OE are
``adcore.experiment.RunConfig`` runs on the same super-category splits. The networks live in ``adcore.nets``
(``ConvAutoencoder``, ``ResNet18``); the chapter (grid, tables, claims) in ``adcore.chapters.clad``.
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import Any, ClassVar, Sequence

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from sklearn.metrics import normalized_mutual_info_score
from torch import nn

from .augment import RECIPES, Augment, make_augment
from .baselines import OCSVM
from .config import ConfigError, RunRecord, RunSpec, check_choice, check_common
from .data import CHANNELS, N_CLASSES, DATASETS, cached_split, subsample
from .metrics import detection_metrics
from .nets import ConvAutoencoder, ResNet18
from .objectives import Objective
from .pretrain import Reconstruction, ReconstructionError
from .train import TrainLog, pick_device, seed_everything, train

# The seed's per-dataset choices (run_mnist.sh, run_cifar10.sh): code size 10 and ODIN flag 1e-4 for MNIST-like grey
# images, 200 and 0.01 for CIFAR-like colour images, except CIFAR-10 LIV (classes 2-7) with code size 100.
SEED_DEFAULTS = {1: dict(hidden=10, eps=1e-4), 3: dict(hidden=200, eps=0.01)}
SEED_HIDDEN = {("cifar10", (2, 3, 4, 5, 6, 7)): 100}
# The seed's ODIN step: sign(gradient) * 50 / (79 / 255), ODIN's CIFAR constant, in standardised input units.
ODIN_SCALE = 50 / (79 / 255)


def normal_stats(x: torch.Tensor, classes: np.ndarray | torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel (mean, std) for standardising uint8 images ``x`` (pixels scaled to [0, 1]): the mean and std of
    each class's images, averaged over the classes (the seed's tables hold per-class values and average them over
    the normal classes, so a class's weight does not depend on its size)."""
    classes = np.asarray(classes)
    if len(classes) != len(x) or len(x) == 0:
        raise ValueError(f"need one class per image and at least one image, got {len(x)} images, {len(classes)} classes")
    xf = x.float() / 255
    per = [(xf[torch.from_numpy(classes == c)].transpose(0, 1).flatten(1)) for c in np.unique(classes)]
    mean = torch.stack([v.mean(1) for v in per]).mean(0)
    std = torch.stack([v.std(1) for v in per]).mean(0)
    return tuple(round(float(m), 6) for m in mean), tuple(round(float(v), 6) for v in std)


def standardizer(mean: Sequence[float], std: Sequence[float], recipe: str | Augment = "none") -> Augment:
    """The augmentation ``recipe`` with its normalisation replaced by (x − mean) / std."""
    if any(v <= 0 for v in std):
        raise ValueError(f"std must be positive, got {tuple(std)}")
    return dataclasses.replace(make_augment(recipe), mean=tuple(mean), std=tuple(std))


def odin_pixel_step(eps: float, std: Sequence[float]) -> tuple[float, ...]:
    """The seed's ODIN step for flag ``eps`` in pixel units (fraction of the [0, 1] range), per channel:
    ε · ODIN_SCALE standardised units times the channel's std."""
    return tuple(eps * ODIN_SCALE * float(s) for s in std)


# ------------------------------------------------------------------------------------------ 1. the autoencoder


def train_autoencoder(ae: ConvAutoencoder, x: torch.Tensor, *, epochs: int = 10, batch_size: int = 512,
                      lr: float = 1e-3, weight_decay: float = 0.0, augment: str | Augment = "none",
                      device: str | torch.device | None = None, seed: int | None = None,
                      progress: bool = False) -> TrainLog:
    """Train ``ae`` in place on uint8 images ``x`` with MSE (Adam); ``augment`` maps pixels to the network's input
    (``standardizer``), which is also the reconstruction target."""
    return train(ReconstructionError(ae, reduction="mean"), Reconstruction(), x, epochs=epochs, batch_size=batch_size,
                 lr=lr, weight_decay=weight_decay, augment=augment, device=device, seed=seed, progress=progress)


@torch.no_grad()
def encode(encoder: nn.Module, x: torch.Tensor, device: str | torch.device | None = None,
           batch_size: int = 1024, augment: str | Augment = "none") -> torch.Tensor:
    """Codes of uint8 images ``x`` (mapped by ``augment``'s test-time transform, default: scaled to [0, 1]) under
    ``encoder`` in eval mode, on ``device``."""
    device = device if isinstance(device, torch.device) else pick_device(device)
    encoder.to(device).eval()
    aug = make_augment(augment)
    return torch.cat([encoder(aug(x[i:i + batch_size].to(device), train=False)) for i in range(0, len(x), batch_size)])


# ---------------------------------------------------------------------------------------- 2. DEC self-labelling


def kmeans_init(z: torch.Tensor | np.ndarray, k: int, seed: int = 0, n_init: int = 20) -> np.ndarray:
    """k-means centres (k x d) of the codes: best of ``n_init`` k-means++ starts, seeded by ``seed`` only (the
    global random state plays no part), so the same codes and seed always give the same centres."""
    from sklearn.cluster import KMeans

    z = z.detach().cpu().numpy() if isinstance(z, torch.Tensor) else np.asarray(z)
    km = KMeans(n_clusters=k, n_init=n_init, random_state=seed).fit(z.astype(np.float64))
    return km.cluster_centers_.astype(np.float32)


def soft_assign(z: torch.Tensor, centres: torch.Tensor, alpha: float = 1.0) -> torch.Tensor:
    """Student-t similarity of each code to each centre, q_ij ∝ (1 + ‖z_i − μ_j‖² / α)^(−(α+1)/2), rows sum to 1."""
    d2 = (z[:, None, :] - centres[None, :, :]).pow(2).sum(-1)
    q = (1 + d2 / alpha).pow(-(alpha + 1) / 2)
    return q / q.sum(1, keepdim=True)


def target_distribution(q: torch.Tensor) -> torch.Tensor:
    """DEC's sharpened targets: p_ij = (q_ij² / f_j) / Σ_j' (q_ij'² / f_j'), with cluster frequency f_j = Σ_i q_ij."""
    w = q.pow(2) / q.sum(0, keepdim=True)
    return w / w.sum(1, keepdim=True)


def kl_div(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """KL(P‖Q) = Σ_j p_ij log(p_ij / q_ij), averaged over the rows (samples); 0 log 0 = 0."""
    return (torch.xlogy(p, p) - p * torch.log(q)).sum(1).mean()


def _class_tuple(value: Any) -> tuple[int, ...]:
    """A CLAD group's normal classes as a tuple of ints (one class given alone counts as a group of one); anything
    else is a :class:`ConfigError` naming the value."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return (int(value),)
    try:
        out = tuple(value)
    except TypeError:
        raise ConfigError(f"normal_class={value!r} must be a class index or a tuple of them, e.g. (0, 2, 3)") from None
    if not all(isinstance(c, (int, np.integer)) and not isinstance(c, bool) for c in out):
        raise ConfigError(f"normal_class={value!r} must be a class index or a tuple of them, e.g. (0, 2, 3)")
    return tuple(int(c) for c in out)


@dataclass
class DECResult:
    labels: np.ndarray  # argmax q after DEC
    kmeans_labels: np.ndarray  # the initial k-means assignment
    centres: np.ndarray  # k x d, final
    changed: list[float] = field(default_factory=list)  # fraction of labels changed at each refresh of P
    rounds: int = 0  # passes over the data (P refreshed before each)
    converged: bool = False  # stopped because fewer than tol labels changed (not by max_rounds)
    losses: list[float] = field(default_factory=list)  # mean KL per pass
    time: float = 0.0


class _Clustering(nn.Module):
    def __init__(self, centres: np.ndarray, alpha: float):
        super().__init__()
        self.centres, self.alpha = nn.Parameter(torch.as_tensor(centres).clone()), alpha

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return soft_assign(z, self.centres, self.alpha)


def dec(encoder: nn.Module, x: torch.Tensor, k: int, *, seed: int = 0, alpha: float = 1.0, lr: float = 0.01,
        momentum: float = 0.9, tol: float = 0.001, max_rounds: int = 100, batch_size: int = 512, n_init: int = 20,
        finetune_encoder: bool = True, augment: str | Augment = "none",
        device: str | torch.device | None = None) -> DECResult:
    """Deep embedded clustering of uint8 images ``x`` (mapped by ``augment``): k-means on ``encoder``'s codes, then
    SGD on KL(P‖Q) over the centres (and the encoder, unless ``finetune_encoder=False``), as the seed: each round is
    one pass over the data in a fixed order in mini-batches, each batch's target P computed from that batch's own q
    (detached), the encoder in training mode (for ``ConvAutoencoder.encoder``: input dropout and a sampled code).
    After each round the labels (argmax q, encoder in eval mode: the mean code) are compared with the previous
    round's (the k-means assignment before the first); training stops when fewer than ``tol`` of them changed, or
    after ``max_rounds`` (``converged`` says which). The encoder is updated in place."""
    t0 = time.perf_counter()
    device = device if isinstance(device, torch.device) else pick_device(device)
    seed_everything(seed)
    aug = make_augment(augment)
    x = x.to(device)
    centres = kmeans_init(encode(encoder, x, device, augment=aug), k, seed, n_init)
    clustering = _Clustering(centres, alpha).to(device)
    params = list(clustering.parameters()) + (list(encoder.parameters()) if finetune_encoder else [])
    opt = torch.optim.SGD(params, lr=lr, momentum=momentum)
    result = DECResult(labels=np.empty(0), kmeans_labels=np.empty(0), centres=centres)

    def assign() -> torch.Tensor:
        with torch.no_grad():
            return clustering(encode(encoder, x, device, augment=aug)).argmax(1)

    labels = assign()
    result.kmeans_labels = labels.cpu().numpy()
    for _ in range(max_rounds):
        encoder.train()
        total, steps = 0.0, 0
        for idx in torch.arange(len(x), device=device).split(batch_size):
            q = clustering(encoder(aug(x[idx], train=False)))
            loss = kl_div(target_distribution(q).detach(), q)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total, steps = total + float(loss.detach()), steps + 1
        result.losses.append(total / max(steps, 1))
        result.rounds += 1
        new = assign()
        changed = float((new != labels).float().mean())
        result.changed.append(changed)
        labels = new
        if changed < tol:
            result.converged = True
            break
    encoder.eval()
    result.labels = labels.cpu().numpy()
    result.centres = clustering.centres.detach().cpu().numpy()
    result.time = time.perf_counter() - t0
    return result


# ---------------------------------------------------------------------------- 3. the classifier on self-labels


class PseudoLabelCE(Objective):
    """Cross-entropy against the self-labels (the trainer's targets); score = 1 − max softmax."""

    name = "pseudo_label_ce"

    def loss(self, outputs, targets):
        return F.cross_entropy(outputs, targets)

    def score(self, outputs):
        return 1 - F.softmax(outputs, 1).amax(1)


def train_classifier(net: nn.Module, x: torch.Tensor, labels: torch.Tensor | np.ndarray, *, epochs: int = 100,
                     lr: float = 1e-4, batch_size: int = 128, weight_decay: float = 0.0, augment: str | Augment = "none",
                     device: str | torch.device | None = None, seed: int | None = None,
                     progress: bool = False) -> TrainLog:
    """Train ``net`` in place with cross-entropy on ``labels`` (Adam, adcore's trainer)."""
    labels = torch.as_tensor(np.asarray(labels), dtype=torch.long)
    return train(net, PseudoLabelCE(), x, targets=labels, augment=augment, epochs=epochs, batch_size=batch_size,
                 lr=lr, weight_decay=weight_decay, device=device, seed=seed, progress=progress)


# --------------------------------------------------------------------------------------------- 4. ODIN scoring


def odin_perturb(net: nn.Module, x: torch.Tensor, temperature: float = 1000.0, eps: float = 0.0) -> torch.Tensor:
    """x̃ = x − ε·sign(−∇ₓ log S_ŷ(x; T)) for float inputs ``x`` (the network's input units): a step that raises
    the temperature-scaled softmax of the predicted class ŷ. ``net`` should be in eval mode."""
    if eps == 0:
        return x
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        logits = net(x) / temperature
        nll = F.cross_entropy(logits, logits.argmax(1), reduction="sum")  # Σ −log S_ŷ(x; T)
        (grad,) = torch.autograd.grad(nll, x)
    return (x - eps * grad.sign()).detach()


def odin_normality(net: nn.Module, x: torch.Tensor, temperature: float = 1000.0, eps: float = 0.0,
                   augment: str | Augment = "none", device: str | torch.device | None = None,
                   batch_size: int = 256, scale: float = ODIN_SCALE) -> np.ndarray:
    """ODIN normality max softmax(f(x̃)/T) of uint8 images ``x`` (higher = more normal; the anomaly score is its
    negative). ``augment`` is the test-time transform that maps pixels to the network's input; the perturbation
    is taken there, with step ``eps * scale`` in those units (the seed's flag ε times its ≈161; ``scale=1`` for a
    step of exactly ε). Computed in float64 at the end, so T = 1000 does not collapse the scores to ties."""
    device = device if isinstance(device, torch.device) else pick_device(device)
    net.to(device).eval()
    aug, out = make_augment(augment), []
    for i in range(0, len(x), batch_size):
        xb = odin_perturb(net, aug(x[i:i + batch_size].to(device), train=False), temperature, eps * scale)
        with torch.no_grad():
            out.append(F.softmax(net(xb).double() / temperature, 1).amax(1).cpu())
    return torch.cat(out).numpy() if out else np.empty(0)


# ------------------------------------------------------------------------------------------------ one CLAD run


@dataclass(frozen=True)
class CLADConfig(RunSpec):
    """Every setting of one CLAD run. ``hidden`` and ``eps`` left ``None`` take the seed's value for the image
    type (grey: 10 and 1e-4, colour: 200 and 0.01; CIFAR-10 LIV: code size 100); they are filled in on
    construction, so keys are explicit. ``eps`` is the seed's ODIN flag: the step is eps * ODIN_SCALE standardised
    units (see ``odin_pixel_step``). Version 2: the seed's autoencoder, standardised inputs, DEC's per-batch
    target, the seed's ODIN step scale, the seed's batch 512 and 100 rounds for DEC."""

    dataset: str = "fmnist"
    normal_class: tuple[int, ...] = (0, 2, 4, 6)
    seed: int = 0
    n_train: int | None = None  # subsample the normal training set
    n_test: int | None = None  # subsample the test set (stratified normal / anomaly)
    # 1. autoencoder
    hidden: int | None = None
    ae_epochs: int = 100
    ae_lr: float = 1e-3
    ae_batch_size: int = 512
    input_dropout: float = 0.1
    # 2. DEC
    k: int = 10
    alpha: float = 1.0
    dec_lr: float = 0.01
    dec_momentum: float = 0.9
    dec_tol: float = 0.001
    dec_max_rounds: int = 100
    dec_batch_size: int = 512
    # 3. classifier
    clf_epochs: int = 100
    clf_lr: float = 1e-4
    clf_batch_size: int = 128
    clf_width: int = 64  # 64 = standard ResNet-18
    clf_augment: str = "none"
    # 4. ODIN
    temperature: float = 1000.0
    eps: float | None = None
    n_view: int = 500  # codes kept (as 2-D PCA coordinates) in the record for the chapter's plot
    data_root: str | None = None

    TAG: ClassVar[str] = "clad"
    KEY_VERSION: ClassVar[int] = 2

    def __post_init__(self):
        object.__setattr__(self, "normal_class", _class_tuple(self.normal_class))
        defaults = dict(SEED_DEFAULTS[CHANNELS.get(self.dataset, 3)])
        defaults["hidden"] = SEED_HIDDEN.get((self.dataset, tuple(sorted(self.normal_class))), defaults["hidden"])
        for name in ("hidden", "eps"):
            if getattr(self, name) is None:
                object.__setattr__(self, name, defaults[name])
        super().__post_init__()

    def validate(self) -> None:
        check_choice("dataset", self.dataset, DATASETS)
        check_choice("clf_augment", self.clf_augment, RECIPES)
        check_common(self, positive=("ae_epochs", "ae_batch_size", "k", "dec_max_rounds", "dec_batch_size",
                                     "clf_epochs", "clf_batch_size", "clf_width"), rates=("ae_lr", "dec_lr", "clf_lr"),
                     classes=N_CLASSES[self.dataset])

    def run(self, device: str | None = None, progress: bool = True) -> dict[str, Any]:
        """The whole CLAD pipeline on one super-category split; returns a flat, JSON-able record."""
        return _run(self, pick_device(device), progress)


def super_category_data(dataset: str, normal: Sequence[int], seed: int = 0, n_train: int | None = None,
                        n_test: int | None = None, root: str | None = None) -> dict[str, torch.Tensor]:
    """The super-category split with the true classes kept: ``train_x``/``train_classes`` (normal images),
    ``test_x``/``test_y`` (0 normal, 1 anomaly)/``test_classes``, and the data ``source``. Subsamples are
    drawn exactly as ``adcore.experiment`` draws them, so CLAD and the baselines see the same images for the
    same seed."""
    split = cached_split(dataset, tuple(normal), root)
    keep = torch.from_numpy(subsample(len(split.train_x), n_train, seed))
    t_idx = torch.from_numpy(subsample(len(split.test_x), n_test, seed, split.test_y.numpy()))
    return {"train_x": split.train_x[keep], "train_classes": split.train_classes[keep],
            "test_x": split.test_x[t_idx], "test_y": split.test_y[t_idx], "test_classes": split.test_classes[t_idx],
            "source": split.source}


def nmi_report(true: np.ndarray, labels: np.ndarray, seed: int = 0) -> dict[str, float]:
    """NMI of self-labels vs true classes, the same for randomly permuted labels (chance: the same cluster
    sizes, no information), and purity (fraction of samples in their cluster's majority class)."""
    true, labels = np.asarray(true), np.asarray(labels)
    chance = normalized_mutual_info_score(true, np.random.default_rng(seed).permutation(labels))
    table = pd.crosstab(labels, true).to_numpy()
    return {"nmi": float(normalized_mutual_info_score(true, labels)), "nmi_chance": float(chance),
            "purity": float(table.max(1).sum() / max(len(true), 1))}


def _run(cfg: CLADConfig, dev: torch.device, progress: bool) -> dict[str, Any]:
    t_start, cpu_start = time.perf_counter(), time.process_time()
    d = super_category_data(cfg.dataset, cfg.normal_class, cfg.seed, cfg.n_train, cfg.n_test, cfg.data_root)
    x, classes = d["train_x"], d["train_classes"].numpy()
    c, size = x.shape[1], x.shape[2]

    mean, std = normal_stats(x, classes)
    std_aug = standardizer(mean, std)

    seed_everything(cfg.seed)
    ae = ConvAutoencoder(c, size, cfg.hidden, cfg.input_dropout)
    ae_log = train_autoencoder(ae, x, epochs=cfg.ae_epochs, batch_size=cfg.ae_batch_size, lr=cfg.ae_lr,
                               augment=std_aug, device=dev, progress=progress)
    res = dec(ae.encoder, x, cfg.k, seed=cfg.seed, alpha=cfg.alpha, lr=cfg.dec_lr, momentum=cfg.dec_momentum,
              tol=cfg.dec_tol, max_rounds=cfg.dec_max_rounds, batch_size=cfg.dec_batch_size, augment=std_aug,
              device=dev)
    codes = encode(ae.encoder, x, dev, augment=std_aug).cpu().numpy()

    seed_everything(cfg.seed)
    clf_aug = standardizer(mean, std, cfg.clf_augment)
    clf = ResNet18(cfg.k, c, cfg.clf_width, small_input=True)
    clf_log = train_classifier(clf, x, res.labels, epochs=cfg.clf_epochs, lr=cfg.clf_lr,
                               batch_size=cfg.clf_batch_size, augment=clf_aug, device=dev, progress=progress)
    pred = encode(clf, x, dev, augment=clf_aug).argmax(1).cpu().numpy()  # the batched eval-mode forward pass
    t0 = time.perf_counter()
    normality = odin_normality(clf, d["test_x"], cfg.temperature, cfg.eps, clf_aug, dev)
    score_time = time.perf_counter() - t0
    test_y = d["test_y"].numpy()

    m = detection_metrics(test_y, -normality)  # auc never flipped
    return RunRecord(cfg, m, ae_log.train_time + res.time + clf_log.train_time, score_time,
                     time.perf_counter() - t_start, len(x), len(test_y), d["source"], dev, {
        "auc_seed": float(max(m["auc"], 1 - m["auc"])),  # the seed's flip below 0.5
        "input_mean": list(mean), "input_std": list(std),
        "odin_step_std": cfg.eps * ODIN_SCALE, "odin_step_pixels": list(odin_pixel_step(cfg.eps, std)),
        **nmi_report(classes, res.labels, cfg.seed),
        "nmi_kmeans": float(normalized_mutual_info_score(classes, res.kmeans_labels)),
        "cluster_sizes": np.bincount(res.labels, minlength=cfg.k).tolist(),
        "contingency": pd.crosstab(res.labels, classes).reindex(index=range(cfg.k), columns=list(cfg.normal_class),
                                                                fill_value=0).to_numpy().tolist(),
        "dec_rounds": res.rounds, "dec_converged": res.converged, "dec_changed": res.changed,
        "dec_max_rounds": cfg.dec_max_rounds,
        "clf_train_acc": float((pred == res.labels).mean()),  # fit to the self-labels
        "ae_losses": ae_log.losses, "clf_losses": clf_log.losses,
        "view": _view(codes, classes, res.labels, cfg.n_view, cfg.seed),
        "ae_time": ae_log.train_time, "dec_time": res.time, "clf_time": clf_log.train_time,
        "score_time": score_time,
        "cpu_time": time.process_time() - cpu_start,  # process CPU seconds: a load-independent cost measure
        "n_params": sum(p.numel() for p in clf.parameters())}).flat()


def _view(codes: np.ndarray, classes: np.ndarray, labels: np.ndarray, n: int, seed: int) -> dict[str, list]:
    """2-D PCA of the codes (fit on all), for a seeded subsample of n points."""
    from sklearn.decomposition import PCA

    idx = np.sort(np.random.default_rng(seed).choice(len(codes), min(n, len(codes)), replace=False))
    xy = PCA(2, random_state=seed).fit(codes).transform(codes[idx]) if codes.shape[1] >= 2 else \
        np.c_[codes[idx, :1], np.zeros(len(idx))]
    return {"x": np.round(xy[:, 0], 4).tolist(), "y": np.round(xy[:, 1], 4).tolist(),
            "true": classes[idx].tolist(), "dec": labels[idx].tolist()}


# ------------------------------------------------------------------------------------- the OC-SVM baseline


@dataclass(frozen=True)
class OCSVMConfig(RunSpec):
    """RBF one-class SVM on flattened pixels in [0, 1] (or on ``pca`` principal components of them, fit on the
    normal training images). ν and γ are fixed a priori, never tuned on the test set: ν = 0.1 (the expected
    fraction of training points outside the boundary) and γ = 'scale' = 1 / (d · Var(X_train))."""

    TAG: ClassVar[str] = "ocsvm"

    dataset: str = "fmnist"
    normal_class: tuple[int, ...] = (0, 2, 4, 6)
    seed: int = 0
    n_train: int | None = None
    n_test: int | None = None
    nu: float = 0.1
    gamma: str | float = "scale"
    pca: int | None = None
    max_train: int | None = 10000  # the kernel matrix grows as n²: at most this many training images
    data_root: str | None = None

    def __post_init__(self):
        object.__setattr__(self, "normal_class", _class_tuple(self.normal_class))
        super().__post_init__()

    def validate(self) -> None:
        check_choice("dataset", self.dataset, DATASETS)
        check_common(self, fractions=("nu",), classes=N_CLASSES[self.dataset])

    def run(self, device: str | None = None, progress: bool = True) -> dict[str, Any]:
        """Fit the OC-SVM on the normal training images and score the test set (anomaly score = −decision)."""
        from sklearn.decomposition import PCA

        t_start = time.perf_counter()
        d = super_category_data(self.dataset, self.normal_class, self.seed, self.n_train, self.n_test,
                                self.data_root)
        x = d["train_x"]
        if self.max_train is not None and len(x) > self.max_train:
            x = x[torch.from_numpy(subsample(len(x), self.max_train, self.seed))]
        train_f = x.flatten(1).numpy().astype(np.float64) / 255
        test_f = d["test_x"].flatten(1).numpy().astype(np.float64) / 255
        if self.pca:
            pca = PCA(self.pca, random_state=self.seed).fit(train_f)
            train_f, test_f = pca.transform(train_f), pca.transform(test_f)
        gamma = 1.0 / (train_f.shape[1] * train_f.var()) if self.gamma == "scale" else float(self.gamma)
        t0 = time.perf_counter()
        svm = OCSVM(nu=self.nu, gammas=(gamma,)).fit(train_f)
        fit_time = time.perf_counter() - t0
        t0 = time.perf_counter()
        scores = svm.score(test_f)
        test_time = time.perf_counter() - t0
        return RunRecord(self, detection_metrics(d["test_y"].numpy(), scores), fit_time, test_time,
                         time.perf_counter() - t_start, len(train_f), len(test_f), d["source"], torch.device("cpu"),
                         {"gamma_value": gamma, "n_support": int(len(svm.model.support_))}).flat()
