"""Networks of the Rethinking-AD seed (lukasruff/Classification-AD).

Bias terms and affine BatchNorm are ON by default because every published run of the seed used them;
``bias=False`` turns both off, which Deep SVDD needs (a bias lets the network map everything onto the
centre: the "hypersphere collapse").
"""
from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F

BN_EPS = 1e-4  # the seed's BatchNorm eps
NETS = ("mnist_lenet", "cifar10_lenet", "resnet18_cbam")
DEFAULT_REP_DIM = {"mnist_lenet": 32, "cifar10_lenet": 256, "resnet18_cbam": 256}
INPUT_SHAPE = {"mnist_lenet": (1, 28, 28), "cifar10_lenet": (3, 32, 32), "resnet18_cbam": (3, 224, 224)}


def _conv_block(c_in: int, c_out: int, bias: bool) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, 5, padding=2, bias=bias),
            nn.BatchNorm2d(c_out, eps=BN_EPS, affine=bias), nn.LeakyReLU(0.01), nn.MaxPool2d(2)]


class LeNet(nn.Module):
    """Conv(5x5, pad 2) + BN + LeakyReLU + max-pool blocks, then fc + BN1d + LeakyReLU, then fc to rep_dim."""

    def __init__(self, channels: list[int], spatial: int, hidden: int, rep_dim: int, bias: bool = True):
        super().__init__()
        layers: list[nn.Module] = []
        for c_in, c_out in zip(channels[:-1], channels[1:]):
            layers += _conv_block(c_in, c_out, bias)
        self.features = nn.Sequential(*layers)
        self.fc = nn.Sequential(nn.Flatten(), nn.Linear(channels[-1] * spatial * spatial, hidden, bias=bias),
                                nn.BatchNorm1d(hidden, eps=BN_EPS, affine=bias), nn.LeakyReLU(0.01),
                                nn.Linear(hidden, rep_dim, bias=bias))
        self.rep_dim = rep_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x))


class CBAM(nn.Module):
    """Convolutional block attention: channel gate (avg+max pooled MLP) then a 7x7 spatial gate."""

    def __init__(self, channels: int, reduction: int = 16):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(channels, channels // reduction), nn.ReLU(),
                                 nn.Linear(channels // reduction, channels))
        self.spatial = nn.Sequential(nn.Conv2d(2, 1, 7, padding=3, bias=False), nn.BatchNorm2d(1, eps=1e-5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate = self.mlp(x.mean((2, 3))) + self.mlp(x.amax((2, 3)))
        x = x * torch.sigmoid(gate)[:, :, None, None]
        pooled = torch.cat([x.amax(1, keepdim=True), x.mean(1, keepdim=True)], 1)
        return x * torch.sigmoid(self.spatial(pooled))


class BasicBlock(nn.Module):
    """ResNet BasicBlock with CBAM applied before the residual addition."""

    def __init__(self, c_in: int, c_out: int, stride: int, bias: bool):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False), nn.BatchNorm2d(c_out, affine=bias), nn.ReLU(),
            nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False), nn.BatchNorm2d(c_out, affine=bias))
        self.cbam = CBAM(c_out)
        self.shortcut = nn.Identity() if stride == 1 and c_in == c_out else nn.Sequential(
            nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out, affine=bias))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.cbam(self.body(x)) + self.shortcut(x))


class ResNet18CBAM(nn.Module):
    """ResNet-18 with CBAM in every block, for 224-px inputs (the seed calls it imagenet_WideResNet)."""

    def __init__(self, rep_dim: int = 256, bias: bool = True, small_input: bool = False):
        super().__init__()
        # small_input: 3x3 stride-1 stem, no max-pool, for 28-32 px images (used by CLAD).
        stem = [nn.Conv2d(3, 64, 3, 1, 1, bias=False)] if small_input else [nn.Conv2d(3, 64, 7, 2, 3, bias=False)]
        stem += [nn.BatchNorm2d(64, affine=bias), nn.ReLU()]
        if not small_input:
            stem.append(nn.MaxPool2d(3, 2, 1))
        blocks: list[nn.Module] = []
        c_in = 64
        for i, c_out in enumerate([64, 128, 256, 512]):
            for j in range(2):
                blocks.append(BasicBlock(c_in, c_out, 2 if (j == 0 and i > 0) else 1, bias))
                c_in = c_out
        self.features = nn.Sequential(*stem, *blocks, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.fc = nn.Linear(512, rep_dim, bias=bias)
        self.rep_dim = rep_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x))


class WithHead(nn.Module):
    """Feature network followed by ``Linear(rep_dim, 1)``: the BCE and Focal classifiers' logit."""

    def __init__(self, body: nn.Module, bias: bool = True):
        super().__init__()
        self.body = body
        self.head = nn.Linear(body.rep_dim, 1, bias=bias)
        self.rep_dim = 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x)).squeeze(1)


def xavier_init(net: nn.Module) -> nn.Module:
    """Xavier-normal weights for every conv and linear layer, zero biases (the seed's init)."""
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_normal_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    return net


def make_net(name: str, rep_dim: int | None = None, bias: bool = True, head: bool = False) -> nn.Module:
    """Build a network by name; ``head=True`` adds the one-logit classifier head."""
    if name not in NETS:
        raise ValueError(f"unknown net {name!r}; choose one of {', '.join(NETS)}")
    rep_dim = rep_dim or DEFAULT_REP_DIM[name]
    if name == "mnist_lenet":
        net: nn.Module = LeNet([1, 16, 32], 7, 64, rep_dim, bias)
    elif name == "cifar10_lenet":
        net = LeNet([3, 32, 64, 128], 4, 512, rep_dim, bias)
    else:
        net = ResNet18CBAM(rep_dim, bias)
    if head:
        net = WithHead(net, bias)
    return xavier_init(net)


def net_for_shape(shape: tuple[int, ...]) -> str:
    """Default network for an image shape (C, H, W)."""
    if tuple(shape) == (1, 28, 28):
        return "mnist_lenet"
    if tuple(shape) == (3, 32, 32):
        return "cifar10_lenet"
    if shape[1] >= 64:
        return "resnet18_cbam"
    raise ValueError(f"no default network for input shape {tuple(shape)}; pass net=...")


def n_params(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())
