"""Training objectives: each a small object with ``loss(outputs, targets)`` and ``score(outputs)``.

Targets follow one convention everywhere: 0 = normal, 1 = OE / anomaly. The general Deep SAD objective uses
the Deep SAD paper's semi-labels instead (+1 labelled normal, 0 unlabelled, -1 labelled anomaly); its
``oe_target`` tells the trainer which label OE samples carry. Higher scores mean "more anomalous".
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

OBJECTIVES = ("hsc", "deepsad", "deepsad_semi", "deepsvdd", "deepsvdd_soft", "bce", "focal", "geo", "geo8")
GEO_OBJECTIVES = ("geo", "geo8")  # GEO with the paper's 72 transformations, and with flip x rotation only
HSC_NORMS = ("l2_squared_linear", "l1", "l2", "l2_squared")
EPS = 1e-9


class Objective:
    """Base: ``head`` says the network needs the 1-logit classifier head; ``center`` objectives need c."""

    name = "objective"
    head = False
    bias_allowed = True
    needs_center = False
    oe_target = 1
    # The loss depends on the outputs, the targets and the constructor's settings only (no state such as a
    # centre): the K-model trainer computes equal such objectives of K models in one vmapped call.
    stateless = False

    def loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def score(self, outputs: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def after_step(self, outputs: torch.Tensor, targets: torch.Tensor, epoch: int) -> None:
        """Hook for state that is not trained by gradient (the soft-boundary radius)."""

    def state(self) -> dict:
        return {}


class HSC(Objective):
    """Hypersphere Classifier: a radial-basis "pseudo-Huber" distance h pushed to 0 for normals and up for OE."""

    name = "hsc"
    stateless = True

    def __init__(self, norm: str = "l2_squared_linear"):
        if norm not in HSC_NORMS:
            raise ValueError(f"unknown HSC norm {norm!r}; choose one of {', '.join(HSC_NORMS)}")
        self.norm = norm

    def distance(self, z: torch.Tensor) -> torch.Tensor:
        if self.norm == "l2_squared_linear":
            return torch.sqrt(z.pow(2).sum(1) + 1) - 1
        if self.norm == "l1":
            return z.abs().sum(1)
        if self.norm == "l2":
            return z.norm(dim=1)
        return z.pow(2).sum(1)

    def loss(self, outputs, targets):
        h = self.distance(outputs)
        oe = -torch.log(-torch.expm1(-h) + EPS)  # -log(1 - exp(-h) + eps)
        return torch.where(targets == 0, h, oe).mean()

    def score(self, outputs):
        return -torch.expm1(-self.distance(outputs))


class DeepSADOE(Objective):
    """Deep SAD as the Rethinking code uses it with OE: centre 0, no eta; OE pushed away via 1/||z||^2."""

    name = "deepsad"
    stateless = True

    def loss(self, outputs, targets):
        d = outputs.pow(2).sum(1)
        return torch.where(targets == 0, d, 1.0 / (d + EPS)).mean()

    def score(self, outputs):
        return outputs.pow(2).sum(1)


class _Centred(Objective):
    """Objectives measured from a centre c fixed from the initial network (Deep SVDD, Deep SAD)."""

    needs_center = True
    bias_allowed = False

    def __init__(self) -> None:
        self.c: torch.Tensor | None = None

    def set_center(self, mean_output: torch.Tensor, eps: float = 0.1) -> None:
        """c = mean initial output; coordinates with |c_i| < eps are pushed to +-eps (sign kept) so that a
        zero-weight network cannot trivially hit the centre."""
        c = mean_output.detach().clone()
        small = c.abs() < eps
        c[small & (c < 0)] = -eps
        c[small & (c >= 0)] = eps
        self.c = c

    def dist(self, outputs: torch.Tensor) -> torch.Tensor:
        if self.c is None:
            raise RuntimeError(f"{self.name}: centre c is not set; call set_center first (the trainer does)")
        return (outputs - self.c.to(outputs.device)).pow(2).sum(1)

    def score(self, outputs: torch.Tensor) -> torch.Tensor:
        return self.dist(outputs)

    def state(self) -> dict:
        return {"c": None if self.c is None else self.c.tolist()}


class DeepSADSemi(_Centred):
    """General Deep SAD (Ruff et al., ICLR 2020): unlabelled -> d, labelled -> eta * (d + eps)^semi_label."""

    name = "deepsad_semi"
    oe_target = -1

    def __init__(self, eta: float = 1.0, eps: float = 1e-6):
        super().__init__()
        self.eta, self.eps = eta, eps

    def loss(self, outputs, targets):
        d = self.dist(outputs)
        labelled = self.eta * (d + self.eps) ** targets.to(d.dtype)
        return torch.where(targets == 0, d, labelled).mean()


class DeepSVDD(_Centred):
    """One-class Deep SVDD: mean squared distance to c (targets ignored: all training data count as normal)."""

    name = "deepsvdd"

    def loss(self, outputs, targets):
        return self.dist(outputs).mean()


class DeepSVDDSoft(_Centred):
    """Soft-boundary Deep SVDD: R^2 + (1/nu) mean(max(0, d - R^2)).

    R is not trained by gradient: after ``warm_up`` epochs it is set after every step to the (1 - nu)-quantile of
    sqrt(d) over the batch, as in the seed."""

    name = "deepsvdd_soft"

    def __init__(self, nu: float = 0.1, warm_up: int = 10):
        super().__init__()
        if not 0 < nu <= 1:
            raise ValueError(f"nu must lie in (0, 1], got {nu}")
        self.nu, self.warm_up, self.R = nu, warm_up, 0.0

    def loss(self, outputs, targets):
        d = self.dist(outputs)
        r2 = self.R ** 2
        return r2 + torch.clamp(d - r2, min=0).mean() / self.nu

    def after_step(self, outputs, targets, epoch):
        if epoch >= self.warm_up:
            d = self.dist(outputs.detach().float())
            self.R = float(torch.quantile(d.sqrt(), 1 - self.nu))

    def score(self, outputs):
        return self.dist(outputs) - self.R ** 2

    def state(self) -> dict:
        return {**super().state(), "R": self.R}


class BCE(Objective):
    """Binary cross-entropy classifier: normal (0) vs OE (1) on a 1-logit head."""

    name = "bce"
    head = True
    stateless = True

    def loss(self, outputs, targets):
        return F.binary_cross_entropy_with_logits(outputs, targets.to(outputs.dtype))

    def score(self, outputs):
        return torch.sigmoid(outputs)


class Focal(BCE):
    """Focal loss (Lin et al.): (1 - p_t)^gamma * BCE, which down-weights examples already classified well."""

    name = "focal"

    def __init__(self, gamma: float = 2.0):
        self.gamma = gamma

    def loss(self, outputs, targets):
        bce = F.binary_cross_entropy_with_logits(outputs, targets.to(outputs.dtype), reduction="none")
        p_t = torch.exp(-bce).clamp(1e-7, 1 - 1e-7)
        return ((1 - p_t) ** self.gamma * bce).mean()


class GEOLoss(Objective):
    """GEO's transformation classifier (``adcore.geo``): cross-entropy over its T transformations, on a network
    with T outputs; trained on the T-fold expanded normal set, without OE. Its ``score`` looks at the
    untransformed image only (minus the probability of the identity); ``adcore.geo.scores`` is the paper's
    Dirichlet score over all transformed copies, which runs use."""

    name = "geo"
    stateless = True

    def __init__(self, n_transforms: int = 72):
        self.n_transforms = n_transforms

    def loss(self, outputs, targets):
        return F.cross_entropy(outputs, targets)

    def score(self, outputs):
        return -outputs.softmax(1)[:, 0]


def make_objective(name: str, **kwargs) -> Objective:
    """Build an objective by name; keyword arguments go to its constructor (norm, eta, nu, gamma, ...)."""
    table = {"hsc": HSC, "deepsad": DeepSADOE, "deepsad_semi": DeepSADSemi, "deepsvdd": DeepSVDD,
             "deepsvdd_soft": DeepSVDDSoft, "bce": BCE, "focal": Focal,
             "geo": lambda: GEOLoss(72), "geo8": lambda: GEOLoss(8)}
    if name not in table:
        raise ValueError(f"unknown objective {name!r}; choose one of {', '.join(OBJECTIVES)}")
    return table[name](**kwargs)
