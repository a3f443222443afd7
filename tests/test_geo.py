"""GEO: the transformations on hand-made images, the expanded training set's order, the Dirichlet fit against
known parameters, and detection on toy data whose normal images have an orientation and whose anomalies do not."""
import numpy as np
import pytest
import torch

from adcore import geo
from sklearn.metrics import roc_auc_score as auc
from adcore.nets import make_net
from adcore.train import forward_all, train


def test_the_authors_lists_72_and_8_in_their_order():
    t72, t8 = geo.transforms(72), geo.transforms(8)
    assert len(t72) == 72 and len(set(t72)) == 72 and len(t8) == 8
    assert t72[:5] == [(False, 0, 0, 0), (False, 0, 0, 1), (False, 0, 0, 2), (False, 0, 0, 3), (False, 0, -8, 0)]
    assert t72[-1] == (True, 8, 8, 3) and t8 == [t for t in t72 if t[1] == t[2] == 0]
    assert geo.transforms(72, side=28)[4] == (False, 0, -7, 0)
    with pytest.raises(ValueError, match="GEO transformations: 12; choose 72"):
        geo.transforms(12)


def test_flip_mirrored_shift_and_quarter_turn_by_hand():
    x = torch.arange(16).view(1, 1, 4, 4)  # rows 0 1 2 3 / 4 5 6 7 / ...
    assert geo.apply(x, (True, 0, 0, 0))[0, 0, 0].tolist() == [3, 2, 1, 0]
    # shift right by 1 along x: column 0 mirrors the edge pixel (0 0 1 2), the Keras 'reflect' fill
    assert geo.apply(x, (False, 1, 0, 0))[0, 0, 0].tolist() == [0, 0, 1, 2]
    assert geo.apply(x, (False, -2, 0, 0))[0, 0, 0].tolist() == [2, 3, 3, 2]
    assert geo.apply(x, (False, 0, 1, 0))[0, 0, :, 0].tolist() == [0, 0, 4, 8]
    # a quarter turn counter-clockwise, as np.rot90: the first row becomes the last column read upwards
    assert torch.equal(geo.apply(x, (False, 0, 0, 1))[0, 0], torch.from_numpy(np.rot90(x[0, 0].numpy()).copy()))
    # composition order: flip, then shift, then rotate
    want = torch.rot90(geo.apply(geo.apply(x, (True, 0, 0, 0)), (False, 1, 1, 0)), 3, (-2, -1))
    assert torch.equal(geo.apply(x, (True, 1, 1, 3)), want)


def test_expand_tiles_image_by_image():
    x = torch.randint(0, 256, (3, 3, 32, 32), dtype=torch.uint8)
    ts = geo.transforms(8)
    big, labels = geo.expand(x, ts)
    assert big.shape == (24, 3, 32, 32) and big.dtype == torch.uint8
    assert labels.tolist() == list(range(8)) * 3
    assert torch.equal(big[8 + 5], geo.apply(x[1:2], ts[5])[0])
    copies = {bytes(b.numpy()) for b in big[:8]}
    assert len(copies) == 8  # random images: the 8 transformations give 8 different copies
    with pytest.raises(ValueError, match="must be square, got \\(32, 28\\)"):
        geo.expand(torch.zeros(1, 1, 32, 28), ts)


def test_dirichlet_fit_recovers_known_parameters():
    alpha = np.array([2.0, 5.0, 3.0, 0.5])
    p = np.random.default_rng(0).dirichlet(alpha, 20000)
    assert np.allclose(geo.fit_dirichlet(p), alpha, rtol=0.05)


def oriented(n, seed, anomalous=False):
    """Normal images: a bright top-left corner on a left-to-right ramp (every flip / turn looks different);
    anomalies: rotation- and flip-symmetric noise blobs (every transformed copy looks the same)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.zeros(n, 1, 28, 28)
    if anomalous:
        blob = torch.rand(n, 1, 14, 14, generator=g)
        blob = (blob + blob.flip(-1)) / 2
        blob = (blob + blob.flip(-2)) / 2
        blob = (blob + blob.transpose(-1, -2)) / 2
        x[:, :, 7:21, 7:21] = blob
    else:
        x += torch.linspace(0, 0.5, 28).view(1, 1, 1, 28)
        x[:, :, 2:9, 2:9] = 1.0
        x += 0.05 * torch.rand(x.shape, generator=g)
    return (x.clamp(0, 1) * 255).to(torch.uint8)


def test_geo_detects_images_whose_transformations_cannot_be_told_apart():
    torch.manual_seed(0)
    ts = geo.transforms(8)
    normal, test_normal, test_anom = oriented(64, 1), oriented(50, 2), oriented(50, 3, anomalous=True)
    x, labels = geo.expand(normal, ts)
    net = make_net("mnist_lenet", rep_dim=len(ts))
    held_out, held_labels = geo.expand(test_normal, ts)

    def accuracy():
        out = forward_all(net, held_out, geo.scaling(1), torch.device("cpu"))
        return (out.argmax(1) == held_labels).float().mean().item()

    before = accuracy()
    log = train(net, geo.GEOLoss(len(ts)), x, targets=labels, augment=geo.scaling(1), epochs=3,
                batch_size=64, seed=0, device="cpu", progress=False)
    assert log.losses[-1] < log.losses[0]
    assert before < 0.5 < 0.9 < accuracy()  # it learnt to tell the 8 transformations apart (chance: 1/8)
    s = geo.scores(net, normal, torch.cat([test_normal, test_anom]), ts, geo.scaling(1), torch.device("cpu"))
    y = np.r_[np.zeros(50), np.ones(50)]
    assert s.shape == (100,) and np.isfinite(s).all()
    assert auc(y, s) > 0.95
