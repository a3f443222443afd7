import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from adcore.baselines import BASELINES, SSAD, holdout, make_baseline, median_gamma, ssad_dual


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
    assert m.selected["criterion"] == "median heuristic (label-free)"
    assert m.selected["param"] == pytest.approx(median_gamma(X[y == 0]))
    assert roc_auc_score(yt, m.score(Xt)) > 0.9
    m = make_baseline("ocsvm").fit(X, y)
    assert m.selected["criterion"].startswith("held-out AUC") and m.selected["param"] in m.grid


def test_median_heuristic_by_hand():
    # three points on a line at 0, 1, 3: squared distances 1, 9, 4 -> median 4 -> gamma 1/4
    assert median_gamma(np.array([[0.0], [1.0], [3.0]])) == pytest.approx(0.25)
    # does not depend on the order; a subsample of max_samples points is deterministic in the seed
    rng = np.random.default_rng(0)
    X = rng.normal(size=(50, 3))
    assert median_gamma(X[::-1]) == pytest.approx(median_gamma(X))
    assert median_gamma(X, seed=1, max_samples=20) == median_gamma(X, seed=1, max_samples=20)
    with pytest.raises(ValueError, match="median distance 0"):
        median_gamma(np.ones((4, 2)))


def test_label_free_choice_is_not_the_grid_edge():
    """The old criterion (held-out false alarms closest to nu) chose the smallest gamma of every grid; the median
    heuristic does not depend on the grid at all."""
    rng = np.random.default_rng(2)
    X = rng.normal(size=(200, 5))
    y = np.zeros(200, int)
    picks = {make_baseline("ocsvm", gammas=g).fit(X, y).selected["param"] for g in
             [(2.0 ** -7, 2.0 ** -5), (2.0 ** -3, 1.0, 4.0)]}
    assert len(picks) == 1 and 2.0 ** -7 < picks.pop() < 4.0


def test_seed_protocol_picks_by_auc_on_a_validation_set(gauss):
    X, y, Xt, yt = gauss
    grid = (2.0 ** -7, 2.0 ** -3, 2.0, 2.0 ** 6)
    m = make_baseline("ocsvm", gammas=grid).fit(X, y, val=(Xt, yt))
    table = dict(m.selected["table"])
    assert m.selected["criterion"] == "AUC on 10 % of the test set (the seeds' protocol)"
    assert set(table) == set(grid) and table[m.selected["param"]] == max(table.values())
    ref = make_baseline("ocsvm", gammas=(m.selected["param"],)).fit(X, y)  # refit on all training data
    assert np.allclose(ref.score(Xt), m.score(Xt))


def test_semidgm_seed_sizes_and_lenet_classifier():
    import torch
    from adcore.baselines import M2, semidgm_spec

    spec = semidgm_spec("fmnist", (1, 28, 28))
    assert spec == {"z_dim": 64, "h_dims": [256, 128], "classifier": "fmnist_lenet_sad", "input_shape": (1, 28, 28)}
    assert semidgm_spec("thyroid", (6,))["z_dim"] == 4 and semidgm_spec("thyroid", (6,))["classifier"] is None
    assert semidgm_spec("sk-wine", (13,)) == {}
    m = M2(784, spec["z_dim"], spec["h_dims"], spec["classifier"], spec["input_shape"])
    convs = [c for c in m.classifier.modules() if isinstance(c, torch.nn.Conv2d)]
    assert len(convs) == 2  # the Fashion-MNIST LeNet
    assert m.encoder[0].in_features == 786 and m.encoder[-1].out_features == 128  # 2 z_dim (mean, log-variance)
    assert m.classify(torch.rand(3, 784)).shape == (3, 2)
    assert all(not l.bias.detach().any() for l in m.modules() if isinstance(l, torch.nn.Linear)
               and l.bias is not None)  # the seed's init: Xavier-normal weights, zero biases
    with pytest.raises(ValueError, match="input_shape"):
        M2(784, 8, [32], "fmnist_lenet_sad", (1, 32, 32))
    X = np.random.default_rng(0).random((40, 784))
    y = np.r_[np.zeros(36), -np.ones(4)].astype(int)
    s = make_baseline("semidgm", epochs=1, batch_size=16, **spec).fit(X, y).score(X)
    assert s.shape == (40,) and np.all((s >= 0) & (s <= 1))
    # one labelled sample: the labelled term is left out (the seed's y.nelement() < 2), the BatchNorm LeNet trains
    y1 = np.r_[np.zeros(39), -1].astype(int)
    assert np.isfinite(make_baseline("semidgm", epochs=1, batch_size=16, **spec).fit(X, y1).losses[0])


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
