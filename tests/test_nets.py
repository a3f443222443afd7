import pytest
import torch
import torchvision

from adcore.nets import NETS, make_net, n_params, net_for_shape


def _lenet_params(chans, spatial, hidden, rep, bias):
    """Parameter count written out from the layer list (conv, BN, fc, BN1d, fc)."""
    total = 0
    for a, b in zip(chans[:-1], chans[1:]):
        total += a * b * 25 + (b + 2 * b if bias else 0)  # conv weights (+ bias) (+ BN affine)
    flat = chans[-1] * spatial * spatial
    total += flat * hidden + (hidden + 2 * hidden if bias else 0)
    total += hidden * rep + (rep if bias else 0)
    return total


@pytest.mark.parametrize("bias", [True, False])
def test_mnist_lenet(bias):
    net = make_net("mnist_lenet", bias=bias)
    assert net(torch.zeros(3, 1, 28, 28)).shape == (3, 32)
    assert n_params(net) == _lenet_params([1, 16, 32], 7, 64, 32, bias)
    assert n_params(make_net("mnist_lenet")) == 115968


@pytest.mark.parametrize("bias", [True, False])
def test_cifar10_lenet(bias):
    net = make_net("cifar10_lenet", bias=bias)
    assert net(torch.zeros(2, 3, 32, 32)).shape == (2, 256)
    assert n_params(net) == _lenet_params([3, 32, 64, 128], 4, 512, 256, bias)
    assert n_params(make_net("cifar10_lenet")) == 1440512


def test_bias_off_removes_all_biases_and_affine_bn():
    net = make_net("cifar10_lenet", bias=False)
    for m in net.modules():
        assert getattr(m, "bias", None) is None
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            assert not m.affine and m.eps == 1e-4


def test_head_adds_one_logit():
    net = make_net("mnist_lenet", rep_dim=16, head=True)
    assert net(torch.zeros(4, 1, 28, 28)).shape == (4,)
    assert n_params(net) == _lenet_params([1, 16, 32], 7, 64, 16, True) + 17


def test_resnet18_cbam_shape_and_params():
    net = make_net("resnet18_cbam").eval()
    with torch.no_grad():
        assert net(torch.zeros(1, 3, 224, 224)).shape == (1, 256)
    # torchvision's ResNet-18 without its fc, plus one CBAM per block, plus fc 512 -> 256.
    backbone = sum(p.numel() for n, p in torchvision.models.resnet18().named_parameters() if not n.startswith("fc"))
    cbam = sum(2 * (2 * c * c // 16 + c // 16 + c + 2 * 49 + 2) for c in (64, 128, 256, 512))
    assert n_params(net) == backbone + cbam + 512 * 256 + 256


def _std_ok(w, expected, rel=0.1):
    return abs(w.std().item() - expected) < rel * expected


@pytest.mark.parametrize("name,convs", [("cifar10_lenet", [(3, 32), (32, 64), (64, 128)]),
                                        ("mnist_lenet", [(1, 16), (16, 32)])])
def test_lenet_init_follows_the_seed(name, convs):
    """Xavier-normal with the LeakyReLU gain on the convolutions and the hidden layer, gain 1 on the last layer,
    PyTorch's default biases; the BCE head a plain default Linear."""
    torch.manual_seed(0)
    gain = (2 / (1 + 0.01 ** 2)) ** 0.5
    net = make_net(name, head=True)
    body = net.body
    conv_layers = [m for m in body.features if isinstance(m, torch.nn.Conv2d)]
    for conv, (c_in, c_out) in zip(conv_layers, convs):
        assert _std_ok(conv.weight, gain * (2 / (25 * c_in + 25 * c_out)) ** 0.5), conv
        bound = 1 / (25 * c_in) ** 0.5  # PyTorch's default bias: U(-1/sqrt(fan_in), 1/sqrt(fan_in))
        assert conv.bias.abs().max() <= bound and conv.bias.abs().max() > bound / 2
    fc1, fc2 = body.fc[1], body.fc[4]
    assert _std_ok(fc1.weight, gain * (2 / sum(fc1.weight.shape)) ** 0.5)
    assert _std_ok(fc2.weight, (2 / sum(fc2.weight.shape)) ** 0.5)
    assert fc2.bias.abs().max() > 0
    if name == "cifar10_lenet":  # the numbers: conv1 std 0.066 (the seed) instead of 0.047
        assert abs(conv_layers[0].weight.std().item() - 0.0676) < 0.004
    head, fan_in = net.head.weight, body.rep_dim  # default Linear: kaiming-uniform (a = sqrt(5)), 1 / sqrt(fan_in)
    assert head.abs().max() <= 1 / fan_in ** 0.5 and head.abs().max() > 0.7 / fan_in ** 0.5


def test_resnet18_cbam_init_follows_the_seed():
    torch.manual_seed(0)
    net = make_net("resnet18_cbam")
    stem = net.features[0]
    assert _std_ok(stem.weight, (2 / (64 * 49)) ** 0.5)  # Kaiming fan-out
    block = net.features[6]  # the first block of the second stage (has a 1x1 shortcut)
    assert _std_ok(block.body[0].weight, (2 / (128 * 9)) ** 0.5)
    sc = block.shortcut[0].weight  # missed by the seed's name matching: PyTorch's default init
    assert sc.abs().max() <= 1 / 64 ** 0.5
    assert torch.all(block.body[1].weight == 1) and torch.all(block.body[1].bias == 0)
    spatial_bn = block.cbam.spatial[1]
    assert torch.all(spatial_bn.weight == 0) and spatial_bn.momentum == 0.01
    assert torch.all(block.cbam.mlp[0].bias == 0) and block.cbam.mlp[0].weight.abs().max() > 0
    assert _std_ok(net.fc.weight, (2 / 512) ** 0.5) and torch.all(net.fc.bias == 0)


def test_unknown_net_and_default_nets():
    with pytest.raises(ValueError, match="unknown net"):
        make_net("vgg")
    assert net_for_shape((1, 28, 28)) == "mnist_lenet"
    assert net_for_shape((3, 32, 32)) == "cifar10_lenet"
    assert set(NETS) == {"mnist_lenet", "cifar10_lenet", "resnet18_cbam"}
    with pytest.raises(ValueError):
        net_for_shape((2, 10, 10))
