import math

import pytest
import torch

from adcore.objectives import OBJECTIVES, make_objective

T = torch.tensor


def test_hsc_default_norm_values():
    hsc = make_objective("hsc")
    z = T([[3.0, 4.0], [0.0, 0.75]])
    h = [math.sqrt(26) - 1, 0.25]  # sqrt(||z||^2 + 1) - 1
    expected = (h[0] - math.log(1 - math.exp(-h[1]) + 1e-9)) / 2
    assert hsc.loss(z, T([0, 1])).item() == pytest.approx(expected, rel=1e-6)
    assert hsc.score(z).tolist() == pytest.approx([1 - math.exp(-h[0]), 1 - math.exp(-h[1])], rel=1e-6)


@pytest.mark.parametrize("norm,h", [("l1", 7.0), ("l2", 5.0), ("l2_squared", 25.0)])
def test_hsc_other_norms(norm, h):
    hsc = make_objective("hsc", norm=norm)
    z = T([[3.0, -4.0]])
    assert hsc.loss(z, T([0])).item() == pytest.approx(h)
    assert hsc.loss(z, T([1])).item() == pytest.approx(-math.log(1 - math.exp(-h) + 1e-9), rel=1e-4, abs=1e-6)


def test_deepsad_oe():
    obj = make_objective("deepsad")
    z = T([[1.0, 2.0], [0.0, 2.0]])
    assert obj.loss(z, T([0, 1])).item() == pytest.approx((5 + 1 / 4) / 2)
    assert obj.score(z).tolist() == pytest.approx([5.0, 4.0])


def test_deepsad_semi_labels():
    obj = make_objective("deepsad_semi")
    obj.c = T([0.0, 0.0])
    z = T([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]])
    # unlabelled d=1; labelled normal (d + eps)^1; labelled anomaly (d + eps)^-1
    expected = (1 + (4 + 1e-6) + 1 / (2 + 1e-6)) / 3
    assert obj.loss(z, T([0, 1, -1])).item() == pytest.approx(expected, rel=1e-6)
    assert obj.oe_target == -1


def test_center_rule_pushes_small_coordinates():
    obj = make_objective("deepsvdd")
    obj.set_center(T([0.05, -0.05, 0.3, 0.0, -0.2]))
    assert obj.c.tolist() == pytest.approx([0.1, -0.1, 0.3, 0.1, -0.2])


def test_center_required():
    with pytest.raises(RuntimeError, match="centre"):
        make_objective("deepsvdd").loss(torch.zeros(2, 3), T([0, 0]))


def test_deepsvdd_one_class():
    obj = make_objective("deepsvdd")
    obj.c = T([1.0, 1.0])
    z = T([[1.0, 1.0], [3.0, 1.0]])
    assert obj.loss(z, T([0, 0])).item() == pytest.approx(2.0)
    assert obj.score(z).tolist() == pytest.approx([0.0, 4.0])


def test_soft_boundary_loss_and_radius_rule():
    obj = make_objective("deepsvdd_soft", nu=0.5, warm_up=2)
    obj.c = T([0.0])
    obj.R = 1.0
    z = T([[0.5 ** 0.5], [2 ** 0.5], [5 ** 0.5]])  # d = 0.5, 2, 5
    assert obj.loss(z, T([0, 0, 0])).item() == pytest.approx(1 + (0 + 1 + 4) / 3 / 0.5, rel=1e-6)
    obj.after_step(z, T([0, 0, 0]), epoch=1)  # still warming up: R untouched
    assert obj.R == 1.0
    obj.after_step(z, T([0, 0, 0]), epoch=2)  # (1 - nu)-quantile of sqrt(d) = median = sqrt(2)
    assert obj.R == pytest.approx(2 ** 0.5, rel=1e-6)
    assert obj.score(z).tolist() == pytest.approx([0.5 - 2, 0.0, 3.0], abs=1e-5)
    obj2 = make_objective("deepsvdd_soft", nu=0.1, warm_up=0)
    obj2.c = T([0.0])
    d = torch.arange(1.0, 11.0)
    obj2.after_step(d.sqrt()[:, None], torch.zeros(10), epoch=0)
    assert obj2.R == pytest.approx(torch.quantile(d.sqrt(), 0.9).item())
    with pytest.raises(ValueError):
        make_objective("deepsvdd_soft", nu=0)


def test_bce_and_focal():
    logits, y = T([0.0, 2.0]), T([0, 1])
    bce = [math.log(2), math.log(1 + math.exp(-2))]
    assert make_objective("bce").loss(logits, y).item() == pytest.approx(sum(bce) / 2, rel=1e-6)
    focal = [(1 - math.exp(-b)) ** 2 * b for b in bce]
    assert make_objective("focal").loss(logits, y).item() == pytest.approx(sum(focal) / 2, rel=1e-5)
    assert make_objective("focal", gamma=0).loss(logits, y).item() == pytest.approx(sum(bce) / 2, rel=1e-6)
    assert make_objective("bce").score(logits).tolist() == pytest.approx([0.5, 1 / (1 + math.exp(-2))])
    assert make_objective("bce").head and make_objective("focal").head and not make_objective("hsc").head


def test_unknown_objective_and_norm():
    with pytest.raises(ValueError, match="unknown objective"):
        make_objective("svm")
    with pytest.raises(ValueError, match="unknown HSC norm"):
        make_objective("hsc", norm="l3")
    assert len(OBJECTIVES) == 9 and make_objective("geo").n_transforms == 72 and make_objective("geo8").n_transforms == 8
