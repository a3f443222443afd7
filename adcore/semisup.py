"""The semi-supervised anomaly-detection setting of the Deep SAD paper, and the Deep SVDD image preprocessing.

Training data carry semi-labels: +1 labelled normal, 0 unlabelled, -1 labelled anomaly. Four ratios and the
number of known anomaly classes define the training set (Ruff et al., ICLR 2020, and their seed
lukasruff/Deep-SAD-PyTorch, ``create_semisupervised_setting``):

* every normal training sample is used: known (labelled) normals + unlabelled normals = all normals (to within
  the truncation below);
* known anomalies = ``ratio_known_outlier`` x the whole training set, drawn from the known anomaly classes;
* unlabelled anomalies (pollution) = ``ratio_pollution`` x the unlabelled part, drawn from all anomaly classes;
* known normals = ``ratio_known_normal`` x the whole training set.

The four counts solve a 4 x 4 linear system and are truncated to integers (``int()``), as the seed does; a
count whose solution is 3.9999 is therefore 3, and the normal samples used may fall one short of all of them. Two
choices differ from the seed and are deliberate:
pollution and known anomalies are disjoint (the seed can draw the same image as both), and the pollution is
drawn first with its own random stream, so the unlabelled part of the training set depends only on
``ratio_pollution`` and the seed, not on how many anomalies are labelled. Unsupervised methods, which never see
the labels, are then trained on exactly the same data at every ratio of labelled anomalies.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch


@dataclass(frozen=True)
class Counts:
    known_normal: int
    unlabelled_normal: int
    unlabelled_outlier: int
    known_outlier: int

    @property
    def total(self) -> int:
        return self.known_normal + self.unlabelled_normal + self.unlabelled_outlier + self.known_outlier


def semisupervised_counts(n_normal: int, ratio_known_normal: float = 0.0, ratio_known_outlier: float = 0.0,
                          ratio_pollution: float = 0.0) -> Counts:
    """Sample counts of the semi-supervised training set built from ``n_normal`` normal samples."""
    for name, r in (("ratio_known_normal", ratio_known_normal), ("ratio_known_outlier", ratio_known_outlier),
                    ("ratio_pollution", ratio_pollution)):
        if not 0 <= r < 1:
            raise ValueError(f"{name} must lie in [0, 1), got {r}")
    if ratio_known_normal + ratio_known_outlier >= 1:
        raise ValueError("ratio_known_normal + ratio_known_outlier must be < 1")
    rkn, rko, rp = ratio_known_normal, ratio_known_outlier, ratio_pollution
    # unknowns: known normal, unlabelled normal, unlabelled outlier, known outlier
    a = np.array([[1, 1, 0, 0],
                  [1 - rkn, -rkn, -rkn, -rkn],
                  [-rko, -rko, -rko, 1 - rko],
                  [0, -rp, 1 - rp, 0]], dtype=float)
    x = np.linalg.solve(a, np.array([n_normal, 0, 0, 0], dtype=float))
    return Counts(*(int(v) for v in x))  # truncated, as the seed's int(x[i])


def known_classes(outlier_classes: Sequence[int], n_known: int, known_class: int | None, seed: int) -> tuple:
    """The known anomaly classes: none, ``known_class`` (or one drawn with ``seed`` when it is None), or
    ``n_known`` classes drawn with ``seed``. The draw also depends on the set of anomaly classes, so each normal
    class gets its own known class for one seed."""
    outlier_classes = list(outlier_classes)
    if n_known == 0:
        return ()
    if n_known > len(outlier_classes):
        raise ValueError(f"{n_known} known anomaly classes requested, only {len(outlier_classes)} exist")
    if n_known == 1 and known_class is not None:
        if known_class not in outlier_classes:
            raise ValueError(f"known anomaly class {known_class} is not an anomaly class {outlier_classes}")
        return (known_class,)
    rng = np.random.default_rng([seed, 1, *sorted(int(c) for c in outlier_classes)])  # differs per normal class
    return tuple(sorted(int(c) for c in rng.choice(outlier_classes, n_known, replace=False)))


@dataclass
class SemiSet:
    idx: np.ndarray  # indices into the labels the set was built from
    semi: np.ndarray  # semi-labels: +1 known normal, 0 unlabelled, -1 known anomaly
    y: np.ndarray  # ground truth: 0 normal, 1 anomaly
    counts: Counts
    known_classes: tuple


def make_semisupervised(labels: np.ndarray, normal_classes: Sequence[int], outlier_classes: Sequence[int],
                        known_outlier_classes: Sequence[int], ratio_known_normal: float = 0.0,
                        ratio_known_outlier: float = 0.0, ratio_pollution: float = 0.0, seed: int = 0,
                        n_normal: int | None = None) -> SemiSet:
    """Draw the semi-supervised training set from samples with class ``labels``.

    ``n_normal`` subsamples the normal samples first (all of them by default). Raises when the anomaly
    classes hold too few samples for the requested counts."""
    labels = np.asarray(labels)
    idx_normal = np.flatnonzero(np.isin(labels, normal_classes))
    idx_outlier = np.flatnonzero(np.isin(labels, outlier_classes))
    if n_normal is not None and n_normal < len(idx_normal):
        idx_normal = np.sort(np.random.default_rng([seed, 0]).choice(idx_normal, n_normal, replace=False))
    counts = semisupervised_counts(len(idx_normal), ratio_known_normal, ratio_known_outlier, ratio_pollution)
    if counts.known_outlier and not len(known_outlier_classes):
        raise ValueError("labelled anomalies requested (ratio_known_outlier > 0) but no known anomaly class")
    # Pollution first, from every anomaly class, with its own stream (see the module docstring).
    if counts.unlabelled_outlier > len(idx_outlier):
        raise ValueError(f"{counts.unlabelled_outlier} polluting anomalies needed, {len(idx_outlier)} available")
    polluted = np.random.default_rng([seed, 2]).choice(idx_outlier, counts.unlabelled_outlier, replace=False)
    candidates = np.setdiff1d(np.flatnonzero(np.isin(labels, known_outlier_classes)), polluted)
    if counts.known_outlier > len(candidates):
        raise ValueError(f"{counts.known_outlier} labelled anomalies needed, {len(candidates)} available in the "
                         f"known classes {tuple(known_outlier_classes)}")
    known_out = np.random.default_rng([seed, 3]).choice(candidates, counts.known_outlier, replace=False)
    perm = np.random.default_rng([seed, 4]).permutation(idx_normal)
    known_norm = perm[:counts.known_normal]
    unl_norm = perm[counts.known_normal:counts.known_normal + counts.unlabelled_normal]
    idx = np.concatenate([known_norm, unl_norm, polluted, known_out]).astype(np.int64)
    semi = np.concatenate([np.ones(len(known_norm)), np.zeros(len(unl_norm) + len(polluted)),
                           -np.ones(len(known_out))]).astype(np.int64)
    y = np.concatenate([np.zeros(len(known_norm) + len(unl_norm)), np.ones(len(polluted) + len(known_out))])
    return SemiSet(idx, semi, y.astype(np.int64), counts, tuple(known_outlier_classes))


# --- Deep SVDD preprocessing -----------------------------------------------------------------------------------

def gcn_l1(x: torch.Tensor) -> torch.Tensor:
    """Global contrast normalisation with the L1 scale, per image: subtract the image's mean, divide by the mean
    absolute deviation (lukasruff/Deep-SVDD-PyTorch ``global_contrast_normalization(x, scale='l1')``). The result
    does not depend on the input's scale (uint8 or [0, 1])."""
    x = x.float()
    flat = x.flatten(1)
    flat = flat - flat.mean(1, keepdim=True)
    scale = flat.abs().mean(1, keepdim=True).clamp_min(1e-12)
    return (flat / scale).view_as(x)


@dataclass(frozen=True)
class MinMax:
    """One global minimum and maximum (scalars, as in the Deep SVDD seed), fitted on the normal training data."""

    lo: float
    hi: float

    @classmethod
    def fit(cls, x: torch.Tensor) -> "MinMax":
        return cls(float(x.min()), float(x.max()))

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.lo) / max(self.hi - self.lo, 1e-12)


PREPROCESS = ("minmax", "gcn")


def preprocess_images(train: torch.Tensor, test: torch.Tensor, mode: str, normal_mask: np.ndarray
                      ) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 images -> float. ``minmax``: x / 255 (the Deep SAD seed). ``gcn``: GCN-L1 per image, then min-max
    scaling with the extremes of the normal training images (``normal_mask``), applied to train and test."""
    if mode == "minmax":
        return train.float() / 255, test.float() / 255
    if mode == "gcn":
        tr, te = gcn_l1(train), gcn_l1(test)
        mm = MinMax.fit(tr[torch.from_numpy(np.asarray(normal_mask, dtype=bool))])
        return mm(tr), mm(te)
    raise ValueError(f"unknown preprocessing {mode!r}; choose one of {', '.join(PREPROCESS)}")
