"""adcore.clad: DEC on hand-made numbers, seeded k-means, ODIN, the networks, super-category splits, the GTSRB and
Tiny-ImageNet loaders on tiny generated files, one pipeline run end to end, and the chapter notebook."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from sklearn.metrics import normalized_mutual_info_score
from torch import nn

from adcore import chapters, clad, data, nets, paper, report
from adcore.chapters import clad as chapter
from adcore.config import ConfigError
from adcore.experiment import RunConfig
from adcore.runner import ResultStore
from conftest import bars
from test_data import write_idx

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """These tests train tiny networks: one intra-op thread is faster, and on a shared machine it avoids the
    OpenMP barrier stalls that make two threads tens of times slower when the other core is busy."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# ------------------------------------------------------------------------------------------------------- DEC


def test_soft_assign_student_t():
    q = clad.soft_assign(torch.tensor([[0.0, 0.0]]), torch.tensor([[0.0, 0.0], [1.0, 0.0]]))
    assert torch.allclose(q, torch.tensor([[2 / 3, 1 / 3]]))  # (1 + d²)^-1 with alpha = 1, rows normalized
    q = clad.soft_assign(torch.tensor([[0.0, 0.0]]), torch.tensor([[0.0, 0.0], [1.0, 0.0]]), alpha=3.0)
    w = (1 + 1 / 3) ** -2
    assert torch.allclose(q, torch.tensor([[1 / (1 + w), w / (1 + w)]]))


def test_target_distribution_and_kl_on_hand_made_q():
    q = torch.tensor([[0.5, 0.5], [0.75, 0.25]], dtype=torch.float64)
    # f = column sums (1.25, 0.75); q²/f row-normalized
    p = clad.target_distribution(q)
    assert torch.allclose(p, torch.tensor([[3 / 8, 5 / 8], [27 / 32, 5 / 32]], dtype=torch.float64))
    kl_rows = [3 / 8 * math.log(3 / 4) + 5 / 8 * math.log(5 / 4),
               27 / 32 * math.log(9 / 8) + 5 / 32 * math.log(5 / 8)]
    assert float(clad.kl_div(p, q)) == pytest.approx(sum(kl_rows) / 2, rel=1e-12)
    assert float(clad.kl_div(q, q)) == pytest.approx(0.0, abs=1e-15)
    # zero targets contribute nothing (0 log 0 = 0)
    one_hot = torch.tensor([[1.0, 0.0]], dtype=torch.float64)
    assert float(clad.kl_div(one_hot, torch.tensor([[0.8, 0.2]], dtype=torch.float64))) == pytest.approx(-math.log(0.8))


def blobs(n_per: int = 60, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = np.array([[0, 0], [10, 0], [0, 10], [10, 10]], float)
    x = np.concatenate([c + rng.normal(0, 0.5, (n_per, 2)) for c in centres])
    return x.astype(np.float32), np.repeat(np.arange(4), n_per)


def test_kmeans_init_seeded_and_deterministic():
    z, _ = blobs()
    torch.manual_seed(1)
    np.random.seed(1)
    a = clad.kmeans_init(z, 4, seed=3)
    torch.manual_seed(2)
    np.random.seed(2)
    b = clad.kmeans_init(torch.from_numpy(z), 4, seed=3)
    assert np.array_equal(a, b) and a.dtype == np.float32 and a.shape == (4, 2)
    found = sorted(map(tuple, np.abs(a.round()).tolist()))
    assert found == [(0, 0), (0, 10), (10, 0), (10, 10)]
    c = clad.kmeans_init(z, 3, seed=0, n_init=1)
    d = clad.kmeans_init(z, 3, seed=1, n_init=1)
    assert c.shape == (3, 2) and d.shape == (3, 2)


def test_dec_recovers_separated_clusters_and_stops():
    z, y = blobs()
    x = torch.from_numpy(((z + 2) * 10).round().clip(0, 255).astype(np.uint8)).view(-1, 1, 1, 2)
    res = clad.dec(nn.Flatten(), x, 4, seed=0, tol=0.001, max_rounds=10, device="cpu")
    assert normalized_mutual_info_score(y, res.labels) == pytest.approx(1.0)
    assert res.converged and res.changed[-1] < 0.001 and 1 <= res.rounds <= 10
    assert res.centres.shape == (4, 2) and len(res.losses) == res.rounds
    again = clad.dec(nn.Flatten(), x, 4, seed=0, tol=0.001, max_rounds=10, device="cpu")
    assert np.array_equal(again.labels, res.labels) and np.allclose(again.centres, res.centres)


def test_dec_target_is_refreshed_per_mini_batch():
    z, _ = blobs(10)
    x = torch.from_numpy(((z + 2) * 10).round().clip(0, 255).astype(np.uint8)).view(-1, 1, 1, 2)
    res = clad.dec(nn.Flatten(), x, 4, seed=0, tol=-1.0, max_rounds=1, batch_size=7, device="cpu")
    # by hand: the same k-means start, then one pass in the data's order, each batch's P from that batch's q
    centres = torch.nn.Parameter(torch.as_tensor(clad.kmeans_init(x.flatten(1).float() / 255, 4, 0)))
    opt = torch.optim.SGD([centres], lr=0.01, momentum=0.9)
    xf = x.flatten(1).float() / 255
    for idx in torch.arange(len(x)).split(7):
        q = clad.soft_assign(xf[idx], centres)
        loss = clad.kl_div(clad.target_distribution(q).detach(), q)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert np.allclose(res.centres, centres.detach().numpy(), atol=1e-6)
    # P from the whole data set (refreshed once per pass) would move the centres elsewhere
    centres2 = torch.nn.Parameter(torch.as_tensor(clad.kmeans_init(xf, 4, 0)))
    opt2 = torch.optim.SGD([centres2], lr=0.01, momentum=0.9)
    p_all = clad.target_distribution(clad.soft_assign(xf, centres2)).detach()
    for idx in torch.arange(len(x)).split(7):
        loss = clad.kl_div(p_all[idx], clad.soft_assign(xf[idx], centres2))
        opt2.zero_grad()
        loss.backward()
        opt2.step()
    assert not np.allclose(res.centres, centres2.detach().numpy(), atol=1e-6)


def test_dec_max_rounds_and_encoder_finetuning():
    z, _ = blobs(20)
    x = torch.from_numpy(((z + 2) * 10).round().clip(0, 255).astype(np.uint8)).view(-1, 1, 1, 2)
    torch.manual_seed(0)
    enc = nn.Sequential(nn.Flatten(), nn.Linear(2, 3))
    before = enc[1].weight.detach().clone()
    res = clad.dec(enc, x, 4, seed=0, tol=-1.0, max_rounds=2, device="cpu")  # tol < 0: never converges
    assert res.rounds == 2 and not res.converged and len(res.changed) == 2
    assert not torch.equal(enc[1].weight, before)  # the encoder is fine-tuned with the centres
    frozen = nn.Sequential(nn.Flatten(), nn.Linear(2, 3))
    w = frozen[1].weight.detach().clone()
    clad.dec(frozen, x, 4, seed=0, max_rounds=2, finetune_encoder=False, device="cpu")
    assert torch.equal(frozen[1].weight, w)


# ------------------------------------------------------------------------------------------------------ ODIN


def small_net(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 28 * 28, 5)).eval()


def test_odin_without_temperature_and_perturbation_is_max_softmax():
    net, x = small_net(), bars(40, False, 1)
    plain = F.softmax(net(x.float() / 255), 1).amax(1).detach().numpy()
    got = clad.odin_normality(net, x, temperature=1.0, eps=0.0, device="cpu", batch_size=16)
    assert got.shape == (40,) and np.allclose(got, plain, atol=1e-6)


def test_odin_step_raises_the_max_softmax():
    net, x = small_net(1), bars(32, True, 2).float() / 255
    for temperature in (1.0, 1000.0):
        eps = 1e-3
        x_t = clad.odin_perturb(net, x, temperature, eps)
        logits = net(x) / temperature
        y_hat = logits.argmax(1)
        x_req = x.clone().requires_grad_(True)
        log_s = F.log_softmax(net(x_req) / temperature, 1)[torch.arange(len(x)), y_hat].sum()
        (grad,) = torch.autograd.grad(log_s, x_req)
        # x̃ = x − ε sign(−∇ log S_ŷ) = x + ε sign(∇ log S_ŷ)
        assert torch.allclose(x_t - x, eps * grad.sign(), atol=1e-7)
        s_before = F.softmax(logits, 1)[torch.arange(len(x)), y_hat]
        s_after = F.softmax(net(x_t) / temperature, 1)[torch.arange(len(x)), y_hat]
        assert bool((s_after > s_before).all())
    scores = clad.odin_normality(net, (x * 255).to(torch.uint8), 1000.0, 1e-3, device="cpu")
    assert np.all((scores > 1 / 5) & (scores < 1 / 5 + 0.01))  # T = 1000: close to uniform, but ranked


# -------------------------------------------------------------------------------------------------- networks


def test_resnet18_small_stem_shapes_and_size():
    net = nets.ResNet18(10, 3, 64, small_input=True)
    assert sum(p.numel() for p in net.parameters()) == 11_173_962  # the standard CIFAR ResNet-18
    assert net(torch.zeros(2, 3, 32, 32)).shape == (2, 10)
    grey = nets.ResNet18(7, 1, 8, small_input=True)
    assert grey(torch.zeros(3, 1, 28, 28)).shape == (3, 7)
    # the small stem keeps full resolution into the first stage; ImageNet's stem divides it by 4
    assert nets.ResNet18(10, 1, 8, small_input=True).features[:3](torch.zeros(1, 1, 28, 28)).shape[-1] == 28
    assert nets.ResNet18(10, 1, 8).features[:4](torch.zeros(1, 1, 28, 28)).shape[-1] == 7


@pytest.mark.parametrize("c,size", [(1, 28), (3, 32)])
def test_autoencoder_shapes_mean_code_and_sampled_code(c, size):
    ae = nets.ConvAutoencoder(c, size, hidden=6)
    assert ae.large == (c == 3)  # the seed: cvae for grey images, cvae_large for colour
    x = torch.randn(4, c, size, size)
    assert ae.encode(x).shape == (4, 6)
    ae.eval()
    with torch.no_grad():
        assert ae(x).shape == x.shape and torch.equal(ae(x), ae(x))
        assert torch.equal(ae.encoder(x), ae.encode(x))  # eval: the mean code μ
        assert float(ae(x).min()) < 0  # linear output: standardised targets are negative on the background
    ae.train()
    torch.manual_seed(0)
    assert not torch.equal(ae.encoder(x), ae.encoder(x))  # training: dropout and z = μ + σ ε


def test_autoencoder_is_the_seeds_cvae():
    ae = nets.ConvAutoencoder(1, 28, hidden=10)
    kinds = [type(m).__name__ for m in ae.encoder.net]
    assert kinds == ["Conv2d", "ELU", "MaxPool2d", "Conv2d", "ELU", "MaxPool2d", "Conv2d", "ELU", "Flatten",
                     "Linear", "ReLU", "Linear"]
    assert [m.out_channels for m in ae.encoder.net if isinstance(m, nn.Conv2d)] == [4, 8, 16]
    assert [m.out_features for m in ae.encoder.net if isinstance(m, nn.Linear)] == [512, 20]  # μ and σ
    # by hand: convs 40 + 296 + 1168, dense 16*7*7*512 + 512 = 401,920, head 512*20 + 20 = 10,260
    assert sum(p.numel() for p in ae.encoder.parameters()) == 40 + 296 + 1168 + 401_920 + 10_260
    assert ae.encoder.dropout.p == 0.1
    large = nets.ConvAutoencoder(3, 32, hidden=100)
    convs = [m.out_channels for m in large.encoder.net if isinstance(m, nn.Conv2d)]
    assert convs == [48, 48, 96, 96, 192, 192] and sum(isinstance(m, nn.BatchNorm2d) for m in large.encoder.net) == 6
    with pytest.raises(ValueError, match="divisible by 4"):
        nets.ConvAutoencoder(1, 30)


def test_code_sigma_is_learned():
    torch.manual_seed(0)
    ae = nets.ConvAutoencoder(1, 28, hidden=3, input_dropout=0.0).train()
    x = torch.randn(8, 1, 28, 28)
    head = ae.encoder.net[-1]
    with torch.no_grad():  # σ = 0: the sampled code is μ; σ = 1 for unit 0 only: the code moves there only
        head.weight[3:].zero_()
        head.bias[3:].zero_()
        assert torch.allclose(ae.encoder(x), ae.encode(x))
        head.bias[3] = 1.0
        diff = ae.encoder(x) - ae.encode(x)
        assert diff[:, 0].abs().min() > 0 and torch.all(diff[:, 1:] == 0)
    ae(x).pow(2).mean().backward()
    assert head.weight.grad[3:].abs().sum() > 0  # the σ half of the head gets gradients


def test_normal_stats_average_the_per_class_values():
    x = torch.zeros(6, 1, 2, 2, dtype=torch.uint8)
    x[:2] = 255  # class 0: all white (mean 1, std 0); class 1, four images: half 0, half 255 (mean 0.5)
    x[2:, :, 0] = 255
    mean, std = clad.normal_stats(x, np.array([0, 0, 1, 1, 1, 1]))
    s1 = float(torch.tensor([1.0, 1, 0, 0] * 4).std())
    assert mean == pytest.approx((0.75,)) and std == pytest.approx((s1 / 2,), abs=1e-6)  # not size-weighted
    aug = clad.standardizer(mean, std)
    assert torch.allclose(aug(x[:1], train=False), torch.full((1, 1, 2, 2), 0.25 / std[0]))
    with pytest.raises(ValueError, match="std must be positive"):
        clad.standardizer((0.5,), (0.0,))
    with pytest.raises(ValueError, match="one class per image"):
        clad.normal_stats(x, np.array([0, 1]))


def test_odin_step_in_the_seeds_units():
    assert clad.ODIN_SCALE == pytest.approx(161.392, abs=1e-3)  # 50 / (79 / 255)
    assert clad.odin_pixel_step(1e-4, (0.3,)) == pytest.approx((1e-4 * 161.392 * 0.3,), rel=1e-4)
    net, x = small_net(2), bars(8, True, 4)
    aug = clad.standardizer((0.2,), (0.4,))
    ours = clad.odin_normality(net, x, 1000.0, 1e-4, aug, device="cpu")  # step 1e-4 * 161 standardised units
    manual = clad.odin_perturb(net, aug(x, train=False), 1000.0, 1e-4 * clad.ODIN_SCALE)
    expect = F.softmax(net(manual).double() / 1000.0, 1).amax(1).detach().numpy()
    assert np.allclose(ours, expect)
    plain = clad.odin_normality(net, x, 1000.0, 1e-4, aug, device="cpu", scale=1.0)
    assert not np.allclose(ours, plain)


def test_train_autoencoder_lowers_the_loss():
    x = bars(64, False, 3)
    ae = nets.ConvAutoencoder(1, 28, 4)
    aug = clad.standardizer(*clad.normal_stats(x, np.zeros(len(x))))
    log = clad.train_autoencoder(ae, x, epochs=4, batch_size=16, lr=3e-3, augment=aug, device="cpu", seed=0)
    assert len(log.losses) == 4 and log.losses[-1] < log.losses[0]


# -------------------------------------------------------------------------------------------- super-categories


def test_super_category_class_sets():
    sc = data.SUPER_CATEGORIES
    assert sc["mnist"] == {"CUR": (0, 3, 8), "STR": (1, 4, 7), "MIX": (2, 5, 6, 9)}
    assert sc["cifar10"] == {"THG": (0, 1, 8, 9), "LIV": (2, 3, 4, 5, 6, 7)}
    assert sc["fmnist"] == {"TOP": (0, 2, 4, 6), "SHOE": (5, 7, 9), "MIX": (1, 3, 8)}
    g = sc["gtsrb"]
    assert g["SPDL"] == (0, 1, 2, 3, 4, 5, 7, 8) and g["INST"] == (9, 10, 15, 16)
    assert g["WARN"] == (11, *range(18, 32)) and g["DIRC"] == tuple(range(33, 41))
    assert g["SPEC"] == (12, 13, 14, 17) and g["REGN"] == (6, 32, 41, 42)
    for ds, groups in sc.items():  # each dataset's groups partition its classes
        members = [c for cls in groups.values() for c in cls]
        assert sorted(members) == list(range(data.N_CLASSES[ds])), ds
    assert data.super_category("mnist", "CUR") == (0, 3, 8)
    with pytest.raises(ValueError, match="unknown mnist super-category"):
        data.super_category("mnist", "THG")
    with pytest.raises(ValueError, match="no super-categories"):
        data.super_category("cifar100", "x")


def test_paper_clad_numbers():
    t = paper.clad_table()
    assert t.loc[("mnist", "CUR"), "CLAD"] == 94.0 and t.loc[("mnist", "MIX"), "OC-SVM"] == 54.8
    assert t.loc[("cifar10", "LIV"), "Deep SVDD"] == 52.7 and t.shape == (5, 3)
    assert set(t.index) <= {(ds, g) for ds, gs in data.SUPER_CATEGORIES.items() for g in gs}


# ------------------------------------------------------------------------------------ loaders on tiny files


@pytest.fixture
def isolated(monkeypatch, tmp_path):
    monkeypatch.setenv("ADCORE_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("ADCORE_DATA", raising=False)

    def offline(*args):
        raise RuntimeError("offline in tests")

    monkeypatch.setattr(data, "_torchvision_download", offline)
    return tmp_path


def _img(path: Path, size: tuple[int, int], value: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((size[1], size[0], 3), value, np.uint8), "RGB").save(path)


def test_gtsrb_torchvision_layout_resized(isolated):
    base = isolated / "gtsrb"
    for c in range(43):  # one training image per class, sizes vary as in GTSRB
        _img(base / "GTSRB" / "Training" / f"{c:05d}" / f"00000_{c:05d}.ppm", (15 + c, 20 + c % 5), 5 * c)
    rows = ["Filename;Width;Height;Roi.X1;Roi.Y1;Roi.X2;Roi.Y2;ClassId"]
    for i, c in enumerate([42, 0, 7]):
        _img(base / "GTSRB" / "Final_Test" / "Images" / f"{i:05d}.ppm", (40, 33), 5 * c)
        rows.append(f"{i:05d}.ppm;40;33;5;5;35;28;{c}")
    (base / "GT-final_test.csv").write_text("\n".join(rows) + "\n")
    train = data.load_images("gtsrb", "train", root=isolated, download=False)
    assert train.x.shape == (43, 3, 32, 32) and train.y.tolist() == list(range(43))
    assert train.classes[:2] == ["00000", "00001"]
    assert int(train.x[10].float().mean().round()) == 50  # constant images stay constant when resized
    test = data.load_images("gtsrb", "test", root=isolated, download=False)
    assert test.x.shape == (3, 3, 32, 32) and sorted(test.y.tolist()) == [0, 7, 42]
    assert {int(v) for v in test.x[test.y == 42].unique()} == {210}
    split = data.ad_split("gtsrb", data.super_category("gtsrb", "REGN"), root=isolated, download=False)
    assert len(split.train_x) == 4 and split.test_y.tolist() == [1, 1, 0]  # classes 0, 7 anomalous, 42 normal


def test_gtsrb_missing_and_bad_csv(isolated):
    with pytest.raises(data.DataNotFoundError, match="GT-final_test.csv"):
        data.load_images("gtsrb", "test", root=isolated, download=False)
    base = isolated / "g" / "GTSRB"
    _img(base / "Final_Test" / "Images" / "00000.ppm", (20, 20), 1)
    (isolated / "g" / "GT-final_test.csv").write_text("Filename;ClassId\n00001.ppm;3\n")
    with pytest.raises(ValueError, match="missing"):
        data.load_images("gtsrb", "test", root=isolated / "g", download=False)


def test_tiny_imagenet_layout(isolated):
    root = isolated / "tiny-imagenet-200"
    wnids = [f"n{i:08d}" for i in range(200)][::-1]  # file order is not label order
    root.mkdir(parents=True)
    (root / "wnids.txt").write_text("\n".join(wnids) + "\n")
    for i, w in enumerate(wnids):
        _img(root / "train" / w / "images" / f"{w}_0.JPEG", (8, 8), i % 200)
    ann = []
    for j, w in enumerate(["n00000003", "n00000199"]):
        _img(root / "val" / "images" / f"val_{j}.JPEG", (8, 8), 100)
        ann.append(f"val_{j}.JPEG\t{w}\t0\t0\t8\t8")
    (root / "val" / "val_annotations.txt").write_text("\n".join(ann) + "\n")
    train = data.load_images("tiny-imagenet", "train", root=isolated, download=False)
    assert train.x.shape == (200, 3, 8, 8) and train.classes == sorted(wnids) and train.y.tolist() == list(range(200))
    test = data.load_images("tiny-imagenet", "test", root=isolated, download=False)
    assert test.y.tolist() == [3, 199] and test.x.shape == (2, 3, 8, 8)
    with pytest.raises(data.DataNotFoundError, match="no Tiny-ImageNet downloader|tiny-imagenet-200.zip"):
        data.load_images("tiny-imagenet", "train", root=isolated / "nowhere")


# ---------------------------------------------------------------------------------- the pipeline end to end


@pytest.fixture(scope="module")
def stripes(tmp_path_factory):
    """MNIST-format data: classes 0 and 1 horizontal / vertical bars (the normal super-category), 2 noise."""
    root = tmp_path_factory.mktemp("stripes")
    for prefix, n, seed in (("train", 24, 1), ("t10k", 12, 2)):
        g = torch.Generator().manual_seed(seed)
        noise = torch.randint(0, 256, (n, 28, 28), generator=g, dtype=torch.uint8)
        x = torch.cat([bars(n, False, seed)[:, 0], bars(n, True, seed + 5)[:, 0], noise]).numpy()
        write_idx(root / f"{prefix}-images-idx3-ubyte.gz", x)
        write_idx(root / f"{prefix}-labels-idx1-ubyte.gz", np.repeat([0, 1, 2], n))
    return str(root)


def _tiny(root: str, **kw) -> clad.CLADConfig:
    base = dict(dataset="mnist", normal_class=(0, 1), ae_epochs=1, ae_batch_size=16, k=2, dec_max_rounds=2,
                clf_epochs=1, clf_lr=1e-3, clf_batch_size=16, clf_width=4, n_view=20, data_root=root)
    return clad.CLADConfig(**{**base, **kw})


def test_clad_run_record(stripes):
    cfg = _tiny(stripes)
    assert cfg.hidden == 10 and cfg.eps == 1e-4  # the seed's grey-image defaults, filled in on construction
    assert clad.CLADConfig(dataset="cifar10").hidden == 200 and clad.CLADConfig(dataset="cifar10").eps == 0.01
    rec = cfg.run(device="cpu", progress=False)
    json.dumps(rec)
    assert 0 <= rec["auc"] <= 1 and 0 <= rec["nmi"] <= 1 and rec["n_train"] == 48 and rec["n_test"] == 36
    assert sum(rec["cluster_sizes"]) == 48 and len(rec["contingency"]) == 2
    assert np.asarray(rec["contingency"]).sum() == 48 and len(rec["view"]["x"]) == 20
    for k in ("ae_time", "dec_time", "clf_time", "score_time", "wall_time"):
        assert rec[k] > 0
    assert rec["model"] == "clad" and rec["normal_class"] == [0, 1]
    again = cfg.run(device="cpu", progress=False)
    assert again["auc"] == rec["auc"] and again["cluster_sizes"] == rec["cluster_sizes"]


def test_nmi_report():
    true = np.repeat([0, 1, 2], 30)
    r = clad.nmi_report(true, true + 5)
    assert r["nmi"] == pytest.approx(1.0) and r["purity"] == 1.0 and r["nmi_chance"] < 0.2


def test_ocsvm_and_the_chapter_grid(stripes, tmp_path):
    rec = clad.OCSVMConfig(dataset="mnist", normal_class=(0, 1), data_root=stripes).run()
    assert rec["auc"] > 0.9 and rec["n_train"] == 48 and rec["gamma_value"] > 0  # noise is far from bars
    s = chapter.PROFILES["smoke"].replace(dataset="mnist", groups=None, n_train=None, n_test=None)
    runs = chapter.runs(s)
    assert len(runs) == 3 * 4 and {lab["group"] for lab, _ in runs} == {"CUR", "STR", "MIX"}
    by_method = {lab["method"]: cfg for lab, cfg in runs if lab["group"] == "CUR"}
    assert isinstance(by_method["CLAD"], clad.CLADConfig) and by_method["CLAD"].normal_class == (0, 3, 8)
    svdd = by_method["Deep SVDD"]  # the ICML 2018 method the paper quotes: pretrained, GCN, on the super-category
    assert svdd.method == "deepsvdd" and svdd.pretrain and svdd.preprocess == "gcn" and svdd.normal_class == (0, 3, 8)
    assert by_method["HSC + OE"].objective == "hsc" and by_method["HSC + OE"].oe == "natural"
    assert by_method["HSC + OE"].normal_class == (0, 3, 8) and isinstance(by_method["OC-SVM"], clad.OCSVMConfig)
    # a mixed grid through the store: every record once, a second call trains nothing
    mixed = [({"dataset": "mnist", "group": "bars", "method": "CLAD"}, _tiny(stripes)),
             ({"dataset": "mnist", "group": "bars", "method": "OC-SVM"},
              clad.OCSVMConfig(dataset="mnist", normal_class=(0, 1), data_root=stripes)),
             ({"dataset": "mnist", "group": "bars", "method": "Deep SVDD"},
              RunConfig(dataset="mnist", normal_class=(0, 1), objective="deepsvdd", oe=None, epochs=1,
                        data_root=stripes))]
    df = report.run_missing(mixed, tmp_path / "store", device="cpu", progress=False)
    assert list(df["method"]) == ["CLAD", "OC-SVM", "Deep SVDD"] and len(ResultStore(tmp_path / "store")) == 3
    assert df["auc"].between(0, 100).all()
    again = report.run_missing(mixed, tmp_path / "store", device="cpu", progress=False)
    assert list(again["finished"]) == list(df["finished"])
    assert df.attrs == {"ran": 3, "stored": 0} and again.attrs == {"ran": 0, "stored": 3}
    assert list(chapter.auc_table(df).columns) == ["CLAD", "Deep SVDD", "OC-SVM"]
    assert len(chapter.with_paper(df)) == 0  # no published numbers for this toy group: no rows of "—"
    note = chapter.paper_note(df)
    assert note[0].startswith("**No published number**: MNIST bars") and any("step scale" in n for n in note)
    nmi = chapter.nmi_table(df)
    assert nmi.shape == (1, 9) and not nmi.isna().any().any() and nmi["round cap"].iloc[0] == "2"
    card = chapter.card(s, df, of=mixed)
    assert card.loc["runs", "value"].startswith("3 (3 trained now")
    assert "width 4 (reduced" in card.loc["MNIST", "value"] and "all training / all test" in card.loc["MNIST", "value"]
    assert ".0 " not in card.loc["MNIST", "value"] and "1 epochs" in card.loc["MNIST", "value"]


# ----------------------------------------------------------------------------------------------- the notebook


def test_notebook_runs_under_smoke(tmp_path, monkeypatch):
    pm = pytest.importorskip("papermill")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # the kernel process: see one_thread (about 25 s on 2 cores)
    if not (data.FMNIST_SYSTEM_DIR / "train-images-idx3-ubyte.gz").is_file():
        pytest.skip("no system Fashion-MNIST")
    out = tmp_path / "clad.ipynb"
    pm.execute_notebook(str(ROOT / "notebooks" / "clad.ipynb"), str(out), cwd=str(ROOT), kernel_name="python3",
                        parameters={"profile": "smoke", "results_dir": str(tmp_path / "results")},
                        progress_bar=False)
    nb = json.loads(out.read_text())
    glued = {o["metadata"]["scrapbook"]["name"] for c in nb["cells"] if c["cell_type"] == "code"
             for o in c.get("outputs", []) if "scrapbook" in o.get("metadata", {})}
    source = "".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")
    import re
    wanted = set(re.findall(r"\{glue:text\}`([^`]+)`", source))
    assert wanted and wanted <= glued, wanted - glued
    assert {"card", "claims"} <= glued  # the intro page collects every chapter's "claims"
    assert len(ResultStore(tmp_path / "results")) == 8
    for c in nb["cells"]:  # no NaN in any displayed table
        for o in c.get("outputs", []):
            assert "NaN" not in "".join(o.get("data", {}).get("text/html", "")), c["source"]


def test_notebook_cells_tagged():
    nb = json.loads((ROOT / "notebooks" / "clad.ipynb").read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert code[0]["metadata"]["tags"] == ["parameters"]  # stays visible
    hide = {"remove-input", "hide-input", "remove-cell"}
    assert all(hide & set(c["metadata"].get("tags", [])) for c in code[1:])


def _frame(rows):
    """Hand-made chapter records: (group, method, auc %, seed) on Fashion-MNIST TOP (4 of 10 classes), 1000 tests."""
    import pandas as pd

    return pd.DataFrame([{"dataset": "fmnist", "data": "Fashion-MNIST", "group": g, "method": m, "auc": a, "seed": sd,
                          "n_test": 1000, "normal_class": (0, 2, 4, 6), "nmi": 0.5, "nmi_chance": 0.01}
                         for g, m, a, sd in rows])


def test_auc_se_hanley_mcneil_by_hand():
    assert chapter.auc_se(0.5, 1, 1) == pytest.approx(0.5)
    # A = 0.8, 10 and 10: Q1 = 2/3, Q2 = 1.28/1.8; var = (0.16 + 9 (Q1 - 0.64) + 9 (Q2 - 0.64)) / 100 = 0.0104
    assert chapter.auc_se(0.8, 10, 10) == pytest.approx(math.sqrt(0.0104), rel=1e-6)
    assert math.isnan(chapter.auc_se(0.8, 0, 10))


def test_claims_on_hand_made_frames():
    big = _frame([(g, m, a, 0) for g in ("TOP", "SHOE") for m, a in
                  (("CLAD", 90.0), ("Deep SVDD", 70.0), ("OC-SVM", 75.0), ("HSC + OE", 95.0))])
    mg = chapter.margins(big, "CLAD", ["Deep SVDD", "OC-SVM"])
    assert list(mg["rival"]) == ["OC-SVM", "OC-SVM"] and list(mg["margin"]) == [15.0, 15.0]
    # 400 normal, 600 anomalous test images; one seed: u² = SE(0.90)² + SE(0.75)² (no seed spread)
    u = 100 * math.hypot(chapter.auc_se(0.90, 600, 400), chapter.auc_se(0.75, 600, 400))
    assert mg["u"].iloc[0] == pytest.approx(u)
    t = chapter.claims(big)
    assert list(t.columns) == ["claim", "where", "paper", "this build", "rule", "verdict"]
    # HSC + OE (95) is ahead of CLAD (90) on both groups
    assert list(t["verdict"]) == ["reproduced", "reproduced", "not reproduced", "reproduced"]
    assert "2 u" in t["rule"].iloc[0] and "by 9.9–22.9 points over Deep SVDD" in t["paper"].iloc[0]
    assert t["claim"].iloc[2].startswith("ours") and t["claim"].iloc[3].startswith("ours")
    # a margin within the noise on one group: partly; behind everywhere: not reproduced
    mixed = _frame([("TOP", "CLAD", 90.0, 0), ("TOP", "OC-SVM", 75.0, 0), ("TOP", "Deep SVDD", 70.0, 0),
                    ("SHOE", "CLAD", 80.5, 0), ("SHOE", "OC-SVM", 80.0, 0), ("SHOE", "Deep SVDD", 60.0, 0)])
    assert chapter.claims(mixed)["verdict"].iloc[0] == "partly"
    behind = _frame([("TOP", "CLAD", 60.0, 0), ("TOP", "Deep SVDD", 80.0, 0)])
    assert chapter.claims(behind)["verdict"].iloc[:2].tolist() == ["not reproduced", "not reproduced"]
    # seed spread enters u: two seeds 10 points apart make the same 15-point margin noise
    noisy = _frame([("TOP", m, a, sd) for m, a0 in (("CLAD", 90.0), ("OC-SVM", 75.0)) for sd, a in
                    ((0, a0 - 10), (1, a0 + 10))])
    assert chapter.margins(noisy, "CLAD", ["OC-SVM"])["u"].iloc[0] > 10
    assert chapter.claims(noisy)["verdict"].iloc[0] == "not reproduced"
    none = _frame([("TOP", "HSC + OE", 90.0, 0)])
    assert chapter.claims(none)["verdict"].iloc[0] == "not testable (CLAD or its rivals not run in this build)"
    weak = big.assign(nmi=[0.05] * 4 + [0.5] * 4)
    assert chapter.claims(weak)["verdict"].iloc[3] == "partly"


def test_with_paper_only_matching_cells_and_no_nan():
    df = _frame([("CUR", "CLAD", 40.0, 0), ("CUR", "HSC + OE", 90.0, 0), ("TOP", "CLAD", 70.0, 0)])
    df.loc[:1, "dataset"], df.loc[:1, "data"] = "mnist", "MNIST"
    df["auc_seed"] = [60.0, float("nan"), 70.0]
    t = chapter.with_paper(df)
    assert list(t.index) == [("MNIST", "CUR", "CLAD")] and not t.isna().any().any()
    row = t.iloc[0]
    assert (row["ours"], row["ours, seed's flip"], row["paper"], row["ours − paper"]) == (40.0, 60.0, 94.0, -54.0)
    note = " ".join(chapter.paper_note(df))
    assert "No published number**: Fashion-MNIST TOP" in note and "Not in the paper's table**: HSC + OE" in note


def test_profiles_paper_uses_the_seed_settings():
    runs = chapters.open("clad", "paper").runs
    assert len(runs) == (3 + 3 + 2) * 5 * 4  # groups (MNIST, Fashion-MNIST, CIFAR-10) x seeds x methods
    cl = {(lab["dataset"], lab["group"]): cfg for lab, cfg in runs if lab["method"] == "CLAD" and cfg.seed == 0}
    for (ds, group), cfg in cl.items():
        assert cfg.normal_class == data.super_category(ds, group)
        assert (cfg.k, cfg.clf_epochs, cfg.clf_lr, cfg.clf_width, cfg.temperature) == (10, 100, 1e-4, 64, 1000.0)
        hidden = (100 if group == "LIV" else 200) if ds == "cifar10" else 10  # run_cifar10.sh: LIV code size 100
        assert (cfg.hidden, cfg.eps) == (hidden, 0.01 if ds == "cifar10" else 1e-4)
        assert cfg.n_train is None and cfg.dec_tol == 0.001
        # run_*.sh: --cluster_model_pretrain_epochs 100 --cluster_model_train_epochs 100; config.py: batch 512
        assert (cfg.ae_epochs, cfg.dec_max_rounds, cfg.ae_batch_size, cfg.dec_batch_size) == (100, 100, 512, 512)
    svdd = [cfg for lab, cfg in runs if lab["method"] == "Deep SVDD" and lab["dataset"] == "cifar10"]
    # the Deep SVDD seed's CIFAR-10 schedule (as the Rethinking chapter's paper profile runs it)
    assert {(c.ae_epochs, c.ae_milestones, c.epochs, c.milestones, c.batch_size) for c in svdd} == {
        (350, (250,), 150, (50,), 200)}
    for p in ("smoke", "laptop"):
        s = chapters.open("clad", p).settings
        (base,) = s.baselines
        assert base.dataset == "fmnist" and len(chapter.runs(s)) == len(chapter.groups_of("fmnist", s.groups)) * 4


def test_normal_class_given_alone_or_wrong():
    """One class alone is a group of one; a value that names no classes fails with the value in the message."""
    from adcore.clad import CLADConfig, OCSVMConfig
    from adcore.config import ConfigError
    assert CLADConfig(normal_class=3).normal_class == (3,)
    for bad in ("x", None, (1.5, 2)):
        for cls in (CLADConfig, OCSVMConfig):
            with pytest.raises(ConfigError, match="normal_class="):
                cls(normal_class=bad)


def test_deep_svdd_needs_a_schedule_for_every_dataset():
    s = chapters.open("clad", "smoke").settings
    with pytest.raises(ConfigError, match="svdd has no Deep SVDD schedule for mnist"):
        s.replace(baselines=(s.baselines[0].replace(dataset="mnist"),))
    assert s.replace(methods=("CLAD",), baselines=(s.baselines[0].replace(dataset="mnist"),)).methods == ("CLAD",)
    # the paper profile: the Deep SVDD seed's grey-image schedule on MNIST / Fashion-MNIST, its CIFAR-10 one there
    p = {v.dataset: (v.ae_epochs, v.ae_milestones, v.ae_weight_decay) for v in chapters.open("clad", "paper").settings.svdd}
    assert p == {"mnist": (150, (50,), 5e-4), "fmnist": (150, (50,), 5e-4), "cifar10": (350, (250,), 5e-7)}
