import numpy as np
import pytest
import torch

from adcore.semisup import (MinMax, gcn_l1, known_classes, make_semisupervised, preprocess_images,
                            semisupervised_counts)

RATIOS = [(0.0, 0.0, 0.0), (0.0, 0.01, 0.0), (0.0, 0.05, 0.1), (0.0, 0.2, 0.2), (0.1, 0.05, 0.1), (0.3, 0.1, 0.05),
          (0.0, 0.0, 0.2)]


@pytest.mark.parametrize("n_normal", [100, 1000, 6000])
@pytest.mark.parametrize("rkn,rko,rp", RATIOS)
def test_counts_satisfy_the_constraints(n_normal, rkn, rko, rp):
    c = semisupervised_counts(n_normal, rkn, rko, rp)
    assert n_normal - 1 <= c.known_normal + c.unlabelled_normal <= n_normal  # every normal sample, to within one
    assert abs(c.known_outlier - rko * c.total) < 1  # labelled anomalies: a ratio of the whole training set
    assert abs(c.known_normal - rkn * c.total) < 1
    assert abs(c.unlabelled_outlier - rp * (c.unlabelled_normal + c.unlabelled_outlier)) < 1  # of the unlabelled
    assert min(c.known_normal, c.unlabelled_normal, c.unlabelled_outlier, c.known_outlier) >= 0


def test_counts_by_hand_and_errors():
    c = semisupervised_counts(1000, 0.0, 0.05, 0.1)
    # unlabelled normals 1000; pollution p: p = 0.1 (1000 + p) -> 111.1; known k = 0.05 (1111.1 + k) -> 58.5
    assert (c.unlabelled_normal, c.unlabelled_outlier, c.known_outlier) == (1000, 111, 58)
    # truncated as the seed's int(): k = 0.05 (1000 + k) -> 52.63 -> 52 (rounding would give 53)
    assert semisupervised_counts(1000, 0.0, 0.05, 0.0).known_outlier == 52
    # and so is a solution a rounding error below an integer: 0.1 (n + k) = k with n = 900 is 100 - 1e-14 -> 99
    x = np.linalg.solve(np.array([[1, 1, 0, 0], [1, 0, 0, 0], [-0.1, -0.1, -0.1, 0.9], [0, 0, 1, 0]], float),
                        np.array([900, 0, 0, 0], float))
    assert semisupervised_counts(900, 0.0, 0.1, 0.0).known_outlier == int(x[3])
    with pytest.raises(ValueError):
        semisupervised_counts(100, 0.0, 1.0, 0.0)
    with pytest.raises(ValueError):
        semisupervised_counts(100, 0.6, 0.5, 0.0)


def _labels():
    return np.repeat(np.arange(10), 500)  # 10 classes x 500 samples


@pytest.mark.parametrize("rkn,rko,rp", RATIOS)
def test_generator_draws_from_the_right_classes(rkn, rko, rp):
    labels = _labels()
    known = (3,) if rko else ()
    s = make_semisupervised(labels, [0], range(1, 10), known, rkn, rko, rp, seed=1, n_normal=400)
    c = s.counts
    assert len(s.idx) == len(set(s.idx.tolist())) == c.total  # no sample twice (pollution and known disjoint)
    assert (s.semi == 1).sum() == c.known_normal and (s.semi == -1).sum() == c.known_outlier
    assert (s.semi == 0).sum() == c.unlabelled_normal + c.unlabelled_outlier
    cls = labels[s.idx]
    assert np.all(cls[s.semi == -1] == 3)  # labelled anomalies come from the known class only
    assert np.all(cls[s.semi == 1] == 0)
    assert np.array_equal(s.y, (cls != 0).astype(int))
    assert (cls[(s.semi == 0) & (s.y == 0)] == 0).sum() == c.unlabelled_normal >= 399 - c.known_normal
    if rp >= 0.1:  # pollution comes from all anomaly classes, not only the known one
        assert len(set(cls[(s.semi == 0) & (s.y == 1)].tolist())) > 3


def test_unlabelled_part_does_not_depend_on_the_labelled_anomalies():
    labels = _labels()
    sets = [make_semisupervised(labels, [0], range(1, 10), (5,), 0.0, rko, 0.1, seed=2, n_normal=300)
            for rko in (0.0, 0.01, 0.05, 0.2)]
    unl = [np.sort(s.idx[s.semi == 0]) for s in sets]
    assert all(np.array_equal(unl[0], u) for u in unl[1:])
    assert [s.counts.known_outlier for s in sets] == [0, 3, 17, 83]  # 0.05 (333 + k) = k: 17.5 -> 17


def test_generator_errors():
    labels = _labels()
    with pytest.raises(ValueError, match="no known anomaly class"):
        make_semisupervised(labels, [0], range(1, 10), (), 0.0, 0.1, 0.0)
    # 500 normals and ratio 0.6: 750 labelled anomalies, but class 4 holds 500
    with pytest.raises(ValueError, match="labelled anomalies needed"):
        make_semisupervised(labels, [0], range(1, 10), (4,), 0.0, 0.6, 0.0)
    with pytest.raises(ValueError, match="polluting anomalies needed"):
        make_semisupervised(labels, [0], range(1, 10), (), 0.0, 0.0, 0.95)


def test_known_classes():
    assert known_classes(range(1, 10), 0, None, 0) == ()
    assert known_classes(range(1, 10), 1, 7, 0) == (7,)
    drawn = known_classes(range(1, 10), 1, None, 3)
    assert len(drawn) == 1 and drawn[0] in range(1, 10) and drawn == known_classes(range(1, 10), 1, None, 3)
    assert len(known_classes(range(1, 10), 3, None, 0)) == 3
    # one seed, ten normal classes: the drawn known anomaly class is not the same for all of them
    per_class = {known_classes([c for c in range(10) if c != n], 1, None, 0) for n in range(10)}
    assert len(per_class) > 2
    with pytest.raises(ValueError):
        known_classes(range(1, 10), 1, 0, 0)


def test_gcn_l1_and_minmax():
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (5, 1, 28, 28), generator=g, dtype=torch.uint8)
    z = gcn_l1(x)
    flat = z.flatten(1)
    assert torch.allclose(flat.mean(1), torch.zeros(5), atol=1e-5)
    assert torch.allclose(flat.abs().mean(1), torch.ones(5), atol=1e-5)
    assert torch.allclose(gcn_l1(x.float() / 255), z, atol=1e-5)  # scale-free
    mm = MinMax.fit(z[:3])
    assert float(mm(z[:3]).min()) == pytest.approx(0) and float(mm(z[:3]).max()) == pytest.approx(1)
    tr, te = preprocess_images(x[:3], x[3:], "gcn", np.array([True, True, False]))
    assert float(tr[:2].min()) == pytest.approx(0) and float(tr[:2].max()) == pytest.approx(1)
    tr, te = preprocess_images(x[:3], x[3:], "minmax", np.ones(3, bool))
    assert torch.equal(te, x[3:].float() / 255)
    with pytest.raises(ValueError):
        preprocess_images(x, x, "zca", np.ones(5, bool))
