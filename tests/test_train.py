import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from adcore.nets import make_net
from adcore.objectives import make_objective
from adcore.augment import make_augment
from adcore.train import IndexStream, score, train


def _fit(toy, objective, seed=0, epochs=4, oe=True, **kw):
    obj = make_objective(objective, **({"warm_up": 3} if objective == "deepsvdd_soft" else {}))
    torch.manual_seed(seed)
    net = make_net("mnist_lenet", rep_dim=16, bias=obj.bias_allowed, head=obj.head)
    log = train(net, obj, toy["train"], toy["oe"] if oe else None, epochs=epochs, batch_size=64, seed=seed,
                progress=False, **kw)
    s = score(net, obj, toy["test_x"])
    return roc_auc_score(toy["test_y"].numpy(), s), log, s


@pytest.mark.parametrize("objective", ["hsc", "deepsad", "bce", "focal"])
def test_oe_objectives_separate_toy_task(toy, objective):
    auc, log, _ = _fit(toy, objective, epochs=6)
    assert auc > 0.95, auc
    assert len(log.losses) == 6 and log.losses[-1] < log.losses[0]
    assert log.images == 6 * (384 // 64) * 128


@pytest.mark.parametrize("objective", ["deepsvdd", "deepsvdd_soft"])
def test_one_class_objectives_separate_toy_task(toy, objective):
    auc, log, _ = _fit(toy, objective, oe=False, epochs=10)
    assert auc > 0.95, auc


def test_deepsad_semi_with_labelled_anomalies(toy):
    from adcore.train import train as train_fn
    obj = make_objective("deepsad_semi")
    x = torch.cat([toy["train"], toy["oe"][:64]])
    targets = torch.cat([torch.zeros(384), -torch.ones(64)]).long()
    torch.manual_seed(0)
    net = make_net("mnist_lenet", rep_dim=16, bias=False)
    train_fn(net, obj, x, targets=targets, epochs=4, batch_size=64, seed=0, progress=False)
    auc = roc_auc_score(toy["test_y"].numpy(), score(net, obj, toy["test_x"]))
    assert obj.c is not None and auc > 0.95, auc


def test_same_seed_same_result(toy):
    a1, l1, s1 = _fit(toy, "hsc", seed=3, epochs=2)
    a2, l2, s2 = _fit(toy, "hsc", seed=3, epochs=2)
    assert a1 == a2 and l1.losses == l2.losses
    np.testing.assert_array_equal(s1, s2)
    _, l3, _ = _fit(toy, "hsc", seed=4, epochs=2)
    assert l3.losses != l1.losses


def test_cpu_images_train_and_score_in_nhwc_equal_to_nchw_up_to_rounding(toy):
    """On a CPU the trainer picks NHWC for images by default (measured faster) and scoring converts to it and back:
    the same computation as NCHW up to float rounding (one epoch: later, Adam turns other rounding on near-zero
    gradients into lr-sized steps, see test_multi), and the caller's network is left in NCHW by scoring."""
    a_auc, a_log, _ = _fit(toy, "hsc", seed=2, epochs=1)  # the default: None, NHWC here
    b_auc, b_log, _ = _fit(toy, "hsc", seed=2, epochs=1, channels_last=False)
    assert a_log.losses == pytest.approx(b_log.losses, rel=5e-3)
    assert abs(a_auc - b_auc) < 0.02  # (different networks after a step of rounding: 0.005 apart seen in CI)
    net = make_net("mnist_lenet", rep_dim=16)
    train(net, make_objective("hsc"), toy["train"], toy["oe"], epochs=1, batch_size=64, seed=0, progress=False)

    def second_conv():  # in_channels > 1: a layout shows in its strides (a 1-channel weight is both)
        return [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)][1].weight

    assert second_conv().is_contiguous(memory_format=torch.channels_last)  # trained in NHWC (a CPU's default)
    assert not second_conv().is_contiguous()
    nhwc = score(net, make_objective("hsc"), toy["test_x"])
    assert second_conv().is_contiguous()  # scoring hands the network back in NCHW
    with torch.no_grad():  # the same network scored in NCHW by hand: equal up to float rounding
        nchw = make_objective("hsc").score(net.eval()(make_augment("none")(toy["test_x"], train=False))).numpy()
    np.testing.assert_allclose(nhwc, nchw, rtol=1e-4, atol=1e-6)


def test_nan_loss_raises(toy):
    x = toy["train"].float()
    x[0] = float("nan")
    net = make_net("mnist_lenet")
    with pytest.raises(FloatingPointError, match="loss became nan"):
        train(net, make_objective("hsc"), x, epochs=1, batch_size=len(x), progress=False)


def test_bad_inputs(toy):
    net = make_net("mnist_lenet")
    with pytest.raises(ValueError, match="empty OE"):
        train(net, make_objective("hsc"), toy["train"], toy["oe"][:0], epochs=1, progress=False)
    with pytest.raises(ValueError, match="targets"):
        train(net, make_objective("hsc"), toy["train"], targets=torch.zeros(3), epochs=1, progress=False)


def test_milestones_lower_lr(toy):
    net = make_net("mnist_lenet")
    opt_lrs = []
    orig = torch.optim.lr_scheduler.MultiStepLR.step

    def spy(self, *a, **k):
        orig(self, *a, **k)
        opt_lrs.append(self.optimizer.param_groups[0]["lr"])
    torch.optim.lr_scheduler.MultiStepLR.step = spy
    try:
        train(net, make_objective("hsc"), toy["train"][:64], epochs=3, batch_size=64, lr=1e-3, milestones=(1, 2),
              progress=False)
    finally:
        torch.optim.lr_scheduler.MultiStepLR.step = orig
    assert opt_lrs[-3:] == pytest.approx([1e-4, 1e-5, 1e-5])


def test_small_oe_pool_is_cycled():
    torch.manual_seed(0)
    s = IndexStream(5, torch.device("cpu"))
    first = s.take(12)
    assert sorted(first[:5].tolist()) == list(range(5)) and sorted(first[5:10].tolist()) == list(range(5))
    assert first.max() < 5 and len(first) == 12
