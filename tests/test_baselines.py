import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from adcore.baselines import BASELINES, SSAD, holdout, make_baseline, ssad_dual


@pytest.fixture(scope="module")
def gauss():
    """Normals N(0, I) in 6-d; anomalies N(2, I) (a shift of 2 per coordinate). Training: 240 unlabelled normals,
    12 labelled normals, 12 labelled anomalies; test: 150 + 150. Features min-max scaled with training extremes."""
    rng = np.random.default_rng(0)
    d = 6
    tr = np.concatenate([rng.normal(0, 1, (252, d)), rng.normal(2, 1, (12, d))])
    te = np.concatenate([rng.normal(0, 1, (150, d)), rng.normal(2, 1, (150, d))])
    lo, hi = tr.min(0), tr.max(0)
    y = np.r_[np.zeros(240), np.ones(12), -np.ones(12)].astype(int)
    return (tr - lo) / (hi - lo), y, (te - lo) / (hi - lo), np.r_[np.zeros(150), np.ones(150)]


@pytest.mark.parametrize("name", BASELINES)
def test_each_baseline_separates_gaussian_anomalies(gauss, name):
    X, y, Xt, yt = gauss
    kw = {"epochs": 20, "batch_size": 32} if name == "semidgm" else {}
    model = make_baseline(name, seed=0, **kw).fit(X, y)
    s = model.score(Xt)
    assert s.shape == (300,) and np.all(np.isfinite(s))
    assert roc_auc_score(yt, s) > 0.9


def test_unsupervised_selection_without_labels(gauss):
    X, y, Xt, yt = gauss
    unlabelled = np.zeros(len(X), int)
    m = make_baseline("ocsvm").fit(X[y == 0], unlabelled[y == 0])
    assert m.selected["criterion"] == "held-out calibration" and m.selected["param"] in m.grid
    assert roc_auc_score(yt, m.score(Xt)) > 0.9
    m = make_baseline("ocsvm").fit(X, y)
    assert m.selected["criterion"].startswith("held-out AUC")


def test_holdout_is_stratified_and_disjoint():
    y = np.r_[np.zeros(100), np.ones(10), -np.ones(5), -np.ones(1) * 0].astype(int)
    fit, val = holdout(y, 0.2, seed=0)
    assert not set(fit) & set(val) and len(fit) + len(val) == len(y)
    assert (y[val] == -1).sum() == 1 and (y[val] == 1).sum() == 2 and (y[fit] == -1).sum() == 4
    one = np.r_[np.zeros(20), -1].astype(int)
    fit, val = holdout(one, 0.2)
    assert (one[fit] == -1).sum() == 1  # a single labelled anomaly stays in the fitting part


def test_ssad_dual_constraints_and_kappa():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(40, 3))
    K = np.exp(-0.5 * ((X[:, None] - X[None]) ** 2).sum(-1))
    y = np.r_[np.zeros(34), np.ones(2), -np.ones(4)].astype(int)
    for kappa in (0.0, 1.0, 3.0):
        a, c = ssad_dual(K, y, kappa=kappa)
        assert np.all(a >= -1e-9) and np.all(a <= 1 + 1e-6)
        assert c @ a == pytest.approx(1, abs=1e-6)
        assert a[y != 0].sum() >= kappa - 1e-6
    a3, _ = ssad_dual(K, y, kappa=3.0)
    a0, _ = ssad_dual(K, y, kappa=0.0)
    assert a3[y != 0].sum() > a0[y != 0].sum() + 0.5  # kappa is a real parameter: it moves the solution
    with pytest.raises(ValueError, match="infeasible"):
        ssad_dual(K, y, kappa=7.0)  # 6 labelled samples with C = 1 cannot carry a weight of 7


def test_ssad_scores_labelled_anomalies_high(gauss):
    X, y, _, _ = gauss
    m = SSAD(gammas=(0.5,)).fit(X, y)
    s = m.score(X)
    assert s[y == -1].mean() > s[y == 0].mean()
    assert m.model["n_sv"] > 0


def test_semidgm_needs_labelled_anomalies_and_errors(gauss):
    X, y, _, _ = gauss
    with pytest.raises(ValueError, match="labelled anomalies"):
        make_baseline("semidgm", epochs=1).fit(X[y == 0], y[y == 0])
    with pytest.raises(ValueError, match="unknown baseline"):
        make_baseline("lof")
    with pytest.raises(ValueError, match="semi-labels"):
        make_baseline("ocsvm").fit(X, np.full(len(X), 2))
    with pytest.raises(RuntimeError, match="fit first"):
        make_baseline("isoforest").score(X)


def test_kde_matches_scikit_learn():
    from sklearn.model_selection import GridSearchCV, KFold
    from sklearn.neighbors import KernelDensity

    from adcore.baselines import KDE, gaussian_log_density

    rng = np.random.default_rng(3)
    X, Xt = rng.normal(size=(60, 4)), rng.normal(size=(7, 4))
    ref = KernelDensity(kernel="gaussian", bandwidth=1.3).fit(X).score_samples(Xt)
    assert np.allclose(gaussian_log_density(X, Xt, 1.3), ref)
    grid = (0.3, 0.6, 1.2, 2.4)
    ours = KDE(bandwidths=grid, seed=0).fit(X)
    search = GridSearchCV(KernelDensity(kernel="gaussian"), {"bandwidth": list(grid)},
                          cv=KFold(5, shuffle=True, random_state=0)).fit(X)
    assert ours.selected["param"] == search.best_params_["bandwidth"]
