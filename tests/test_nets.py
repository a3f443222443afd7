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


def test_xavier_init_zero_bias():
    net = make_net("mnist_lenet")
    lin = net.fc[1]
    assert torch.all(lin.bias == 0)
    # Xavier-normal std = sqrt(2 / (fan_in + fan_out))
    assert abs(lin.weight.std().item() - (2 / (1568 + 64)) ** 0.5) < 0.003


def test_unknown_net_and_default_nets():
    with pytest.raises(ValueError, match="unknown net"):
        make_net("vgg")
    assert net_for_shape((1, 28, 28)) == "mnist_lenet"
    assert net_for_shape((3, 32, 32)) == "cifar10_lenet"
    assert set(NETS) == {"mnist_lenet", "cifar10_lenet", "resnet18_cbam"}
    with pytest.raises(ValueError):
        net_for_shape((2, 10, 10))
