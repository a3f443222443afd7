"""A detector for your own data, scikit-learn style: fit on normal data, save one file, score new inputs.

```python
from adcore import Detector
det = Detector(objective="hsc", epochs=10).fit("photos/")        # photos/normal/*.png (or photos/*.png)
det.score_samples(["new/"])       # anomaly scores: HIGHER = MORE ANOMALOUS (the opposite of scikit-learn's
det.predict(["new/"])             # score_samples); predict: 1 = anomaly (score > threshold_), 0 = normal
det.save("model.adcore"); Detector.load("model.adcore").score_samples(["new/"])   # the same scores, exactly
```

What ``fit`` takes: a path (an image folder or a table file, see :mod:`adcore.owndata`) or an array (2-D:
table rows; N x H x W or N x C x H x W: images); ``y`` (1 = labelled anomaly) for arrays, or a table's label
column; ``anomalies``: labelled anomalies (a path or an array). Objectives: every one of :mod:`adcore.objectives`
(``hsc``, ``deepsad``, ``bce`` and ``focal`` train with Outlier Exposure: the labelled anomalies when given, else
the source ``oe``, a name of :data:`adcore.oe.OE_SOURCES` (default ``natural`` for images) or a folder / table of
your own; for tables the default OE is ``noise``, uniform samples of a box twice the range of the standardised
training data; ``deepsad_semi`` takes the labelled anomalies into its loss, eta-weighted) and the shallow
baselines ``ocsvm``, ``kde``, ``isoforest`` and ``ssad`` (SSAD uses the labelled anomalies).

A fraction ``holdout`` (default 10 %) of the normal data is held out of training; the threshold ``threshold_`` is
the score that at most ``fpr`` (default 5 %) of those held-out normals exceed, so about that share of new normal
inputs is flagged. Images are normalised with the per-channel mean and std of the training images, table columns
standardised with theirs; both are saved with the model.

Parameters follow scikit-learn's conventions: ``__init__`` stores them unchanged (``get_params``/``set_params``,
``sklearn.base.clone`` work), and they are validated (one-line :class:`adcore.config.ConfigError`) on
construction and again in ``fit``. Fitted attributes end in ``_``.

The model file (``save``/``load``, ``adcore fit --out``) is one ``torch.save`` archive: a dict with ``format``
("adcore-detector") and ``format_version`` (:data:`FORMAT_VERSION`), the parameters, the network's weights, the
objective's state (centre, radius), the input transform and normalisation statistics, the threshold and the
held-out scores it came from, the fit's numbers and the reproducibility stamp (:mod:`adcore.stamp`). It is read
with ``torch.load(weights_only=True)``; only a shallow baseline's fitted scikit-learn / cvxopt object is a pickle
inside it, unpickled when such a model is loaded: load model files you trust. A truncated file, another format or
another format version is a :class:`ModelFileError` naming the file.
"""
from __future__ import annotations

import os
import pickle
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from sklearn.base import BaseEstimator

from ._version import __version__
from .augment import Augment
from .config import ConfigError, atomic_write, check_choice, check_device, check_range, device_name
from .metrics import detection_metrics
from .nets import INPUT_SHAPE, NETS, WithHead, make_net, make_sad_net, mlp_for, n_params
from .objectives import GEO_OBJECTIVES, OBJECTIVES, make_objective
from .oe import OE_SOURCES, make_oe
from .owndata import (check_sizes, decode_all, image_array, image_stats, input_files, is_table, labelled_files,
                      net_for_images, probe, read_table, table_array, training_files)
from .stamp import stamp
from .train import forward_all, make_generator, pick_device, score, seed_everything, train

FORMAT, FORMAT_VERSION = "adcore-detector", 1
SHALLOW = ("ocsvm", "kde", "isoforest", "ssad")
METHODS = (*(o for o in OBJECTIVES if o not in GEO_OBJECTIVES), *SHALLOW)  # GEO: runs only (RunConfig)
OE_OBJECTIVES = ("hsc", "deepsad", "bce", "focal")  # trained against an OE pool
CHUNK = 1024  # inputs decoded and scored per chunk (the progress bar's step)


class ModelFileError(ConfigError):
    """A model file that cannot be used: truncated, not an adcore model, or of another format version."""


class Detector(BaseEstimator):
    """An anomaly detector for your own images or table rows (see the module docstring). Scores: higher = more
    anomalous; ``predict``: 1 = anomaly, 0 = normal."""

    def __init__(self, objective: str = "hsc", *, net: str | None = None, image_size: int | None = None,
                 epochs: int = 10, batch_size: int = 128, lr: float = 1e-3, weight_decay: float = 5e-7,
                 rep_dim: int | None = None, oe: str | None = None, oe_size: int = 4096, eta: float = 1.0,
                 nu: float = 0.1, fpr: float = 0.05, holdout: float = 0.1, label_column: str | None = None,
                 seed: int = 0, device: str | None = None, progress: bool = False):
        self.objective, self.net, self.image_size, self.epochs = objective, net, image_size, epochs
        self.batch_size, self.lr, self.weight_decay, self.rep_dim = batch_size, lr, weight_decay, rep_dim
        self.oe, self.oe_size, self.eta, self.nu, self.fpr, self.holdout = oe, oe_size, eta, nu, fpr, holdout
        self.label_column, self.seed, self.device, self.progress = label_column, seed, device, progress
        self._validate()

    # ------------------------------------------------------------------------------------------------ checks
    def _validate(self) -> None:
        check_choice("objective", self.objective, METHODS)
        check_choice("net", self.net, (*NETS, None))
        for name in ("epochs", "batch_size", "oe_size"):
            check_range(name, getattr(self, name), 1, integer=True)
        for name in ("image_size", "rep_dim"):
            check_range(name, getattr(self, name), 1, integer=True, optional=True)
        check_range("lr", self.lr, 0, lo_open=True)
        check_range("eta", self.eta, 0, lo_open=True)
        check_range("weight_decay", self.weight_decay, 0)
        check_range("nu", self.nu, 0, 1, lo_open=True)
        if isinstance(self.fpr, bool) or not isinstance(self.fpr, (int, float)) or not 0 < self.fpr < 1:
            raise ConfigError(f"fpr={self.fpr!r} must be in (0, 1): the share of held-out normals flagged, e.g. 0.05")
        check_range("holdout", self.holdout, 0, 0.5, lo_open=True)
        check_range("seed", self.seed, 0, integer=True)
        check_device(self.device)
        if self.oe is not None and self.oe not in OE_SOURCES and not Path(os.path.expanduser(str(self.oe))).exists():
            raise ConfigError(f"oe={self.oe!r} is neither an OE source ({', '.join(OE_SOURCES)}) nor an existing "
                              "folder or table of OE samples")

    # ------------------------------------------------------------------------------------------------ inputs
    def _load_training(self, X: Any, y: Any) -> tuple[torch.Tensor, np.ndarray, list[str]]:
        """Sets ``transform_`` from the training data; returns the model inputs, labels and ids."""
        if isinstance(X, (str, os.PathLike)) and is_table(X):
            t = read_table(X, self.label_column)
            return self._fit_table(t.x, t.columns), _labels_or_zeros(t.y if y is None else y, len(t.x)), t.ids
        if isinstance(X, (str, os.PathLike)):
            files = training_files(X)
            info = probe(files)
            check_sizes(info, self.image_size, str(X))
            side = self.image_size or max(info.size)
            name = net_for_images(info.grey, side, self.net)
            c, s, _ = INPUT_SHAPE[name]
            self.transform_ = {"kind": "image", "net": name, "channels": c, "size": s, "image_size": self.image_size,
                               "grey": info.grey}
            x = decode_all(files, c, s, self.image_size)
            root = Path(X)
            return x, _labels_or_zeros(y, len(x)), [_rel(f, root) for f in files]
        a = np.asarray(X.cpu() if isinstance(X, torch.Tensor) else X)
        if a.ndim == 2:
            return self._fit_table(table_array(a), [f"x{j}" for j in range(a.shape[1])]), \
                _labels_or_zeros(y, len(a)), [f"[{i}]" for i in range(len(a))]
        if a.ndim in (3, 4):
            grey = a.ndim == 3 or a.shape[1] == 1
            side = self.image_size or a.shape[-1]
            name = net_for_images(grey, side, self.net)
            c, s, _ = INPUT_SHAPE[name]
            self.transform_ = {"kind": "image", "net": name, "channels": c, "size": s, "image_size": None,
                               "grey": grey}
            return image_array(a, c, s), _labels_or_zeros(y, len(a)), [f"[{i}]" for i in range(len(a))]
        raise ConfigError(f"X must be a folder, a table file or an array of rows or images, got shape {a.shape}")

    def _fit_table(self, x: np.ndarray, columns: list[str]) -> torch.Tensor:
        self.transform_ = {"kind": "table", "columns": list(columns), "label_column": self.label_column}
        return torch.from_numpy(x)

    def _inputs(self, X: Any) -> tuple[Callable[[], Any], int, list[str], np.ndarray | None]:
        """(a generator of model-input chunks, number of inputs, ids, labels when the input says them)."""
        t = self.transform_
        paths = _as_paths(X)
        if paths is None:  # an array of images or rows
            x = image_array(X, t["channels"], t["size"]) if t["kind"] == "image" else \
                torch.from_numpy(table_array(X, len(t["columns"])))
            return _chunked(x), len(x), [f"[{i}]" for i in range(len(x))], None
        if t["kind"] == "image":
            root = Path(paths[0])
            if len(paths) == 1 and (root / "normal").is_dir() and (root / "anomalous").is_dir():
                files, y = labelled_files(paths[0])
            else:
                files, y = input_files(paths), None
            decode = lambda fs: decode_all(fs, t["channels"], t["size"], t["image_size"])  # noqa: E731
            return _chunked(files, decode), len(files), [str(f) for f in files], y
        for p in paths:
            if not is_table(p):
                raise ConfigError(f"input {str(p)!r} is not a table file (.csv, .npy, .npz): this model scores "
                                  "table rows")
        tables = [read_table(p, t["label_column"], columns=t["columns"]) for p in paths]
        ys = [tb.y for tb in tables]
        y = np.concatenate(ys) if all(v is not None for v in ys) else None
        x = torch.from_numpy(np.concatenate([tb.x for tb in tables]))
        return _chunked(x), len(x), [i for tb in tables for i in tb.ids], y

    def _pool(self, X: Any) -> torch.Tensor:
        """Extra samples (labelled anomalies, OE of your own) in the model's input format."""
        chunks, _, _, _ = self._inputs(X)
        return torch.cat(list(chunks()))

    # ------------------------------------------------------------------------------------------------ fitting
    def fit(self, X: Any, y: Any = None, anomalies: Any = None) -> "Detector":
        """Train on the normal samples of ``X`` (rows with ``y == 1`` / a table's label 1 join ``anomalies``),
        calibrate ``threshold_`` on the held-out normals; returns self."""
        self._validate()
        t_start = time.perf_counter()
        x, labels, ids = self._load_training(X, y)
        t = self.transform_
        norm_idx = np.flatnonzero(labels == 0)
        anom = x[torch.from_numpy(np.flatnonzero(labels == 1))] if labels.any() else None
        if anomalies is not None:
            extra = self._pool(anomalies)
            anom = extra if anom is None else torch.cat([anom, extra])
        n = len(norm_idx)
        n_hold = max(1, int(round(self.holdout * n)))
        if n - n_hold < 2:
            raise ConfigError(f"{n} normal training sample(s): too few to train on and hold out {self.holdout:.0%} "
                              "of them for the threshold; give more normal samples")
        perm = np.random.default_rng([self.seed, 23]).permutation(norm_idx)
        hold_idx, train_idx = np.sort(perm[:n_hold]), np.sort(perm[n_hold:])
        x_train, x_hold = x[torch.from_numpy(train_idx)], x[torch.from_numpy(hold_idx)]
        if t["kind"] == "image":
            t["mean"], t["std"] = image_stats(x_train)
        else:
            xt = x_train.double()
            mu, sd = xt.mean(0), xt.std(0, unbiased=False)
            t["mean"], t["std"] = mu.tolist(), torch.where(sd > 0, sd, torch.ones_like(sd)).tolist()
        if self.objective == "ssad" and anom is None:
            raise ConfigError("objective 'ssad' needs labelled anomalies (--anomalies, or label 1 rows)")
        dev = pick_device(self.device)
        t0 = time.perf_counter()
        n_oe = self._train(x_train, anom, dev)
        train_time = time.perf_counter() - t0
        hold_scores = self._score_tensor(x_hold)
        self.threshold_ = float(np.quantile(hold_scores.astype(np.float64), 1 - self.fpr, method="higher"))
        self.fit_ = {"n_train": int(len(x_train)), "n_holdout": int(n_hold),
                     "n_anomalies": 0 if anom is None else int(len(anom)), "n_oe": int(n_oe),
                     "holdout_fpr": float(np.mean(hold_scores > self.threshold_)),
                     "train_time": train_time, "fit_time": time.perf_counter() - t_start,
                     "n_params": int(n_params(self.net_)) if self.net_ is not None else None,
                     "finished": time.strftime("%Y-%m-%dT%H:%M:%S"), **stamp(device_name(dev))}
        self.calibration_ = {"ids": [ids[i] for i in hold_idx], "scores": hold_scores.tolist()}
        return self

    def _features(self, x: torch.Tensor) -> torch.Tensor:
        """Model inputs as the network / baseline sees them: tables standardised (float32); images stay uint8 (the
        trainer's augmentation normalises them)."""
        t = self.transform_
        if t["kind"] == "table":
            mu, sd = torch.tensor(t["mean"], dtype=torch.float64), torch.tensor(t["std"], dtype=torch.float64)
            return ((x.double() - mu) / sd).float()
        return x

    def _augment(self) -> Augment:
        t = self.transform_
        return Augment(mean=tuple(t["mean"]), std=tuple(t["std"])) if t["kind"] == "image" else Augment()

    def _flat(self, x: torch.Tensor) -> np.ndarray:
        f = self._features(x)
        if self.transform_["kind"] == "image":
            f = self._augment()(f, train=False)
        return f.flatten(1).double().numpy()

    def _oe_pool(self, anom: torch.Tensor | None, x_train: torch.Tensor) -> torch.Tensor | None:
        t = self.transform_
        if self.objective not in OE_OBJECTIVES:
            return None
        parts = [] if anom is None else [anom]
        if self.oe is not None and self.oe not in OE_SOURCES:
            parts.append(self._pool(self.oe))
        elif self.oe is not None or anom is None:
            name = self.oe or ("natural" if t["kind"] == "image" else "noise")
            if t["kind"] == "image":
                parts.append(make_oe(name, (t["channels"], t["size"], t["size"])).sample(self.oe_size, self.seed))
            elif name == "noise":
                z = self._features(x_train).double()
                lo, hi = z.min(0).values, z.max(0).values
                span = (hi - lo).clamp_min(1e-6)
                g = torch.Generator().manual_seed(self.seed)
                u = torch.rand(self.oe_size, z.shape[1], generator=g, dtype=torch.float64)
                box = lo - span / 2 + 2 * span * u  # uniform in the box twice the training range, same centre
                sd, mu = torch.tensor(t["std"], dtype=torch.float64), torch.tensor(t["mean"], dtype=torch.float64)
                parts.append((box * sd + mu))  # back to raw units: _features standardises every pool alike
            else:
                raise ConfigError(f"oe={name!r} is an image source; a table takes oe='noise' or a table file of OE "
                                  "rows")
        return torch.cat([p if p.dtype == parts[0].dtype else p.to(parts[0].dtype) for p in parts])

    def _make_objective(self):
        kw: dict[str, Any] = {}
        if self.objective == "deepsad_semi":
            kw["eta"] = self.eta
        if self.objective == "deepsvdd_soft":
            kw.update(nu=self.nu, warm_up=min(10, self.epochs // 2))
        return make_objective(self.objective, **kw), kw

    def _build_net(self, objective) -> torch.nn.Module:
        t = self.transform_
        if t["kind"] == "image":
            return make_net(t["net"], self.rep_dim, bias=objective.bias_allowed, head=objective.head)
        body = make_sad_net(mlp_for(len(t["columns"])), self.rep_dim)
        return WithHead(body, True) if objective.head else body

    def _train(self, x_train: torch.Tensor, anom: torch.Tensor | None, dev: torch.device) -> int:
        self.net_, self.objective_, self.baseline_ = None, None, None
        if self.objective in SHALLOW:
            from .baselines import make_baseline
            feats = [self._flat(x_train)] + ([self._flat(anom)] if anom is not None else [])
            semi = np.r_[np.zeros(len(x_train), np.int64), -np.ones(0 if anom is None else len(anom), np.int64)]
            kw: dict[str, Any] = {"seed": self.seed, "nu": self.nu}
            self.baseline_ = make_baseline(self.objective, **kw).fit(np.concatenate(feats), semi)
            return 0
        objective, self.objective_kwargs_ = self._make_objective()
        oe = self._oe_pool(anom, x_train)
        xs, targets = self._features(x_train), None
        if self.objective == "deepsad_semi" and anom is not None:
            xs = torch.cat([xs, self._features(anom)])
            targets = torch.cat([torch.zeros(len(x_train), dtype=torch.long),
                                 -torch.ones(len(anom), dtype=torch.long)])
        seed_everything(self.seed)
        net = self._build_net(objective)
        augment = self._augment()
        if objective.needs_center:
            net.to(dev)
            objective.set_center(forward_all(net, self._features(x_train), augment, dev).mean(0))
        bs = min(self.batch_size, len(xs))
        train(net, objective, xs, None if oe is None else self._features(oe), targets=targets, augment=augment,
              epochs=self.epochs, batch_size=bs, lr=self.lr, weight_decay=self.weight_decay, device=dev,
              generator=make_generator(dev, self.seed), progress=self.progress)
        self.net_, self.objective_ = net.cpu().eval(), objective
        return 0 if oe is None else len(oe)

    # ------------------------------------------------------------------------------------------------ scoring
    def _check_fitted(self) -> None:
        if not hasattr(self, "threshold_"):
            from sklearn.exceptions import NotFittedError
            raise NotFittedError("this Detector is not fitted yet; call fit(...) or Detector.load(path)")

    def _score_tensor(self, x: torch.Tensor) -> np.ndarray:
        return np.concatenate([self._score_chunk(c) for c in _chunked(x)()]) if len(x) else np.zeros(0, np.float32)

    def _score_chunk(self, x: torch.Tensor) -> np.ndarray:
        if self.baseline_ is not None:
            return np.asarray(self.baseline_.score(self._flat(x)), np.float64)
        dev = pick_device(self.device)
        return score(self.net_, self.objective_, self._features(x), self._augment(), dev).astype(np.float64)

    def score_inputs(self, X: Any, progress: bool | None = None) -> tuple[np.ndarray, list[str], np.ndarray | None]:
        """(scores, ids, labels or None) for ``X``: paths (image files, folders, tables; a folder with normal/ and
        anomalous/ gives labels) or an array. Batched, ``CHUNK`` inputs at a time, with a progress bar."""
        self._check_fitted()
        chunks, n, ids, y = self._inputs(X)
        from tqdm.auto import tqdm
        show = self.progress if progress is None else progress
        bar = tqdm(total=n, desc="scoring", unit="input", disable=not show or n <= CHUNK, leave=False)
        out = []
        for c in chunks():
            out.append(self._score_chunk(c))
            bar.update(len(c))
        bar.close()
        return (np.concatenate(out) if out else np.zeros(0)), ids, y

    def score_samples(self, X: Any) -> np.ndarray:
        """Anomaly scores of ``X``; HIGHER = MORE ANOMALOUS (scikit-learn's outlier detectors return the
        opposite)."""
        return self.score_inputs(X)[0]

    def decision_function(self, X: Any) -> np.ndarray:
        """``score_samples(X) - threshold_``: positive = flagged as anomalous."""
        return self.score_samples(X) - self.threshold_

    def predict(self, X: Any) -> np.ndarray:
        """1 = anomaly (score above ``threshold_``), 0 = normal (scikit-learn's detectors say -1 / +1)."""
        return (self.score_samples(X) > self.threshold_).astype(np.int64)

    def evaluate(self, X: Any, y: Any = None) -> dict[str, float]:
        """The detection metrics (:mod:`adcore.metrics`) on labelled ``X`` (``y``, or a folder with normal/ and
        anomalous/, or a table with a label column)."""
        s, _, labels = self.score_inputs(X)
        labels = labels if y is None else np.asarray(y)
        if labels is None:
            raise ConfigError("evaluate needs labels: y, a folder with normal/ and anomalous/, or a label column")
        return detection_metrics(labels, s)

    # ------------------------------------------------------------------------------------------------ files
    def to_dict(self) -> dict[str, Any]:
        self._check_fitted()
        obj = None
        if self.objective_ is not None:
            o = self.objective_
            obj = {"name": o.name, "kwargs": self.objective_kwargs_,
                   "c": None if getattr(o, "c", None) is None else o.c.detach().cpu().clone(),
                   "R": float(getattr(o, "R", 0.0))}
        return {"format": FORMAT, "format_version": FORMAT_VERSION, "adcore": __version__,
                "params": {k: v for k, v in self.get_params().items()}, "transform": self.transform_,
                "state_dict": None if self.net_ is None else {k: v.detach().cpu().clone()
                                                              for k, v in self.net_.state_dict().items()},
                "objective": obj, "baseline": None if self.baseline_ is None else pickle.dumps(self.baseline_),
                "threshold": self.threshold_, "fpr": self.fpr, "calibration": self.calibration_, "fit": self.fit_}

    def save(self, path: str | os.PathLike) -> Path:
        """Write the model file atomically (a temporary file renamed into place: no partial file on failure)."""
        path = Path(path)
        if not path.parent.is_dir():
            raise ConfigError(f"cannot write the model {str(path)!r}: no folder {str(path.parent)!r}")
        with atomic_write(path) as f:
            torch.save(self.to_dict(), f)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike, device: str | None = None) -> "Detector":
        """A fitted detector from a model file; :class:`ModelFileError` (naming the file) when it is truncated,
        not an adcore model, or of another format version."""
        path = Path(path)
        if not path.is_file():
            raise ModelFileError(f"model file {str(path)!r}: no such file")
        try:
            d = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # noqa: BLE001 - truncated zip, not a torch file, pickle refused ...
            raise ModelFileError(f"model file {str(path)!r} is truncated or not an adcore model file (torch.load "
                                 f"cannot read it: {type(e).__name__}); write it again with adcore fit") from None
        if not isinstance(d, dict) or d.get("format") != FORMAT:
            raise ModelFileError(f"model file {str(path)!r} is not an adcore model file (no format {FORMAT!r})")
        if d.get("format_version") != FORMAT_VERSION:
            raise ModelFileError(f"model file {str(path)!r} has format version {d.get('format_version')!r} (written "
                                 f"by adcore {d.get('adcore')}); this adcore {__version__} reads version "
                                 f"{FORMAT_VERSION}: fit the model again with this version")
        try:
            return cls._from_dict(d, device)
        except (KeyError, TypeError, RuntimeError, pickle.UnpicklingError) as e:
            raise ModelFileError(f"model file {str(path)!r} is damaged ({type(e).__name__}: "
                                 f"{' '.join(str(e).split())[:120]})") from None

    @classmethod
    def _from_dict(cls, d: dict[str, Any], device: str | None) -> "Detector":
        params = {**d["params"], "device": device, "progress": False}  # this session's, not the fit's
        det = cls(**params)
        det.transform_, det.threshold_ = d["transform"], float(d["threshold"])
        det.calibration_, det.fit_ = d["calibration"], d["fit"]
        det.net_, det.objective_, det.baseline_ = None, None, None
        if d["baseline"] is not None:
            det.baseline_ = pickle.loads(d["baseline"])
        else:
            o = d["objective"]
            det.objective_kwargs_ = dict(o["kwargs"])
            objective = make_objective(o["name"], **o["kwargs"])
            if o["c"] is not None:
                objective.c = o["c"]
            if hasattr(objective, "R"):
                objective.R = o["R"]
            net = det._build_net(objective)
            net.load_state_dict(d["state_dict"])
            det.net_, det.objective_ = net.eval(), objective
        return det

    @property
    def kind_(self) -> str:
        return self.transform_["kind"]


def _labels_or_zeros(y: Any, n: int) -> np.ndarray:
    if y is None:
        return np.zeros(n, np.int64)
    y = np.asarray(y).ravel()
    if len(y) != n:
        raise ConfigError(f"{len(y)} labels for {n} training samples")
    if not set(np.unique(y).tolist()) <= {0, 1}:
        raise ConfigError("labels y must be 0 (normal) or 1 (labelled anomaly)")
    return y.astype(np.int64)


def _as_paths(X: Any) -> list[Any] | None:
    """``X`` as a list of paths (one path, or a non-empty list of them), or None when it is data (an array)."""
    if isinstance(X, (str, os.PathLike)):
        return [X]
    return list(X) if isinstance(X, (list, tuple)) and X and all(isinstance(p, (str, os.PathLike)) for p in X) else None


def _chunked(x: Any, load: Callable[[Any], Any] = lambda c: c) -> Callable[[], Any]:
    """A generator function of ``load(x[i:i + CHUNK])`` chunk by chunk (``load``: e.g. decode image files)."""
    def chunks():
        for i in range(0, len(x), CHUNK):
            yield load(x[i:i + CHUNK])
    return chunks


def _rel(f: Path, root: Path) -> str:
    try:
        return str(f.relative_to(root))
    except ValueError:
        return str(f)
