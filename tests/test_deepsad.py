import pytest
import torch

from adcore.deepsad import METHODS, SADConfig
from adcore.nets import SAD_NETS, make_sad_net, mlp_for, n_params, sad_net_for
from adcore.objectives import make_objective
from adcore.pretrain import init_from_pretrained, pretrain, seed_transfer
from adcore.train import forward_all, train
from adcore.augment import make_augment


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: tiny models, one thread


def _input(name, n=4):
    kind, spec, _ = SAD_NETS[name]
    shape = (spec[0][0], spec[3], spec[3]) if kind == "lenet" else (spec[0],)
    return torch.rand(n, *shape)


# Parameter counts written out from the seeds' layer lists (bias-free: weights only).
SEED_PARAMS = {
    "mnist_lenet_sad": 1 * 8 * 25 + 8 * 4 * 25 + 196 * 32,
    "fmnist_lenet_sad": 1 * 16 * 25 + 16 * 32 * 25 + 1568 * 128 + 128 * 64,
    "cifar10_lenet_sad": 3 * 32 * 25 + 32 * 64 * 25 + 64 * 128 * 25 + 2048 * 128,
    "arrhythmia_mlp": 274 * 128 + 128 * 64 + 64 * 32,
    "cardio_mlp": 21 * 32 + 32 * 16 + 16 * 8,
    "satellite_mlp": 36 * 32 + 32 * 16 + 16 * 8,
    "satimage-2_mlp": 36 * 32 + 32 * 16 + 16 * 8,
    "shuttle_mlp": 9 * 32 + 32 * 16 + 16 * 8,
    "thyroid_mlp": 6 * 32 + 32 * 16 + 16 * 4,
}


@pytest.mark.parametrize("name", list(SAD_NETS))
def test_seed_networks_are_bias_free_with_mirrored_decoders(name):
    ae = make_sad_net(name, decoder=True).eval()
    x = _input(name)
    with torch.no_grad():
        assert ae(x).shape == x.shape
        assert ((ae(x) >= 0) & (ae(x) <= 1)).all()  # sigmoid output, data in [0, 1]
        assert ae.encoder(x).shape == (4, SAD_NETS[name][2])
    if name in SEED_PARAMS:
        assert n_params(make_sad_net(name)) == SEED_PARAMS[name]
    for m in ae.modules():
        assert getattr(m, "bias", None) is None
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            assert not m.affine and m.eps == 1e-4
        if isinstance(m, torch.nn.LeakyReLU):
            assert m.negative_slope == 0.01


def test_net_names():
    assert sad_net_for("fmnist") == "fmnist_lenet_sad" and sad_net_for("cardio") == "cardio_mlp"
    assert mlp_for(21) == "cardio_mlp" and mlp_for(5) == "mlp:5"
    assert make_sad_net("mlp:5")(torch.rand(3, 5)).shape == (3, 8)
    with pytest.raises(ValueError):
        make_sad_net("vgg")
    with pytest.raises(ValueError):
        sad_net_for("svhn")


@pytest.mark.parametrize("name", ["mnist_lenet_sad", "fmnist_lenet_sad", "cifar10_lenet_sad", "arrhythmia_mlp"])
def test_transfer_copies_every_encoder_tensor(name):  # transfer="full"
    torch.manual_seed(0)
    ae = make_sad_net(name, decoder=True)
    ae.train()
    with torch.no_grad():
        ae(_input(name, 8))  # move the BatchNorm running statistics away from their initial values
        for p in ae.encoder.parameters():
            p.add_(0.5)  # and every weight away from any fresh initialisation
    enc = ae.encoder.state_dict()
    net = make_sad_net(name)
    copied = init_from_pretrained(net, ae)
    state = net.state_dict()
    assert set(copied) == set(state) == set(enc)
    assert any("running_mean" in k for k in copied) and any("weight" in k for k in copied)
    for k in state:
        assert torch.equal(state[k], enc[k]), k
    # The seed's transfer filters the autoencoder's keys by the network's: with the "encoder." prefix, nothing.
    fresh = make_sad_net(name)
    before = {k: v.clone() for k, v in fresh.state_dict().items()}
    assert seed_transfer(fresh, ae) == []
    assert all(torch.equal(before[k], v) for k, v in fresh.state_dict().items())


def test_transfer_rejects_a_different_network():
    with pytest.raises(RuntimeError):
        init_from_pretrained(make_sad_net("cardio_mlp"), make_sad_net("satellite_mlp", decoder=True))


def test_pretraining_reduces_error_and_centre_comes_from_the_pretrained_net():
    torch.manual_seed(0)
    x = torch.rand(96, 21) * 0.2 + torch.linspace(0, 0.8, 21)  # structured data in [0, 1]
    ae = make_sad_net("cardio_mlp", decoder=True)
    log = pretrain(ae, x, epochs=8, lr=1e-2, batch_size=32, seed=0, weight_decay=0.0)
    assert log.losses[-1] < log.losses[0] / 2
    net = make_sad_net("cardio_mlp")
    init_from_pretrained(net, ae)
    obj = make_objective("deepsvdd")
    train(net, obj, x, epochs=0, progress=False)  # zero epochs: only the centre is set
    expected = make_objective("deepsvdd")
    expected.set_center(forward_all(ae.encoder, x, make_augment("none"), torch.device("cpu")).mean(0))
    assert torch.allclose(obj.c, expected.c)
    assert (obj.c.abs() >= 0.1 - 1e-7).all()  # the centre rule: |c_i| < 0.1 -> +-0.1


def test_canonical_keys():
    base = SADConfig(dataset="fmnist", ratio_known_outlier=0.05, ratio_pollution=0.1, known_outlier_class=3)
    # Deep SVDD never sees the labelled anomalies: one key for every ratio of them
    keys = {str(base.replace(method="deepsvdd", ratio_known_outlier=r).key()) for r in (0, 0.01, 0.05, 0.2)}
    assert len(keys) == 1
    # Deep SAD without labels is Deep SVDD
    assert base.replace(method="deepsad", ratio_known_outlier=0).key() == base.replace(method="deepsvdd").key()
    assert base.replace(method="deepsad").key() != base.replace(method="deepsvdd").key()
    # OC-SVM ignores network and training settings; SSAD keeps kappa, Deep SVDD drops it
    assert base.replace(method="ocsvm", epochs=3, net="x").key() == base.replace(method="ocsvm").key()
    assert base.replace(method="ssad", kappa=2).key() != base.replace(method="ssad").key()
    assert base.replace(method="deepsvdd", kappa=2).key() == base.replace(method="deepsvdd").key()
    assert base.replace(method="deepsvdd", hybrid=True).key()["hybrid"] is False
    assert base.replace(method="ssad", hybrid=True).key()["ae_epochs"] == base.ae_epochs
    assert base.replace(method="ssad", hybrid=False, ae_epochs=3).key() == base.replace(method="ssad").key()
    # a gamma grid counts only where something selects from it: labelled anomalies, or the seeds' test10 protocol;
    # without either the median heuristic sets gamma, and the grid leaves the key
    grid = (2 ** -5, 2 ** -1)
    assert base.replace(method="ocsvm", gammas=grid).key() == base.replace(method="ocsvm").key()
    assert base.replace(method="ocsvm", gammas=grid, selection="test10").key()["gammas"] == list(grid)
    assert base.replace(method="ssad", gammas=grid).key()["gammas"] == list(grid)  # labelled anomalies select
    assert base.replace(method="ssad", gammas=grid, ratio_known_outlier=0).key()["gammas"] is None
    tab = SADConfig(dataset="sk-wine", normal_class=4, preprocess="gcn")
    assert tab.key()["normal_class"] == 0 and tab.key()["preprocess"] == "minmax"
    with pytest.raises(ValueError, match="unknown method 'lof'"):
        SADConfig(method="lof")


def test_runs_on_a_tabular_set_with_shared_autoencoder():
    cfg = SADConfig(dataset="sk-wine", ratio_known_outlier=0.05, ae_epochs=3, epochs=3, milestones=(), lr=1e-3,
                    ae_lr=1e-3, batch_size=32, dgm_epochs=2)
    recs = {m: cfg.replace(method=m).run(progress=False) for m in ("deepsvdd", "deepsad", "ae")}
    # Deep SAD's autoencoder sees its labelled anomalies (the seed), so Deep SVDD's (trained without them) is another
    # one; the autoencoder baseline, unsupervised too, shares Deep SVDD's
    assert recs["deepsvdd"]["ae_cached"] is False and recs["deepsad"]["ae_cached"] is False
    assert recs["ae"]["ae_cached"] is True
    assert recs["deepsad"]["transferred"] == len(make_sad_net("wine_mlp").state_dict())
    assert recs["deepsad"]["n_known_outlier"] == 3 and recs["deepsvdd"]["n_known_outlier"] == 0
    assert recs["deepsad"]["n_train"] == 71 + 3 and recs["deepsad"]["n_test"] == 52
    for r in recs.values():
        assert 0 <= r["auc"] <= 1 and r["method"] in METHODS
    hyb = cfg.replace(method="ssad", hybrid=True).run(progress=False)
    assert hyb["hybrid"] and hyb["ae_cached"] and hyb["selected"] is not None
    soft = cfg.replace(method="deepsvdd_soft", warm_up=1).run(progress=False)
    assert soft["radius"] > 0


def test_reconstruction_error_names_its_reduction_and_pretraining_uses_the_seeds_mean():
    """The Deep SAD seed's autoencoder loss is MSELoss(reduction='none') then the mean: averaged over pixels; a
    sum (adcore before) made Adam's weight decay relatively 784x weaker on 28x28 inputs."""
    from adcore.pretrain import Reconstruction, ReconstructionError

    zero = torch.nn.Module()
    zero.forward = lambda x: torch.zeros_like(x)
    x = torch.tensor([[1.0, 2.0, 2.0, 0.0]])
    assert ReconstructionError(zero, reduction="sum")(x).tolist() == [9.0]
    assert ReconstructionError(zero, reduction="mean")(x).tolist() == [2.25]
    with pytest.raises(TypeError):
        ReconstructionError(zero)  # no silent default: every caller (Deep SAD, CLAD) names its reduction
    with pytest.raises(ValueError, match="unknown reduction 'max'"):
        ReconstructionError(zero, reduction="max")
    # pretrain's default is the mean: with lr 0 the logged loss is the batch MSE of the initial autoencoder
    torch.manual_seed(0)
    ae = make_sad_net("cardio_mlp", decoder=True)
    xs = torch.rand(32, 21)
    log = pretrain(ae, xs, epochs=1, lr=0.0, batch_size=32, seed=0, weight_decay=0.0)
    ae.train()
    with torch.no_grad():
        mse = (ae(xs) - xs).pow(2).mean().item()
    assert log.losses[0] == pytest.approx(mse, rel=1e-5)
    assert Reconstruction().loss(torch.tensor([1.0, 3.0]), None).item() == 2.0


def test_networks_keep_pytorchs_default_initialisation():
    """The Deep SAD seed never re-initialises its LeNets and MLPs (uniform, bound 1/sqrt(fan_in)); only its CIFAR-10
    decoder's transposed convolutions are Xavier-uniform with the LeakyReLU gain."""
    from torch.nn.init import _calculate_fan_in_and_fan_out as fans

    torch.manual_seed(0)
    for name in ("mnist_lenet_sad", "fmnist_lenet_sad", "cifar10_lenet_sad", "cardio_mlp"):
        ae = make_sad_net(name, decoder=True)
        for m in ae.modules():
            if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d, torch.nn.Linear)):
                fan_in, fan_out = fans(m.weight)
                w = m.weight.detach().abs().max().item()
                if name == "cifar10_lenet_sad" and isinstance(m, torch.nn.ConvTranspose2d):
                    bound = torch.nn.init.calculate_gain("leaky_relu") * (6 / (fan_in + fan_out)) ** 0.5
                else:
                    bound = 1 / fan_in ** 0.5
                assert 0.9 * bound < w <= bound + 1e-7, (name, m)
    # one seed, one network: the same weights as building the seed's layers in the same order
    torch.manual_seed(3)
    net = make_sad_net("mnist_lenet_sad")
    torch.manual_seed(3)
    conv1 = torch.nn.Conv2d(1, 8, 5, bias=False, padding=2)
    assert torch.equal(net.features[0].weight, conv1.weight)


def test_transfer_setting_seed_or_full():
    base = SADConfig(dataset="sk-wine", ratio_known_outlier=0.05, ae_epochs=3, epochs=2, milestones=(), lr=1e-3,
                     ae_lr=1e-3, batch_size=32)
    with pytest.raises(ValueError, match="unknown transfer 'some'; choose one of 'full', 'seed'"):
        base.replace(transfer="some")
    seed = base.replace(transfer="seed")
    # nothing is copied: the same computation as no pretraining, one key, autoencoder fields reset
    assert seed.key() == base.replace(pretrain=False).key()
    assert seed.key()["transfer"] == "seed" and seed.key()["pretrain"] is False
    assert seed.key()["ae_epochs"] == SADConfig().ae_epochs
    assert base.key()["transfer"] == "full" and base.key() != seed.key()
    assert base.key()["key_version"] == 2
    # baselines do not read it
    assert base.replace(method="ssad", hybrid=True, transfer="seed").key() == \
        base.replace(method="ssad", hybrid=True).key()
    r_seed, r_full = seed.run(progress=False), base.run(progress=False)
    assert r_seed["transferred"] == 0 and "ae_time" not in r_seed
    assert r_full["transferred"] == len(make_sad_net("wine_mlp").state_dict())
    with pytest.raises(ValueError, match="unknown selection"):
        SADConfig(selection="test")


def test_autoencoder_sees_all_training_data_and_the_centre_is_the_seeds():
    from adcore.deepsad import load, pretrained_autoencoder, seed_center

    cfg = SADConfig(dataset="sk-wine", ratio_known_outlier=0.05, ae_epochs=1, batch_size=32)
    data = load(cfg)
    assert (data.train_semi == -1).sum() == 3  # 0.05 (71 + k) = k: 3.7 -> 3
    ae, info = pretrained_autoencoder(cfg, data, torch.device("cpu"))
    # the cache key covers the training samples: the same set without the labelled anomalies is another autoencoder
    sub = load(cfg.replace(ratio_known_outlier=0.0))
    assert pretrained_autoencoder(cfg, sub, torch.device("cpu"))[1]["ae_cached"] is False
    assert pretrained_autoencoder(cfg, data, torch.device("cpu"))[1]["ae_cached"] is True
    # the centre: one shuffled pass with the last incomplete batch dropped (74 samples, batches of 32 -> 64)
    net = torch.nn.Linear(13, 2, bias=False)
    x = data.train_x
    assert len(x) == 74
    c = seed_center(net, x, 32, seed=5, device=torch.device("cpu"))
    perm = torch.randperm(74, generator=torch.Generator().manual_seed(5))[:64]
    with torch.no_grad():
        assert torch.allclose(c, net(x[perm]).mean(0))
        assert torch.allclose(seed_center(net, x[:20], 32, 5, torch.device("cpu")), net(x[:20]).mean(0))


def test_seeds_validation_split_is_ten_percent_of_the_test_set():
    import numpy as np
    from adcore.deepsad import _test10

    y = np.r_[np.zeros(900), np.ones(105)].astype(int)
    val = _test10(y, seed=0)
    # n_val = int(100.5) = 100; normals int(100 * 900 / 1005) = 89, anomalies int(100 * 105 / 1005) = 10
    assert len(val) == len(set(val.tolist())) == 99
    assert (y[val] == 0).sum() == 89 and (y[val] == 1).sum() == 10
    assert np.array_equal(val, _test10(y, seed=0)) and not np.array_equal(val, _test10(y, seed=1))


def test_records_name_their_data_source(monkeypatch):
    """A record says where its images came from, so results on the CIFAR-10 JPEG copy are labelled as such."""
    from adcore import deepsad
    from adcore.data import ImageSet
    from adcore.report import dataset_label

    g = torch.Generator().manual_seed(0)
    fake = ImageSet(torch.randint(0, 255, (300, 3, 32, 32), generator=g, dtype=torch.uint8),
                    torch.arange(300) % 10, [str(i) for i in range(10)], "/data/cifar10-jpeg.tar.gz")
    monkeypatch.setattr(deepsad, "cached_images", lambda *a, **k: fake)
    deepsad._data.cache_clear()
    rec = SADConfig(dataset="cifar10", method="kde", n_test=100).run(progress=False)
    deepsad._data.cache_clear()
    assert rec["data_source"] == "/data/cifar10-jpeg.tar.gz"
    assert dataset_label(rec["dataset"], rec["data_source"]) == "CIFAR-10 (JPEG copy)"


def test_store_keys_follow_the_methods_declared_fields():
    """Changing a field that a method declares (READS) changes its key; changing any other optional field does
    not (a run with labelled anomalies, pretraining, the test10 selection, so that every declared field is read)."""
    from adcore.deepsad import READS, _OPTIONAL
    changed = dict(net="mnist_lenet", rep_dim=8, pretrain=False, ae_epochs=3, ae_lr=0.5, ae_milestones=(2,),
                   ae_weight_decay=0.5, epochs=3, lr=0.5, milestones=(2,), weight_decay=0.5, transfer="seed",
                   batch_size=16, eta=2.0, warm_up=3, nu=0.3, hybrid=True, gammas=(0.5,), selection="heldout",
                   kappa=2.0, dgm_epochs=3, dgm_lr=0.5)
    assert set(changed) == set(_OPTIONAL)
    for method, reads in READS.items():
        base = SADConfig(method=method, ratio_known_outlier=0.05, selection="test10")
        for field in (f for f in _OPTIONAL if (method, f) != ("ae", "pretrain")):  # the autoencoder pretrains
            other = base.replace(**{field: changed[field]})
            assert (other.key() != base.key()) == (field in reads), (method, field)


def test_a_super_category_is_the_normal_class(monkeypatch):
    """CLAD's Deep SVDD rival: several normal classes train together and only the other classes are anomalies."""
    import numpy as np
    from adcore import deepsad
    from adcore.config import ConfigError
    from adcore.data import ImageSet

    labels = torch.arange(200) % 10
    fake = ImageSet(labels[:, None, None, None].expand(200, 1, 28, 28).to(torch.uint8) * 20, labels,
                    [str(i) for i in range(10)], "fake")
    monkeypatch.setattr(deepsad, "cached_images", lambda *a, **k: fake)
    deepsad._data.cache_clear()
    try:
        data = deepsad.load(SADConfig(dataset="fmnist", normal_class=(5, 7, 9), method="deepsvdd"))
    finally:
        deepsad._data.cache_clear()
    assert sorted(set(labels[data.train_idx].tolist())) == [5, 7, 9] and len(data.train_x) == 60
    test_classes = (data.test_x[:, 0, 0, 0] * 255 / 20).round().long()  # min-max: x / 255
    assert np.array_equal(data.test_y, (~np.isin(test_classes.numpy(), [5, 7, 9])).astype(int))
    assert data.test_y.sum() == 140
    listed = SADConfig(dataset="fmnist", normal_class=[5, 7, 9])  # as a store's JSON gives it back
    assert listed.normal_class == (5, 7, 9) and listed.key()["normal_class"] == [5, 7, 9]
    with pytest.raises(ConfigError, match="normal_class=10: class 10 out of range"):
        SADConfig(dataset="fmnist", normal_class=10)
