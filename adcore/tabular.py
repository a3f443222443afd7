"""Tabular anomaly-detection sets in the manner of ODDS (Outlier Detection DataSets, odds.cs.stonybrook.edu).

ODDS ships MATLAB ``.mat`` files with a feature matrix ``X`` and labels ``y`` (1 = outlier). The Deep SAD seed
splits each set 60/40 into train and test, separately for normals and outliers (so both keep the outlier
ratio), with one random state per seed, then standardises the features and scales them to [0, 1], both
fitted on the training part. :func:`odds_split` does the same.

Offline, two sets that ship with scikit-learn are prepared the way ODDS prepared its ``wbc`` and ``wine``:

* ``sk-wdbc``: the Wisconsin Diagnostic Breast Cancer data (569 x 30); the 357 benign tumours are normal, and the
  212 malignant ones are subsampled to 21 anomalies (ODDS ``wbc``: 378 points, 21 outliers, 5.6 %);
* ``sk-wine``: the UCI wine recognition data (178 x 13); cultivars 2 and 3 are normal (119), cultivar 1 is
  subsampled to 10 anomalies (ODDS ``wine``: 129 points, 10 outliers, 7.7 %).

The subsamples use a fixed random state (0), so each set is one fixed file, like an ODDS file; ODDS's own choice
of rows is not published, so results on these sets are comparable in kind, not number for number, to results on
ODDS ``wbc`` and ``wine``. Real ODDS files are read from ``root``, ``$ADCORE_DATA/odds`` or ``$ADCORE_DATA``.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .data import DataNotFoundError
from .environment import data_env

ODDS_SETS = ("arrhythmia", "cardio", "satellite", "satimage-2", "shuttle", "thyroid", "wbc", "wine")
SKLEARN_SETS = ("sk-wdbc", "sk-wine")
NAMES = {"sk-wdbc": "WDBC (scikit-learn, ODDS-style)", "sk-wine": "Wine (scikit-learn, ODDS-style)"}


@dataclass
class TabularSet:
    """A 60/40 split, scaled to [0, 1] with statistics of the training part. y: 0 normal, 1 anomaly."""

    train_x: np.ndarray
    train_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray
    name: str


def load_mat(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """``X`` and ``y`` of an ODDS ``.mat`` file (MATLAB v5; v7.3 files are HDF5 and need h5py instead)."""
    from scipy.io import loadmat

    mat = loadmat(str(path))
    missing = [k for k in ("X", "y") if k not in mat]
    if missing:
        raise KeyError(f"{path}: no {' or '.join(missing)} in the file (keys: {sorted(k for k in mat if k[0] != '_')})")
    X, y = np.asarray(mat["X"], dtype=np.float64), np.asarray(mat["y"]).ravel().astype(np.int64)
    if len(X) != len(y):
        raise ValueError(f"{path}: {len(X)} rows in X but {len(y)} labels")
    if not set(np.unique(y)) <= {0, 1}:
        raise ValueError(f"{path}: labels must be 0 (normal) / 1 (outlier), got {sorted(set(np.unique(y)))}")
    return X, y


def sklearn_set(name: str) -> tuple[np.ndarray, np.ndarray]:
    """The ODDS-style sets built from scikit-learn's bundled data (no download)."""
    from sklearn.datasets import load_breast_cancer, load_wine

    if name == "sk-wdbc":
        d, n_anomalies = load_breast_cancer(), 21
        normal, anomaly = d.data[d.target == 1], d.data[d.target == 0]  # target 1 = benign, 0 = malignant
    elif name == "sk-wine":
        d, n_anomalies = load_wine(), 10
        normal, anomaly = d.data[d.target != 0], d.data[d.target == 0]
    else:
        raise ValueError(f"unknown scikit-learn set {name!r}; choose one of {', '.join(SKLEARN_SETS)}")
    anomaly = anomaly[np.sort(np.random.RandomState(0).choice(len(anomaly), n_anomalies, replace=False))]
    return np.concatenate([normal, anomaly]), np.r_[np.zeros(len(normal), np.int64), np.ones(len(anomaly), np.int64)]


def find_mat(name: str, root: str | os.PathLike | None = None) -> Path:
    env = data_env()
    tried = [str(Path(b) / f"{name}.mat") for b in (root, Path(env) / "odds" if env else None, env) if b is not None]
    for p in map(Path, tried):
        if p.is_file():
            return p
    raise DataNotFoundError(f"ODDS set {name!r} not found; tried {', '.join(tried) or 'nothing (no root given)'}. "
                            f"Download {name}.mat from http://odds.cs.stonybrook.edu/ into $ADCORE_DATA/odds/, or "
                            f"use an offline set: {', '.join(SKLEARN_SETS)}.")


def odds_split(X: np.ndarray, y: np.ndarray, seed: int = 0, name: str = "", test_size: float = 0.4
               ) -> TabularSet:
    """60/40 split per class with ``RandomState(seed)``, then StandardScaler and MinMaxScaler fitted on train."""
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import MinMaxScaler, StandardScaler

    rs = np.random.RandomState(seed)
    parts = [train_test_split(X[y == c], y[y == c], test_size=test_size, random_state=rs) for c in (0, 1)]
    x_tr, x_te, y_tr, y_te = map(np.concatenate, zip(*parts))  # train_test_split's four arrays, class by class
    std = StandardScaler().fit(x_tr)
    mm = MinMaxScaler().fit(std.transform(x_tr))
    scale = lambda a: mm.transform(std.transform(a)).astype(np.float32)  # noqa: E731
    return TabularSet(scale(x_tr), y_tr, scale(x_te), y_te, name)


def load_tabular(name: str, seed: int = 0, root: str | os.PathLike | None = None) -> TabularSet:
    """A tabular set by name: ``sk-wdbc`` / ``sk-wine`` (offline), an ODDS name (``<name>.mat`` looked up as
    :func:`find_mat` says), or a path ending in ``.mat``."""
    if name in SKLEARN_SETS:
        X, y = sklearn_set(name)
    elif name.endswith(".mat"):
        X, y = load_mat(name)
    else:
        X, y = load_mat(find_mat(name, root))
    return odds_split(X, y, seed, name)


def is_tabular(name: str) -> bool:
    return name in SKLEARN_SETS or name in ODDS_SETS or name.endswith(".mat")
