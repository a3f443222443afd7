import numpy as np
import pytest
import torch

from adcore.augment import cat_params, make_augment
from adcore.experiment import RunConfig
from adcore.nets import make_net
from adcore.objectives import make_objective
from adcore.runner import ResultStore, execute, plan
from adcore.train import train
from conftest import many
from conftest import bars
from test_data import write_idx

# channels_last=False: the loop and vmap paths compared in one memory layout (on a CPU the loop path would
# otherwise train in NHWC, which moves results by float rounding; test_train checks that layout on its own)
KW = dict(epochs=2, batch_size=32, progress=False, channels_last=False)


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: tiny models, one thread


def _model(objective, seed, bias=False, **okw):
    obj = make_objective(objective, **okw)
    torch.manual_seed(seed)
    return make_net("mnist_lenet", rep_dim=8, bias=bias, head=obj.head), obj


def _pools():
    """Per-model data: normal pools of different sizes' draws, OE pools A (noise) and B (vertical bars)."""
    g = torch.Generator().manual_seed(5)
    oe_a = (torch.rand(80, 1, 28, 28, generator=g) * 255).to(torch.uint8)
    oe_b = bars(64, True, 7)
    return [bars(64, False, 1), bars(64, False, 2), bars(64, True, 3)], [oe_a, oe_b, oe_a]


def _sequential(specs, xs, oes, seeds, **kw):
    out = []
    for (objective, init, okw), x, oe, seed in zip(specs, xs, oes, seeds):
        net, obj = _model(objective, init, **okw)
        log = train(net, obj, x, oe, seed=seed, **{**KW, **kw})
        out.append((net, obj, log))
    return out


def _assert_same(seq, multi, logs, atol):
    for (net_s, obj_s, log_s), (net_m, obj_m), log_m in zip(seq, multi, logs):
        sd_s, sd_m = net_s.state_dict(), net_m.state_dict()
        assert sd_s.keys() == sd_m.keys()
        for name in sd_s:
            if atol == 0:
                assert torch.equal(sd_s[name], sd_m[name]), name
            else:
                torch.testing.assert_close(sd_m[name].float(), sd_s[name].float(), atol=atol, rtol=1e-4,
                                           msg=name)
        assert log_m.losses == pytest.approx(log_s.losses, rel=1e-5 if atol else 0)
        st_s, st_m = obj_s.state(), obj_m.state()
        assert st_s.keys() == st_m.keys()
        for key in st_s:
            assert st_m[key] == pytest.approx(st_s[key], rel=1e-4 if atol else 0, abs=atol), key


# Centred objectives (centre from an initial eval pass) and the soft boundary's after_step hook included.
SPECS = [("hsc", 0, {}), ("deepsvdd_soft", 1, {"warm_up": 1}), ("deepsad_semi", 2, {})]


@pytest.mark.parametrize("mode,atol", [("loop", 0), ("vmap", 1e-4)])
def test_k_models_equal_sequential_runs(mode, atol):
    xs, oes = _pools()
    seeds = [10, 11, 12]
    seq = _sequential(SPECS, xs, oes, seeds)
    multi = [_model(o, i, **kw) for o, i, kw in SPECS]
    logs = many([m[0] for m in multi], [m[1] for m in multi], xs, oes, seeds=seeds, mode=mode, **KW)
    _assert_same(seq, multi, logs, atol)
    assert all(log.models == 3 and log.images == 2 * 2 * 64 for log in logs)


def test_batchnorm_statistics_stay_per_model():
    xs, oes = _pools()
    multi = [_model("hsc", 0) for _ in range(3)]  # identical initial networks, different data
    many([m[0] for m in multi], [m[1] for m in multi], xs, oes, seeds=[1, 1, 1], mode="vmap", **KW)
    seq = _sequential([("hsc", 0, {})] * 3, xs, oes, [1, 1, 1])
    names = [n for n in multi[0][0].state_dict() if "running_" in n]
    assert len(names) == 6
    for name in names:
        stats = [m[0].state_dict()[name] for m in multi]
        assert not torch.allclose(stats[0], stats[2])  # horizontal vs vertical bars: other statistics
        for (net_s, _, _), s in zip(seq, stats):
            torch.testing.assert_close(s, net_s.state_dict()[name], atol=1e-5, rtol=1e-4)


def test_oe_pool_per_model_is_honoured():
    xs, (oe_a, oe_b, _) = _pools()
    x = xs[0]
    multi = [_model("hsc", 0, bias=True) for _ in range(2)]
    many([m[0] for m in multi], [m[1] for m in multi], [x, x], [oe_a, oe_b], seeds=[3, 3], **KW)
    net_a, _, _ = _sequential([("hsc", 0, {"bias": True})], [x], [oe_a], [3])[0]
    net_b, _, _ = _sequential([("hsc", 0, {"bias": True})], [x], [oe_b], [3])[0]
    w = "fc.4.weight"
    assert torch.equal(multi[0][0].state_dict()[w], net_a.state_dict()[w])
    assert torch.equal(multi[1][0].state_dict()[w], net_b.state_dict()[w])
    assert not torch.allclose(net_a.state_dict()[w], net_b.state_dict()[w])


def test_models_of_other_architectures_in_loop_mode_and_errors():
    xs, oes = _pools()
    specs = [("bce", 0, {"bias": True}), ("hsc", 1, {"bias": True})]  # head vs no head
    seq = _sequential(specs, xs[:2], oes[:2], [4, 5])
    multi = [_model(o, i, **kw) for o, i, kw in specs]
    logs = many([m[0] for m in multi], [m[1] for m in multi], xs[:2], oes[:2], seeds=[4, 5], mode="loop",
                      **KW)
    _assert_same(seq, multi, logs, 0)
    with pytest.raises(ValueError, match="one architecture"):
        many([m[0] for m in multi], [m[1] for m in multi], xs[:2], oes[:2], mode="vmap", **KW)
    nets, objs = zip(*[_model("hsc", 0) for _ in range(2)])
    with pytest.raises(ValueError, match="steps per epoch"):
        many(nets, objs, [xs[0], xs[1][:40]], **KW)
    with pytest.raises(ValueError, match="OE pool"):
        many(nets, objs, xs[:2], [oes[0], None], **KW)
    with pytest.raises(ValueError, match="own objective"):
        many(nets, [objs[0], objs[0]], xs[:2], **KW)
    # an OE pool of another shape fails before any model trains, whichever chunk holds it
    before = [{k: v.clone() for k, v in n.state_dict().items()} for n in nets]
    with pytest.raises(ValueError, match="OE pools need the training data's dtype and sample shape"):
        many(nets, objs, xs[:2], [oes[0], oes[1][:, :, :20]], max_models=1, **KW)
    assert all(torch.equal(v, b[k]) for n, b in zip(nets, before) for k, v in n.state_dict().items())


def test_diverging_model_does_not_stop_the_others():
    xs, oes = _pools()
    bad = xs[1].float()
    bad[:] = float("nan")
    multi = [_model("hsc", 0) for _ in range(2)]
    good = xs[0].float()
    with pytest.raises(FloatingPointError, match="model 1"):
        many([m[0] for m in multi], [m[1] for m in multi], [good, bad], seeds=[1, 2], **KW)
    multi = [_model("hsc", 0) for _ in range(2)]
    logs = many([m[0] for m in multi], [m[1] for m in multi], [good, bad], seeds=[1, 2], keep_going=True,
                      **KW)
    assert logs[1].error and "nan" in logs[1].error and not logs[0].error
    net_s, _, log_s = _sequential([("hsc", 0, {})], [good], [None], [1])[0]
    assert logs[0].losses == log_s.losses


def test_batched_augmentation_equals_per_model_draws():
    aug = make_augment("cifar")
    x = torch.randint(0, 256, (12, 3, 32, 32), dtype=torch.uint8)
    parts = [x[:5], x[5:]]
    alone = [aug(p, train=True, generator=torch.Generator().manual_seed(s)) for p, s in zip(parts, (1, 2))]
    gens = [torch.Generator().manual_seed(s) for s in (1, 2)]
    params = cat_params([aug.draw(tuple(p.shape), "cpu", g) for p, g in zip(parts, gens)])
    together = aug.apply(x.float() / 255, params)
    assert torch.equal(together, torch.cat(alone))


@pytest.fixture(scope="module")
def noise_mnist(tmp_path_factory):
    """An MNIST-format dataset (IDX .gz): class 0 horizontal bars, classes 1 and 2 uniform noise, so that a model
    trained on class 0 with noise OE separates the test set in two epochs (clear margins, few near-ties)."""
    root = tmp_path_factory.mktemp("noise_mnist")

    def noise(n, seed):
        g = torch.Generator().manual_seed(seed)
        return torch.randint(0, 256, (n, 1, 28, 28), generator=g, dtype=torch.uint8)

    for prefix, n, seed in (("train", 64, 1), ("t10k", 40, 2)):
        x = torch.cat([bars(n, False, seed), noise(n, seed + 10), noise(n, seed + 20)])[:, 0].numpy()
        write_idx(root / f"{prefix}-images-idx3-ubyte.gz", x)
        write_idx(root / f"{prefix}-labels-idx1-ubyte.gz", np.repeat([0, 1, 2], n))
    return str(root)


def _cfg(root, **kw):
    base = dict(dataset="mnist", normal_class=0, objective="hsc", oe="noise", oe_size=64, epochs=2,
                batch_size=32, data_root=root, seed=0)
    return RunConfig(**{**base, **kw})


def test_plan_groups_compatible_configs(noise_mnist):
    cfgs = [_cfg(noise_mnist), _cfg(noise_mnist, seed=1), _cfg(noise_mnist, objective="deepsad", normal_class=2),
            _cfg(noise_mnist, objective="bce"), _cfg(noise_mnist, epochs=3),
            _cfg(noise_mnist, oe="tinyimages", oe_size=None), _cfg(noise_mnist, objective="deepsvdd", oe=None),
            _cfg(noise_mnist, seed=2)]
    assert cfgs[5].group_key() is None  # the whole streamed source: alone (a small subset of it groups)
    index = {id(c): i for i, c in enumerate(cfgs)}
    assert [[index[id(c)] for c in job] for job in plan(cfgs, 10)] == [[0, 1, 2, 7], [3], [4], [5], [6]]
    assert [[index[id(c)] for c in job] for job in plan(cfgs, 2)] == [[0, 1], [2, 7], [3], [4], [5], [6]]
    assert [[index[id(c)] for c in job] for job in plan(cfgs, 1)] == [[i] for i in range(8)]


# vmap: bias=False. With biases, the conv/linear biases right before BatchNorm have a true gradient of 0; Adam
# scales their rounding-noise gradients up to lr-sized steps, so those biases (and, through the lagging running
# means, eval-mode scores) differ by far more than the rounding itself. Without them the runs agree closely.
@pytest.mark.parametrize("mode,bias", [("loop", None), ("vmap", False)])
def test_run_group_records_equal_run(noise_mnist, mode, bias):
    cfgs = [_cfg(noise_mnist, bias=bias), _cfg(noise_mnist, seed=1, oe_size=96, bias=bias),
            _cfg(noise_mnist, objective="deepsad", bias=bias)]
    assert len({c.group_key() for c in cfgs}) == 1
    seen, recs = [], []
    RunConfig.run_group(cfgs, device="cpu", mode=mode, on_record=lambda c, r: (seen.append(c), recs.append(r)))
    assert seen == cfgs
    for cfg, rec in zip(cfgs, recs):
        ref = cfg.run(device="cpu", progress=False)
        assert rec.keys() == ref.keys()
        assert rec["auc"] == pytest.approx(ref["auc"], abs=0 if mode == "loop" else 1e-4)
        assert rec["auc"] > 0.75
        assert rec["losses"] == pytest.approx(ref["losses"], rel=0 if mode == "loop" else 1e-4)
        assert rec["models_in_step"] == 3 and ref["models_in_step"] == 1
        for k in ("n_train", "n_test", "n_oe", "n_params", "seed", "objective", "oe_size", "bias"):
            assert rec[k] == ref[k], k


def test_execute_writes_each_record_of_a_group_and_resumes(noise_mnist, tmp_path, monkeypatch):
    cfgs = [_cfg(noise_mnist, epochs=1), _cfg(noise_mnist, epochs=1, seed=1), _cfg(noise_mnist, epochs=1,
                                                                                  objective="bce")]
    store = ResultStore(tmp_path / "res")
    df = execute(cfgs, store, device="cpu", progress=False).frame
    assert len(df) == 3 and len(store) == 3 and all(store.has(c) for c in cfgs)
    assert sorted(df["models_in_step"]) == [1, 2, 2]
    # each record's times are its own: preparation + its share of the job's training (job time / K) + scoring
    assert df["wall_time"].tolist() == pytest.approx((df["prep_time"] + df["train_time"] + df["test_time"]).tolist())

    def boom(*a, **k):
        raise AssertionError("nothing should train")
    monkeypatch.setattr(RunConfig, "run_group", classmethod(boom))
    monkeypatch.setattr(RunConfig, "run", boom)
    assert len(execute(cfgs, store, device="cpu", progress=False).frame) == 3


def test_speed_options_keep_loop_mode_exact():
    xs, oes = _pools()
    opts = dict(amp=True, channels_last=True, epochs=1, batch_size=32, progress=False)
    seq = _sequential([("hsc", 0, {})] * 2, xs[:2], oes[:2], [6, 7], **opts)
    multi = [_model("hsc", 0) for _ in range(2)]
    logs = many([m[0] for m in multi], [m[1] for m in multi], xs[:2], oes[:2], seeds=[6, 7], mode="loop",
                      **opts)
    _assert_same(seq, multi, logs, 0)
    multi = [_model("hsc", 0) for _ in range(2)]
    logs = many([m[0] for m in multi], [m[1] for m in multi], xs[:2], oes[:2], seeds=[6, 7], mode="vmap",
                      **opts)
    assert all(len(log.losses) == 1 and np.isfinite(log.losses[0]) for log in logs)


def test_vmap_groups_equal_stateless_objectives_and_keeps_the_others_apart():
    """hsc, deepsad, hsc with another norm, hsc, deepsvdd (a centre: per model): the two default-hsc models share
    one vmapped loss call, the losses come back in model order, and every model trains as it would alone."""
    specs = [("hsc", 0, {}), ("deepsad", 1, {}), ("hsc", 2, {"norm": "l1"}), ("hsc", 3, {}), ("deepsvdd", 4, {})]
    xs, oes = _pools()
    xs, oes = [xs[0], xs[1], xs[2], xs[1], xs[0]], [oes[0], oes[1], oes[2], oes[0], oes[1]]
    seeds = [20, 21, 22, 23, 24]
    one = {**KW, "epochs": 1}
    seq = _sequential(specs, xs, oes, seeds, epochs=1)
    multi = [_model(o, i, **kw) for o, i, kw in specs]
    logs = many([m[0] for m in multi], [m[1] for m in multi], xs, oes, seeds=seeds, mode="vmap", **one)
    _assert_same(seq, multi, logs, 1e-4)
    specs = [("bce", 0, {"bias": True}), ("focal", 1, {"bias": True}), ("bce", 2, {"bias": True})]  # the head
    seq = _sequential(specs, xs[:3], oes[:3], seeds[:3], epochs=1)
    multi = [_model(o, i, **kw) for o, i, kw in specs]
    logs = many([m[0] for m in multi], [m[1] for m in multi], xs[:3], oes[:3], seeds=seeds[:3], mode="vmap",
                      **one)
    for (_, _, log_s), log_m in zip(seq, logs):
        assert log_m.losses == pytest.approx(log_s.losses, rel=1e-4)


def test_max_models_trains_chunks_that_equal_one_job():
    xs, oes = _pools()
    seeds = [10, 11, 12]
    seq = _sequential(SPECS, xs, oes, seeds)
    multi = [_model(o, i, **kw) for o, i, kw in SPECS]
    logs = many([m[0] for m in multi], [m[1] for m in multi], xs, oes, seeds=seeds, mode="loop",
                      max_models=2, **KW)
    _assert_same(seq, multi, logs, 0)
    assert [log.models for log in logs] == [2, 2, 1]
    nets, objs = zip(*[_model("hsc", 0) for _ in range(2)])
    with pytest.raises(ValueError, match="max_models must be at least 1"):
        many(nets, objs, xs[:2], max_models=0, **KW)
    g = torch.Generator().manual_seed(0)
    with pytest.raises(ValueError, match="own generator"):
        many(nets, objs, xs[:2], generators=[g, g], **KW)


def test_vmap_channels_last_trains_the_same_models():
    """The NHWKC layout is a layout only: the same losses (one epoch; later, Adam turns the convolutions' other
    rounding on near-zero gradients into lr-sized steps, as in the vmap-vs-loop comparison with biases)."""
    xs, oes = _pools()
    logs = {}
    for cl in (False, True):
        multi = [_model("hsc", i) for i in range(2)]
        logs[cl] = many([m[0] for m in multi], [m[1] for m in multi], xs[:2], oes[:2], seeds=[1, 2],
                              mode="vmap", **{**KW, "epochs": 1, "channels_last": cl})
    for a, b in zip(logs[False], logs[True]):
        assert b.losses == pytest.approx(a.losses, rel=1e-4)


def test_score_many_equals_lone_scoring():
    from adcore.train import score, score_many

    xs, oes = _pools()
    multi = [_model(o, i, **kw) for o, i, kw in SPECS]
    many([m[0] for m in multi], [m[1] for m in multi], xs, oes, seeds=[1, 2, 3], mode="vmap", **KW)
    nets, objs = [m[0] for m in multi], [m[1] for m in multi]
    test = torch.cat([bars(20, False, 8), bars(20, True, 9)])
    alone = [score(n, o, test) for n, o in zip(nets, objs)]
    for x in (test, [test, test.flip(0).flip(0), test.clone()]):  # one shared test set; one per model
        for got, ref in zip(score_many(nets, objs, x, mode="loop"), alone):
            assert np.array_equal(got, ref)  # loop: score() itself
        for got, ref in zip(score_many(nets, objs, x, mode="vmap", batch_size=16), alone):
            np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-5 * np.abs(ref).max())
    assert all(not n.training for n in nets)
    mixed = score_many(nets, objs, [test, test[:30], test], mode="vmap")  # one pass per test-set size
    np.testing.assert_allclose(mixed[1], score(nets[1], objs[1], test[:30]), rtol=1e-4, atol=1e-5 * np.abs(
        alone[1]).max())
    for k in (0, 2):
        np.testing.assert_allclose(mixed[k], alone[k], rtol=1e-4, atol=1e-5 * np.abs(alone[k]).max())
    with pytest.raises(ValueError, match="2 objectives for 3 models"):
        score_many(nets, objs[:2], test)


def test_memory_estimate_and_models_that_fit():
    """20 bytes per parameter, buffers twice, and per sample ACT_COPIES x the layer outputs plus AUG_COPIES x the
    sample, all float32; hand-computed for Linear(4, 3) -> ReLU at batch 2."""
    from adcore import train as tr

    net = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU())
    outputs = 3 + 3  # per sample: the linear layer's and the ReLU's
    assert tr.step_bytes(net, (4,), 2) == 20 * 15 + 4 * 2 * (tr.ACT_COPIES * outputs + tr.AUG_COPIES * 4)
    bn = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3))  # buffers: mean, var, count
    assert tr.step_bytes(bn, (4,), 1) == 20 * 21 + 2 * (3 * 4 + 3 * 4 + 8) + 4 * (tr.ACT_COPIES * 6 + tr.AUG_COPIES * 4)
    assert next(net.parameters()).device.type == "cpu"  # the estimate leaves the network alone
    lenet = tr.step_bytes(make_net("cifar10_lenet"), (3, 32, 32), 256)
    assert 2**28 < lenet < 2**30  # activations of 256 CIFAR images dominate: a few hundred MB
    assert tr.models_that_fit(100, free=1000) == int(1000 * tr.MEM_FRACTION) // 100
    assert tr.models_that_fit(100, shared=300, free=1000) == int(1000 * tr.MEM_FRACTION - 300) // 100
    assert tr.models_that_fit(100, shared=10**6, free=1000) == 1  # never 0: a job trains its models one by one
    with pytest.raises(ValueError, match="only known for CUDA"):
        tr.models_that_fit(100, device="cpu")
    with pytest.raises(ValueError, match="positive"):
        tr.models_that_fit(0, free=10)
