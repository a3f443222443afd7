"""GEO (Golan & El-Yaniv, NeurIPS 2018, "Deep anomaly detection using geometric transformations"): the
unsupervised state of the art that the Rethinking paper's CIFAR-10 table compares against (Geo* 86.0).

A classifier learns which of T geometric transformations was applied to a normal image; at test time every
transformed copy of an image is classified, and an image whose transformations the classifier cannot tell apart
is anomalous. The transformations are the paper's 72 compositions of a horizontal flip (2), translations by a
quarter of the image side in x and in y (3 x 3: none, minus, plus; border pixels mirrored) and rotations by
k x 90 degrees (4), in the authors' order (flip, x, y, rotation: the product's last factor fastest); ``8`` is the
authors' ``SimpleTransformer`` (flip x rotation, no translation), the cheap subset.

The normality score is the authors' Dirichlet score: for each transformation t, a Dirichlet distribution is fitted
(maximum likelihood, Minka's fixed point) to the softmax outputs on the t-transformed *training* images, and a test
image scores sum_t (alpha_t - 1) . log softmax(net(t(x))), averaged over t. The anomaly score is its negative.
Training is plain cross-entropy over the T-fold expanded normal set (:class:`GEOLoss`, the trainer's usual loop).
Inputs are scaled to [-1, 1] as the authors' ``normalize_minus1_1`` (:func:`scaling`), without augmentation.
"""
from __future__ import annotations

import itertools
from typing import Sequence

import numpy as np
import torch
from scipy.special import polygamma, psi

from .augment import Augment
from .objectives import GEOLoss  # noqa: F401 - the objective lives with the others
from .train import forward_all

Transform = tuple[bool, int, int, int]  # flip, shift along x (columns), shift along y (rows), quarter turns
TRANSFORM_SETS = (72, 8)


def scaling(channels: int) -> Augment:
    """GEO's input transform: [0, 1] images to [-1, 1], no augmentation."""
    return Augment(mean=(0.5,) * channels, std=(0.5,) * channels)


def transforms(n: int = 72, side: int = 32) -> list[Transform]:
    """The authors' transformation list: 72 (shifts of side // 4 pixels) or 8 (flip x rotation)."""
    if n not in TRANSFORM_SETS:
        raise ValueError(f"GEO transformations: {n!r}; choose 72 (the paper's) or 8 (flip x rotation)")
    s = side // 4
    shifts = (0, -s, s) if n == 72 else (0,)
    return [(f, tx, ty, k) for f, tx, ty, k in itertools.product((False, True), shifts, shifts, range(4))]


def _mirror(n: int, shift: int, device) -> torch.Tensor:
    """Source index of each output position of a 1-D shift by ``shift`` with mirrored borders (edge pixel
    repeated: the 'reflect' fill of the authors' Keras ``apply_affine_transform``)."""
    i = torch.arange(n, device=device) - shift
    i = torch.where(i < 0, -i - 1, i)
    return torch.where(i >= n, 2 * n - i - 1, i)


def apply(x: torch.Tensor, t: Transform) -> torch.Tensor:
    """Transformation ``t`` of every image of the batch ``x`` (N x C x H x W, any dtype)."""
    flip, tx, ty, k = t
    if flip:
        x = x.flip(-1)
    if tx:
        x = x.index_select(-1, _mirror(x.shape[-1], tx, x.device))
    if ty:
        x = x.index_select(-2, _mirror(x.shape[-2], ty, x.device))
    return torch.rot90(x, k, (-2, -1)) if k else x


def expand(x: torch.Tensor, ts: Sequence[Transform]) -> tuple[torch.Tensor, torch.Tensor]:
    """The training set of the transformation classifier: every image under every transformation, image by image
    (image i's T copies at rows i*T ... i*T + T-1, as the authors tile them), and the transformation labels."""
    if x.shape[-1] != x.shape[-2] and any(k % 2 for *_, k in ts):
        raise ValueError(f"GEO rotates by 90 degrees: images must be square, got {tuple(x.shape[-2:])}")
    out = torch.stack([apply(x, t) for t in ts], 1)  # N x T x C x H x W
    labels = torch.arange(len(ts)).repeat(len(x))
    return out.flatten(0, 1), labels


def _inv_psi(y: np.ndarray, iters: int = 5) -> np.ndarray:
    """Inverse digamma by Newton's method from Minka's starting point."""
    x = np.where(y >= -2.22, np.exp(y) + 0.5, -1.0 / (y - psi(1)))
    for _ in range(iters):
        x = x - (psi(x) - y) / polygamma(1, x)
    return x


def fit_dirichlet(p: np.ndarray, max_iter: int = 1000, tol: float = 1e-9) -> np.ndarray:
    """Maximum-likelihood Dirichlet parameters of the rows of ``p`` (N x T probability vectors): Minka's fixed
    point alpha <- psi^-1(psi(sum alpha) + mean log p), from the moment-matching start the authors use."""
    p = np.clip(np.asarray(p, dtype=np.float64), 1e-12, None)
    n, t = p.shape
    mean, log_mean = p.mean(0), np.log(p).mean(0)
    alpha_sum = n * (t - 1) * -psi(1) / (n * np.sum(mean * np.log(mean)) - np.sum(mean * np.log(p).sum(0)))
    alpha = mean * alpha_sum
    for _ in range(max_iter):
        new = _inv_psi(psi(alpha.sum()) + log_mean)
        if np.sqrt(np.sum((new - alpha) ** 2)) < tol:
            return new
        alpha = new
    return alpha


@torch.no_grad()
def scores(net: torch.nn.Module, train_x: torch.Tensor, test_x: torch.Tensor, ts: Sequence[Transform],
           augment: Augment, device: torch.device) -> np.ndarray:
    """Anomaly scores (higher = more anomalous) of ``test_x``: minus the Dirichlet normality score averaged over
    the transformations, each Dirichlet fitted on the softmax outputs of the transformed training images."""
    total = np.zeros(len(test_x))
    for t in ts:
        p_fit = forward_all(net, apply(train_x, t), augment, device).softmax(1).double().cpu().numpy()
        alpha = fit_dirichlet(p_fit)
        p = forward_all(net, apply(test_x, t), augment, device).softmax(1).double().cpu().numpy()
        total += np.log(np.clip(p, 1e-12, None)) @ (alpha - 1)
    return -total / len(ts)
