"""The Deep SAD paper's shallow baselines and its deep generative one, behind one interface.

``fit(X, y)`` on training features ``X`` (n x d) with semi-labels ``y`` (+1 labelled normal, 0 unlabelled, -1
labelled anomaly; ``None`` = all unlabelled), ``score(X)`` -> anomaly scores, higher = more anomalous.
Unsupervised methods (OC-SVM, KDE, Isolation Forest) train on the samples that are not labelled anomalies;
SSAD and SemiDGM use the labels. The hybrid variants of the paper are these same classes fitted on the codes of
a pretrained autoencoder (``adcore.deepsad`` does that).

Hyper-parameters (the RBF width gamma of OC-SVM and SSAD) are chosen without the test set by default. When the
training data hold labelled anomalies, a stratified 20 % of them is held out and the criterion is the AUC of the
held-out labelled anomalies against the rest of the held-out data. Without labels (the unsupervised setting) no
held-out score can rank the widths: a false-alarm criterion on held-out normal data (the width whose false-alarm
rate at the training scores' (1 - nu)-quantile is closest to nu) always prefers the smoothest boundary, i.e. the
smallest gamma of any grid, so it does not select. The label-free choice is instead the median heuristic,
gamma = 1 / median ||x_i - x_j||^2 over pairs of training samples: the kernel's width is the typical distance
between training points, so the Gram matrix is neither close to the identity (every point its own support
vector) nor close to a constant (a single blob). It is computed, not picked from the grid. The chosen model is
refitted on all training data. ``fit(X, y, val=(X_val, y_val))`` instead picks the grid value with the best AUC
on a labelled validation set: the seeds' protocol, whose validation set is 10 % of the test set.
"""
from __future__ import annotations

import contextlib
import math
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch
from sklearn.metrics import roc_auc_score
from torch import nn
import torch.nn.functional as F

GAMMAS = tuple(2.0 ** k for k in range(-7, 3))  # RBF gamma grid of OC-SVM and SSAD: 2^-7 ... 2^2
BANDWIDTHS = tuple(2.0 ** e for e in np.linspace(0.5, 5, 10))  # KDE bandwidth grid: 2^0.5 ... 2^5
BASELINES = ("ocsvm", "kde", "isoforest", "ssad", "semidgm")


def _labels(X: np.ndarray, y: np.ndarray | None) -> np.ndarray:
    y = np.zeros(len(X), dtype=np.int64) if y is None else np.asarray(y, dtype=np.int64)
    if len(y) != len(X):
        raise ValueError(f"{len(y)} labels for {len(X)} samples")
    if not set(np.unique(y)) <= {-1, 0, 1}:
        raise ValueError("semi-labels must be +1 (labelled normal), 0 (unlabelled) or -1 (labelled anomaly)")
    return y


def holdout(y: np.ndarray, frac: float = 0.2, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Stratified (by semi-label) split into fit and validation indices; a label with >= 2 samples puts at
    least one into validation, and every label keeps at least one sample for fitting."""
    rng = np.random.default_rng([seed, 7])
    fit, val = [], []
    for lab in np.unique(y):
        members = rng.permutation(np.flatnonzero(y == lab))
        k = min(max(int(round(frac * len(members))), 1 if len(members) >= 2 else 0), len(members) - 1)
        val.append(members[:k])
        fit.append(members[k:])
    return np.sort(np.concatenate(fit)), np.sort(np.concatenate(val))


def median_gamma(X: np.ndarray, seed: int = 0, max_samples: int = 1000) -> float:
    """The median heuristic for the RBF kernel exp(-gamma ||x - y||^2): 1 / the median squared distance between
    distinct training samples (at most ``max_samples`` of them, drawn with ``seed``)."""
    X = np.asarray(X, dtype=np.float64).reshape(len(X), -1)
    if len(X) > max_samples:
        X = X[np.sort(np.random.default_rng([seed, 11]).choice(len(X), max_samples, replace=False))]
    d = _sq_dists(X, X)[np.triu_indices(len(X), 1)]
    med = float(np.median(d)) if len(d) else 0.0
    if not med > 0:
        raise ValueError("median heuristic: the training samples do not differ (median distance 0)")
    return 1.0 / med


class Baseline:
    """Base class: subclasses implement ``_fit(X, y, param)`` -> model and ``_score(model, X)``; ``grid`` lists
    the candidate values of the one selected hyper-parameter (empty: nothing to select)."""

    name = "baseline"
    uses_labels = False
    grid: Sequence[Any] = ()

    def __init__(self, nu: float = 0.1, val_frac: float = 0.2, seed: int = 0):
        self.nu, self.val_frac, self.seed = nu, val_frac, seed
        self.model: Any = None
        self.selected: dict[str, Any] = {}

    def _fit(self, X: np.ndarray, y: np.ndarray, param: Any) -> Any:
        raise NotImplementedError

    def _score(self, model: Any, X: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _train_part(self, X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return (X, y) if self.uses_labels else (X[y != -1], y[y != -1])

    def fit(self, X: np.ndarray, y: np.ndarray | None = None,
            val: tuple[np.ndarray, np.ndarray] | None = None) -> "Baseline":
        """Fit on (X, semi-labels y); ``val``: (features, 0/1 anomaly labels) on which the grid value with the best
        AUC is chosen (the seeds' protocol) instead of the training-data criterion."""
        X = np.asarray(X, dtype=np.float64).reshape(len(X), -1)
        y = _labels(X, y)
        param = self.grid[0] if len(self.grid) == 1 else None
        if len(self.grid) > 1:
            param, table, criterion = self.select(X, y) if val is None else self.select_on(X, y, *val)
            self.selected = {"param": param, "criterion": criterion, "table": table}
        elif self.grid:
            self.selected = {"param": param, "criterion": "fixed"}
        self.model = self._fit(*self._train_part(X, y), param)
        return self

    def select(self, X: np.ndarray, y: np.ndarray) -> tuple[Any, list[tuple[Any, float]], str]:
        """Pick the hyper-parameter by the training-data criterion of the module docstring: held-out AUC of the
        labelled anomalies, or without them the median heuristic (:func:`median_gamma`)."""
        fit_idx, val_idx = holdout(y, self.val_frac, self.seed)
        y_val = y[val_idx]
        if not ((y_val == -1).any() and (y_val != -1).any()):
            Xu = self._train_part(X, y)[0]
            return median_gamma(Xu, self.seed), [], "median heuristic (label-free)"
        Xf, yf = self._train_part(X[fit_idx], y[fit_idx])
        table = self._grid_aucs(Xf, yf, X[val_idx], (y_val == -1).astype(int))
        return max(table, key=lambda t: t[1])[0], table, "held-out AUC (labelled anomalies)"

    def select_on(self, X: np.ndarray, y: np.ndarray, X_val: np.ndarray, y_val: np.ndarray
                  ) -> tuple[Any, list[tuple[Any, float]], str]:
        """The grid value whose model, fitted on all training data, has the best AUC on (X_val, y_val); the first
        of equals, as the seeds' strict ``>``."""
        X_val = np.asarray(X_val, dtype=np.float64).reshape(len(X_val), -1)
        table = self._grid_aucs(*self._train_part(X, y), X_val, np.asarray(y_val))
        return max(table, key=lambda t: t[1])[0], table, "AUC on 10 % of the test set (the seeds' protocol)"

    def _grid_aucs(self, Xf, yf, X_val, y_val) -> list[tuple[Any, float]]:
        table = []
        for p in self.grid:
            try:
                model = self._fit(Xf, yf, p)
            except (ValueError, ArithmeticError):
                continue  # e.g. an infeasible or failed QP for this value
            table.append((p, float(roc_auc_score(y_val, self._score(model, X_val)))))
        if not table:
            raise ValueError(f"{self.name}: no grid value could be fitted")
        return table

    def score(self, X: np.ndarray) -> np.ndarray:
        if self.model is None:
            raise RuntimeError(f"{self.name}: call fit first")
        return np.asarray(self._score(self.model, np.asarray(X, dtype=np.float64).reshape(len(X), -1)),
                          dtype=np.float64)


class OCSVM(Baseline):
    """One-class SVM (Schölkopf et al.), RBF kernel, nu = 0.1; gamma by the median heuristic (no labels), or
    selected from 2^-7 ... 2^2 (see the module docstring)."""

    name = "ocsvm"

    def __init__(self, nu: float = 0.1, gammas: Sequence[float] = GAMMAS, **kw):
        super().__init__(nu=nu, **kw)
        self.grid = tuple(gammas)

    def _fit(self, X, y, gamma):
        from sklearn.svm import OneClassSVM

        return OneClassSVM(kernel="rbf", nu=self.nu, gamma=gamma).fit(X)

    def _score(self, model, X):
        return -model.decision_function(X)


def _sq_dists(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    d = (A * A).sum(1)[:, None] + (B * B).sum(1)[None, :] - 2 * A @ B.T
    return np.maximum(d, 0)


def gaussian_log_density(train: np.ndarray, X: np.ndarray, bandwidth: float, chunk: int = 2048) -> np.ndarray:
    """log of the Gaussian KDE of ``train`` at ``X`` (normalised like scikit-learn's KernelDensity), by brute force
    in chunks: trees do not help in hundreds of dimensions."""
    from scipy.special import logsumexp

    n, d = train.shape
    norm = np.log(n) + 0.5 * d * np.log(2 * np.pi * bandwidth ** 2)
    out = [logsumexp(-_sq_dists(X[i:i + chunk], train) / (2 * bandwidth ** 2), axis=1) - norm
           for i in range(0, len(X), chunk)]
    return np.concatenate(out) if out else np.zeros(0)


class KDE(Baseline):
    """Gaussian kernel density estimate; bandwidth from 2^0.5 ... 2^5 by 5-fold cross-validated log-likelihood
    on the training data (no labels needed; the criterion of scikit-learn's GridSearchCV over KernelDensity);
    score = negative log density."""

    name = "kde"

    def __init__(self, bandwidths: Sequence[float] = BANDWIDTHS, cv: int = 5, **kw):
        super().__init__(**kw)
        self.bandwidths, self.cv = tuple(bandwidths), cv

    def fit(self, X, y=None):
        from scipy.special import logsumexp
        from sklearn.model_selection import KFold

        X = np.asarray(X, dtype=np.float64).reshape(len(X), -1)
        y = _labels(X, y)
        Xu = X[y != -1]
        folds = KFold(min(self.cv, len(Xu)), shuffle=True, random_state=self.seed)
        h = np.asarray(self.bandwidths, dtype=np.float64)
        total = np.zeros(len(h))
        for tr, va in folds.split(Xu):
            d2 = _sq_dists(Xu[va], Xu[tr])  # once per fold, shared by every bandwidth
            n, dim = len(tr), Xu.shape[1]
            for k, b in enumerate(h):
                ll = logsumexp(-d2 / (2 * b ** 2), axis=1) - np.log(n) - 0.5 * dim * np.log(2 * np.pi * b ** 2)
                total[k] += ll.sum()
        mean = total / folds.get_n_splits()
        best = float(h[int(np.argmax(mean))])
        self.model = {"train": Xu, "bandwidth": best}
        self.selected = {"param": best, "criterion": f"{self.cv}-fold CV log-likelihood",
                         "table": list(zip(self.bandwidths, map(float, mean)))}
        return self

    def _score(self, model, X):
        return -gaussian_log_density(model["train"], X, model["bandwidth"])


class IsoForest(Baseline):
    """Isolation Forest (Liu et al.): 100 trees, 256 samples per tree; score = negative sklearn score."""

    name = "isoforest"

    def __init__(self, n_estimators: int = 100, max_samples: int = 256, **kw):
        super().__init__(**kw)
        self.n_estimators, self.max_samples = n_estimators, max_samples

    def _fit(self, X, y, _):
        from sklearn.ensemble import IsolationForest

        return IsolationForest(n_estimators=self.n_estimators, max_samples=min(self.max_samples, len(X)),
                               random_state=self.seed).fit(X)

    def _score(self, model, X):
        return -model.score_samples(X)


def ssad_dual(K: np.ndarray, y: np.ndarray, kappa: float = 1.0, Cp: float = 1.0, Cu: float = 1.0,
              Cn: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Solve the dual of convex SSAD (Görnitz et al., JAIR 2013) with cvxopt's QP solver.

    Primal: min 0.5||w||^2 - rho - kappa*gamma + sum_i C_i xi_i over w, rho, gamma >= 0, xi >= 0, subject to
    <w, phi(x_i)> >= rho - xi_i (unlabelled) and y_j <w, phi(x_j)> >= y_j rho + gamma - xi_j (labelled).
    Dual, with c_i = -1 for labelled anomalies and +1 otherwise:
        min_a 0.5 a' (cc' * K) a   s.t.  0 <= a_i <= C_i,  sum_i c_i a_i = 1,  sum_{labelled} a_j >= kappa.
    kappa weighs the margin gamma of the labelled samples: it forces their dual weights to sum to at least kappa
    (kappa = 0 lets the solution ignore the labels). Returns (alpha, c)."""
    from cvxopt import matrix, solvers, sparse, spmatrix

    n = len(y)
    c = np.where(y == -1, -1.0, 1.0)
    C = np.where(y == 0, Cu, np.where(y == 1, Cp, Cn)).astype(float)
    labelled = (y != 0).astype(float)
    if labelled.any() and C[y != 0].sum() < kappa:
        raise ValueError(f"SSAD infeasible: kappa={kappa} exceeds the labelled samples' total weight "
                         f"{C[y != 0].sum():g}")
    P = matrix(K * np.outer(c, c) + 1e-10 * np.eye(n))
    eye = spmatrix(1.0, range(n), range(n))
    G, h = [eye, -eye], [matrix(C), matrix(0.0, (n, 1))]
    if labelled.any():
        G.append(matrix(-labelled, (1, n)))
        h.append(matrix(-float(kappa), (1, 1)))
    sol = solvers.qp(P, matrix(0.0, (n, 1)), sparse(G), matrix(h), matrix(c, (1, n)), matrix(1.0),
                     options={"show_progress": False})
    if sol["status"] != "optimal":
        raise ArithmeticError(f"SSAD dual QP did not converge (cvxopt status {sol['status']!r})")
    return np.clip(np.array(sol["x"]).ravel(), 0, None), c


class SSAD(Baseline):
    """Convex semi-supervised AD (Görnitz et al., JAIR 2013), RBF kernel, dual QP solved by cvxopt; gamma
    selected from 2^-7 ... 2^2 (the median heuristic without labelled anomalies; see the module docstring). ``kappa`` enters the QP (the seed accepts it but never passes it on); the box
    constraints are the seed's Cp = Cu = Cn = 1. Score: rho - <w, phi(x)>."""

    name = "ssad"
    uses_labels = True

    def __init__(self, kappa: float = 1.0, Cp: float = 1.0, Cu: float = 1.0, Cn: float = 1.0,
                 gammas: Sequence[float] = GAMMAS, **kw):
        super().__init__(**kw)
        self.kappa, self.Cp, self.Cu, self.Cn = kappa, Cp, Cu, Cn
        self.grid = tuple(gammas)

    def _fit(self, X, y, gamma):
        from sklearn.metrics.pairwise import rbf_kernel

        alpha, c = ssad_dual(rbf_kernel(X, X, gamma=gamma), y, self.kappa, self.Cp, self.Cu, self.Cn)
        sv = alpha > 1e-8 * max(alpha.max(), 1e-300)
        coef, X_sv = (alpha * c)[sv], X[sv]
        f_train = rbf_kernel(X, X_sv, gamma=gamma) @ coef
        C = np.where(y == 0, self.Cu, np.where(y == 1, self.Cp, self.Cn))
        margin = sv & (alpha < C * (1 - 1e-6)) & (y != -1)
        rho = float(np.mean(f_train[margin])) if margin.any() else float(np.median(f_train[sv & (y != -1)]))
        return {"gamma": gamma, "X_sv": X_sv, "coef": coef, "rho": rho, "n_sv": int(sv.sum())}

    def _score(self, model, X):
        from sklearn.metrics.pairwise import rbf_kernel

        return model["rho"] - rbf_kernel(X, model["X_sv"], gamma=model["gamma"]) @ model["coef"]


# --- SemiDGM: Kingma et al.'s M2 semi-supervised VAE ----------------------------------------------------------

@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run a block with ``n`` intra-op CPU threads (None: unchanged). Small MLPs train faster on one thread: the
    per-operation synchronisation of several threads costs more than the work, and far more on a busy machine."""
    old = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def _mlp(dims: Sequence[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for a, b in zip(dims[:-2], dims[1:-1]):
        layers += [nn.Linear(a, b), nn.ReLU()]
    layers.append(nn.Linear(dims[-2], dims[-1]))
    return nn.Sequential(*layers)


# The Deep SAD seed's M2 per dataset (``networks/main.py``): latent size z, hidden sizes h, and the classifier
# q(y|x): the dataset's Deep SAD LeNet with a linear 2-way head for images, one hidden layer of h[0] for tabular data.
SEMIDGM_SPECS: dict[str, tuple[int, tuple[int, ...], str | None]] = {
    "mnist": (32, (128, 64), "mnist_lenet_sad"),
    "fmnist": (64, (256, 128), "fmnist_lenet_sad"),
    "cifar10": (128, (512, 256), "cifar10_lenet_sad"),
    "arrhythmia": (32, (128, 64), None),
    "cardio": (8, (32, 16), None),
    "satellite": (8, (32, 16), None),
    "satimage-2": (8, (32, 16), None),
    "shuttle": (8, (32, 16), None),
    "thyroid": (4, (32, 16), None),
}


def semidgm_spec(dataset: str, input_shape: tuple[int, ...]) -> dict[str, Any]:
    """SemiDGM's keywords for a dataset: the seed's sizes and classifier where the seed has them, else
    :class:`SemiDGM`'s defaults (chosen by the input width)."""
    if dataset not in SEMIDGM_SPECS:
        return {}
    z, h, clf = SEMIDGM_SPECS[dataset]
    return {"z_dim": z, "h_dims": list(h), "classifier": clf, "input_shape": tuple(input_shape) if clf else None}


class M2(nn.Module):
    """q(y|x), q(z|x,y) and p(x|y,z) (MLPs), Bernoulli likelihood, N(0, I) prior on z and a uniform prior on y in
    {0: normal, 1: anomaly}. q(y|x) is one hidden layer of h[0] units, or (``classifier``, a Deep SAD network name)
    that network on the inputs reshaped to ``input_shape``, then a linear layer to the two logits. Every linear layer
    is Xavier-normal with zero bias, convolutions keep PyTorch's default (the seed's ``DeepGenerativeModel``)."""

    def __init__(self, x_dim: int, z_dim: int, h_dims: Sequence[int], classifier: str | None = None,
                 input_shape: tuple[int, ...] | None = None):
        super().__init__()
        from .nets import make_sad_net

        h = list(h_dims)
        self.encoder = _mlp([x_dim + 2] + h + [2 * z_dim])
        self.decoder = _mlp([z_dim + 2] + h[::-1] + [x_dim])
        if classifier is None:
            self.classifier = _mlp([x_dim, h[0], 2])
        else:
            if input_shape is None or math.prod(input_shape) != x_dim:
                raise ValueError(f"classifier {classifier!r} needs input_shape with {x_dim} values, not "
                                 f"{input_shape!r}")
            body = make_sad_net(classifier)
            self.classifier = nn.Sequential(nn.Unflatten(1, tuple(input_shape)), body, nn.Linear(body.rep_dim, 2))
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_normal_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        self.z_dim = z_dim

    def classify(self, x: torch.Tensor) -> torch.Tensor:
        return F.softmax(self.classifier(x), dim=1)

    def neg_elbo(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """-ELBO(x, y) per sample = reconstruction + KL(q(z|x,y) || N(0,I)) - log p(y)."""
        mu, logvar = self.encoder(torch.cat([x, y], 1)).chunk(2, dim=1)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        logits = self.decoder(torch.cat([z, y], 1))
        rec = F.binary_cross_entropy_with_logits(logits, x.clamp(0, 1), reduction="none").sum(1)
        kl = -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(1)
        return rec + kl + math.log(2)

    def unlabelled_loss(self, x: torch.Tensor) -> torch.Tensor:
        """U(x) = sum_y q(y|x) (-ELBO(x, y)) - H(q(y|x)), per sample."""
        q = self.classify(x)
        eye = torch.eye(2, device=x.device)
        per_y = torch.stack([self.neg_elbo(x, eye[k].expand(len(x), 2)) for k in range(2)], 1)
        entropy = -(q * torch.log(q + 1e-8)).sum(1)
        return (q * per_y).sum(1) - entropy


class SemiDGM(Baseline):
    """Semi-supervised deep generative model M2 (Kingma et al., NeurIPS 2014) as an anomaly detector: labelled
    normals are y = 0, labelled anomalies y = 1, unlabelled samples are marginalised over y; the score is
    q(y = 1 | x). Loss per step: mean U over an unlabelled batch + mean (-ELBO + alpha * cross-entropy) over a
    labelled batch; ``alpha=None`` is Kingma et al.'s 0.1 * N, spread over the n_l labelled samples
    (0.1 * N / n_l per labelled sample). Needs labelled anomalies. With fewer than two labelled samples the labelled
    term is left out, as the seed does (a BatchNorm classifier cannot train on one sample). ``classifier`` and
    ``input_shape``: see :class:`M2` (:func:`semidgm_spec` gives the seed's per dataset)."""

    name = "semidgm"
    uses_labels = True

    def __init__(self, z_dim: int | None = None, h_dims: Sequence[int] | None = None, alpha: float | None = None,
                 epochs: int = 50, lr: float = 1e-3, batch_size: int = 128, weight_decay: float = 1e-6,
                 device: str | None = None, classifier: str | None = None,
                 input_shape: tuple[int, ...] | None = None, **kw):
        super().__init__(**kw)
        self.z_dim, self.h_dims, self.alpha = z_dim, h_dims, alpha
        self.classifier, self.input_shape = classifier, input_shape
        self.epochs, self.lr, self.batch_size, self.weight_decay, self.device = epochs, lr, batch_size, \
            weight_decay, device
        self.losses: list[float] = []

    def _fit(self, X, y, _):
        from .train import pick_device

        dev = pick_device(self.device)
        with torch_threads(1 if dev.type == "cpu" else None):
            return self._train(X, y, dev)

    def _train(self, X, y, dev):
        from .train import IndexStream

        if not (y == -1).any():
            raise ValueError("SemiDGM needs labelled anomalies (semi-label -1) to know which class is anomalous")
        torch.manual_seed(self.seed)
        d = X.shape[1]
        z_dim = self.z_dim or (32 if d >= 100 else 8)
        h_dims = self.h_dims or ([128, 64] if d >= 100 else [32, 16])
        model = M2(d, z_dim, h_dims, self.classifier, self.input_shape).to(dev)
        xt = torch.as_tensor(X, dtype=torch.float32, device=dev)
        lab = torch.as_tensor(np.flatnonzero(y != 0), device=dev)
        unl = torch.as_tensor(np.flatnonzero(y == 0), device=dev)
        if len(unl) == 0:
            unl = lab
        y_lab = F.one_hot(torch.as_tensor((y[y != 0] == -1).astype(np.int64), device=dev), 2).float()
        alpha = self.alpha if self.alpha is not None else 0.1 * len(X) / len(lab)
        opt = torch.optim.Adam(model.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        bs = min(self.batch_size, len(unl))
        u_stream, l_stream = IndexStream(len(unl), dev), IndexStream(len(lab), dev)
        self.losses = []
        model.train()
        for _epoch in range(self.epochs):
            total = 0.0
            steps = max(len(unl) // bs, 1)
            for _ in range(steps):
                iu, il = unl[u_stream.take(bs)], l_stream.take(min(bs, len(lab)))
                loss = model.unlabelled_loss(xt[iu]).mean()
                if len(il) >= 2:
                    xl, yl = xt[lab[il]], y_lab[il]
                    ce = -(yl * torch.log(model.classify(xl) + 1e-8)).sum(1)
                    loss = loss + (model.neg_elbo(xl, yl) + alpha * ce).mean()
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                total += loss.item()
            self.losses.append(total / steps)
            if not math.isfinite(self.losses[-1]):
                raise FloatingPointError(f"SemiDGM loss became {self.losses[-1]}")
        return model.eval()

    @torch.no_grad()
    def _score(self, model, X):
        dev = next(model.parameters()).device
        xt = torch.as_tensor(X, dtype=torch.float32)
        return torch.cat([model.classify(xt[i:i + 4096].to(dev))[:, 1].cpu() for i in range(0, len(xt), 4096)]
                         ).numpy()


def make_baseline(name: str, **kw) -> Baseline:
    """A baseline by name (ocsvm, kde, isoforest, ssad, semidgm); keywords go to its constructor."""
    table: dict[str, Callable[..., Baseline]] = {"ocsvm": OCSVM, "kde": KDE, "isoforest": IsoForest, "ssad": SSAD,
                                                 "semidgm": SemiDGM}
    if name not in table:
        raise ValueError(f"unknown baseline {name!r}; choose one of {', '.join(BASELINES)}")
    return table[name](**kw)
