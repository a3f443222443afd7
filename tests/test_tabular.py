import numpy as np
import pytest
from scipy.io import savemat

from adcore.data import DataNotFoundError
from adcore.tabular import find_mat, load_mat, load_tabular, odds_split, sklearn_set


def _write(path, n_normal=40, n_out=10, d=3, seed=0):
    rng = np.random.default_rng(seed)
    X = np.concatenate([rng.normal(0, 1, (n_normal, d)), rng.normal(4, 1, (n_out, d))])
    y = np.r_[np.zeros(n_normal), np.ones(n_out)].reshape(-1, 1)  # ODDS stores y as a column
    savemat(path, {"X": X, "y": y})
    return X, y.ravel()


def test_load_mat_and_split(tmp_path):
    X, y = _write(tmp_path / "tiny.mat")
    X2, y2 = load_mat(tmp_path / "tiny.mat")
    assert np.allclose(X, X2) and np.array_equal(y, y2) and y2.dtype == np.int64
    t = odds_split(X2, y2, seed=0)
    # 60/40 separately per class: normals 24/16, outliers 6/4
    assert (t.train_y == 0).sum() == 24 and (t.train_y == 1).sum() == 6
    assert (t.test_y == 0).sum() == 16 and (t.test_y == 1).sum() == 4
    # StandardScaler then MinMaxScaler fitted on train: train spans [0, 1] per feature
    assert np.allclose(t.train_x.min(0), 0, atol=1e-6) and np.allclose(t.train_x.max(0), 1, atol=1e-6)
    assert t.train_x.dtype == np.float32
    # the split depends on the seed, and only on it
    t_again, t_other = odds_split(X2, y2, seed=0), odds_split(X2, y2, seed=1)
    assert np.array_equal(t.train_x, t_again.train_x) and not np.array_equal(t.train_x, t_other.train_x)
    # every row ends up in exactly one part
    assert len(t.train_x) + len(t.test_x) == len(X)


def test_load_tabular_from_root_path_and_env(tmp_path, monkeypatch):
    _write(tmp_path / "cardio.mat")
    assert find_mat("cardio", tmp_path) == tmp_path / "cardio.mat"
    t = load_tabular("cardio", seed=0, root=tmp_path)
    assert t.name == "cardio" and len(t.train_x) == 30
    assert len(load_tabular(str(tmp_path / "cardio.mat")).train_x) == 30
    (tmp_path / "odds").mkdir()
    _write(tmp_path / "odds" / "thyroid.mat", d=6)
    monkeypatch.setenv("ADCORE_DATA", str(tmp_path))
    assert load_tabular("thyroid").train_x.shape == (30, 6)
    with pytest.raises(DataNotFoundError, match="odds.cs.stonybrook.edu"):
        load_tabular("shuttle")


def test_bad_mat_files(tmp_path):
    savemat(tmp_path / "nox.mat", {"data": np.zeros((3, 2)), "y": np.zeros((3, 1))})
    with pytest.raises(KeyError, match="no X"):
        load_mat(tmp_path / "nox.mat")
    savemat(tmp_path / "labels.mat", {"X": np.zeros((3, 2)), "y": np.array([[0], [1], [2]])})
    with pytest.raises(ValueError, match="labels"):
        load_mat(tmp_path / "labels.mat")


def test_sklearn_sets_in_the_odds_manner():
    X, y = sklearn_set("sk-wdbc")
    assert X.shape == (378, 30) and y.sum() == 21  # as ODDS wbc: 357 benign + 21 malignant
    X, y = sklearn_set("sk-wine")
    assert X.shape == (129, 13) and y.sum() == 10  # as ODDS wine: 119 + 10
    assert np.array_equal(sklearn_set("sk-wine")[0], X)  # a fixed set, like a file
    t = load_tabular("sk-wdbc", seed=3)
    assert (t.train_y == 1).sum() == 12 and (t.test_y == 1).sum() == 9
    with pytest.raises(ValueError):
        sklearn_set("sk-iris")
