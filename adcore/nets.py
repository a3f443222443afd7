"""Networks: the Rethinking-AD seed's (lukasruff/Classification-AD), the Deep SVDD / Deep SAD seeds' bias-free
networks with their decoders, and CLAD's ResNet-18 classifier and convolutional autoencoder.

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


def _conv_blocks(channels: list[int], bias: bool) -> nn.Sequential:
    """[Conv(5x5, pad 2) + BN + LeakyReLU + max-pool] from each channel count of ``channels`` to the next."""
    return nn.Sequential(*[m for c_in, c_out in zip(channels[:-1], channels[1:]) for m in (
        nn.Conv2d(c_in, c_out, 5, padding=2, bias=bias), nn.BatchNorm2d(c_out, eps=BN_EPS, affine=bias),
        nn.LeakyReLU(0.01), nn.MaxPool2d(2))])


def _dense(dims: list[int], out: int, bias: bool = False) -> list[nn.Module]:
    """[Linear + BN1d + LeakyReLU] from each width of ``dims`` to the next, then Linear(dims[-1], out)."""
    layers: list[nn.Module] = []
    for d_in, d_out in zip(dims[:-1], dims[1:]):
        layers += [nn.Linear(d_in, d_out, bias=bias), nn.BatchNorm1d(d_out, eps=BN_EPS, affine=bias),
                   nn.LeakyReLU(0.01)]
    return [*layers, nn.Linear(dims[-1], out, bias=bias)]


class LeNet(nn.Module):
    """Conv(5x5, pad 2) + BN + LeakyReLU + max-pool blocks, then fc + BN1d + LeakyReLU, then fc to rep_dim.

    Initialised as the seed's ``cifar10_LeNet`` / ``mnist_LeNet``: Xavier-normal weights with the LeakyReLU gain
    (sqrt(2 / (1 + 0.01²)) = 1.414) on every convolution and the hidden linear layer, gain 1 on the last layer,
    biases left at PyTorch's default. (Gain 1 everywhere and zero biases, as adcore had it, gives conv weights a
    std of 0.047 instead of the seed's 0.066 and measurably lower AUCs on CIFAR-10.)"""

    def __init__(self, channels: list[int], spatial: int, hidden: int, rep_dim: int, bias: bool = True):
        super().__init__()
        self.features = _conv_blocks(channels, bias)
        self.fc = nn.Sequential(nn.Flatten(), *_dense([channels[-1] * spatial * spatial, hidden], rep_dim, bias))
        self.rep_dim = rep_dim
        gain = nn.init.calculate_gain("leaky_relu")
        for m in [*self.features, self.fc[1]]:
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.xavier_normal_(m.weight, gain=gain)
        nn.init.xavier_normal_(self.fc[4].weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x))


class CBAM(nn.Module):
    """Convolutional block attention: channel gate (avg+max pooled MLP) then a 7x7 spatial gate."""

    def __init__(self, channels: int, reduction: int = 16):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(channels, channels // reduction), nn.ReLU(),
                                 nn.Linear(channels // reduction, channels))
        self.spatial = nn.Sequential(nn.Conv2d(2, 1, 7, padding=3, bias=False),
                                     nn.BatchNorm2d(1, eps=1e-5, momentum=0.01))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate = self.mlp(x.mean((2, 3))) + self.mlp(x.amax((2, 3)))
        x = x * torch.sigmoid(gate)[:, :, None, None]
        pooled = torch.cat([x.amax(1, keepdim=True), x.mean(1, keepdim=True)], 1)
        return x * torch.sigmoid(self.spatial(pooled))


class BasicBlock(nn.Module):
    """ResNet BasicBlock; with ``cbam``, CBAM is applied before the residual addition (the Rethinking seed)."""

    def __init__(self, c_in: int, c_out: int, stride: int, bias: bool, cbam: bool):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False), nn.BatchNorm2d(c_out, affine=bias), nn.ReLU(),
            nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False), nn.BatchNorm2d(c_out, affine=bias))
        self.cbam = CBAM(c_out) if cbam else nn.Identity()
        self.shortcut = nn.Identity() if stride == 1 and c_in == c_out else nn.Sequential(
            nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out, affine=bias))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.cbam(self.body(x)) + self.shortcut(x))


class ResNet18(nn.Module):
    """ResNet-18 (He et al.) with ``out_dim`` outputs.

    ``cbam``: CBAM in every block (the Rethinking seed's ImageNet network, ``resnet18_cbam``), initialised by that
    seed's rule (see :func:`seed_resnet_init`); without CBAM, torchvision's rule (Kaiming-normal fan-out for every
    convolution, BatchNorm weight 1 and bias 0, default linear layers), as CLAD's seed uses. ``small_input``: a
    3x3 stride-1 stem without max-pool, for 28-32 px images (CLAD's classifier); otherwise ImageNet's 7x7 stride-2
    stem + 3x3 stride-2 max-pool. ``width``: the first stage's channels (stages w, 2w, 4w, 8w; 64 = standard).
    ``bias=False``: no bias in the last layer and no affine BatchNorm.
    """

    def __init__(self, out_dim: int = 256, in_channels: int = 3, width: int = 64, *, cbam: bool = False,
                 small_input: bool = False, bias: bool = True):
        super().__init__()
        k, s, p = (3, 1, 1) if small_input else (7, 2, 3)
        stem = [nn.Conv2d(in_channels, width, k, s, p, bias=False), nn.BatchNorm2d(width, affine=bias), nn.ReLU(),
                *([] if small_input else [nn.MaxPool2d(3, 2, 1)])]
        blocks: list[nn.Module] = []
        c_in = width
        for i, c_out in enumerate([width, 2 * width, 4 * width, 8 * width]):
            for j in range(2):
                blocks.append(BasicBlock(c_in, c_out, 2 if (j == 0 and i > 0) else 1, bias, cbam))
                c_in = c_out
        self.features = nn.Sequential(*stem, *blocks, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.fc = nn.Linear(c_in, out_dim, bias=bias)
        self.rep_dim = out_dim
        if cbam:
            seed_resnet_init(self)
            return
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x))


def seed_resnet_init(net: "ResNet18") -> None:
    """The Rethinking seed's initialisation of its ResNet-18 + CBAM (``imagenet_WideResNet.py``), rule for rule:
    the last linear layer Kaiming-normal (fan-in); then, by the names of its state dict, every convolution weight
    Kaiming-normal (fan-out), every BatchNorm weight 1 except the CBAM spatial gate's (0: the gate starts at
    sigmoid(0) = 0.5 everywhere), every bias 0. The seed's name matching misses the 1x1 shortcut convolutions and the
    CBAM channel MLP's weights, which keep PyTorch's default initialisation; so do they here."""
    nn.init.kaiming_normal_(net.fc.weight)
    nn.init.kaiming_normal_(net.features[0].weight, mode="fan_out")
    for m in net.modules():
        if isinstance(m, BasicBlock):
            for conv in (m.body[0], m.body[3]):
                nn.init.kaiming_normal_(conv.weight, mode="fan_out")
            if isinstance(m.cbam, CBAM):
                nn.init.kaiming_normal_(m.cbam.spatial[0].weight, mode="fan_out")
                if m.cbam.spatial[1].affine:
                    nn.init.zeros_(m.cbam.spatial[1].weight)
                for lin in (m.cbam.mlp[0], m.cbam.mlp[2]):
                    nn.init.zeros_(lin.bias)
    if net.fc.bias is not None:
        nn.init.zeros_(net.fc.bias)


class WithHead(nn.Module):
    """Feature network followed by ``Linear(rep_dim, 1)``: the BCE and Focal classifiers' logit. The head keeps
    PyTorch's default initialisation and is built after the network, as the seed's ``ClassifierNet``."""

    def __init__(self, body: nn.Module, bias: bool = True):
        super().__init__()
        self.body = body
        self.head = nn.Linear(body.rep_dim, 1, bias=bias)
        self.rep_dim = 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x)).squeeze(1)


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
        net = ResNet18(rep_dim, cbam=True, bias=bias)
    return WithHead(net, bias) if head else net


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


# --- Deep SVDD / Deep SAD networks (lukasruff/Deep-SVDD-PyTorch, lukasruff/Deep-SAD-PyTorch) -----------------
# Bias-free throughout (no conv/linear bias, BatchNorm affine=False with eps 1e-4), LeakyReLU(0.01): a bias or an
# affine BatchNorm would let the network map every input onto the centre c (hypersphere collapse). Every network
# has a mirrored decoder, so that it can be pretrained as the encoder of an autoencoder.

class SADLeNet(nn.Module):
    """The seeds' LeNet encoders: conv(5x5, pad 2) + BN + LeakyReLU + max-pool blocks, then either one linear
    layer to ``rep_dim`` (MNIST, CIFAR-10) or fc + BN1d + LeakyReLU + fc (Fashion-MNIST, ``hidden``)."""

    def __init__(self, channels: list[int], spatial: int, rep_dim: int, hidden: int | None = None):
        super().__init__()
        self.features = _conv_blocks(channels, bias=False)
        self.fc = nn.Sequential(nn.Flatten(), *_dense([channels[-1] * spatial * spatial, *([hidden] if hidden else [])],
                                                      rep_dim))
        self.rep_dim = rep_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x))


class SADLeNetDecoder(nn.Module):
    """Mirror of :class:`SADLeNet`: (fc + BN1d + LeakyReLU), reshape the code to (rep_dim / 16) x 4 x 4, then
    [LeakyReLU, upsample x2, 5x5 transposed conv, BN] blocks and a sigmoid. The paddings bring the map back to
    the input size (28 px: 4 -> 8 -> 16 -> 14 -> 28; 32 px: 4 -> 8 -> 16 -> 32)."""

    def __init__(self, channels: list[int], size: int, rep_dim: int, hidden: int | None = None):
        super().__init__()
        if rep_dim % 16:
            raise ValueError(f"the decoder reshapes the code to (rep_dim/16) x 4 x 4; rep_dim={rep_dim}")
        # Fashion-MNIST: rep_dim -> hidden, reshaped to hidden/16 channels
        self.head = nn.Sequential(*([nn.Linear(rep_dim, hidden, bias=False),
                                     nn.BatchNorm1d(hidden, eps=BN_EPS, affine=False)] if hidden else []))
        c0 = (hidden or rep_dim) // 16
        chans = [c0] + list(reversed(channels))  # e.g. MNIST 2 -> 4 -> 8 -> 1
        # Transposed convs keep the size with padding 2; the 28-px nets drop 2 px once (padding 3) to reach 28.
        pads = [2] * (len(chans) - 1)
        if size == 28:
            pads[-2] = 3
        blocks: list[nn.Module] = []
        for i, (c_in, c_out) in enumerate(zip(chans[:-1], chans[1:])):
            blocks.append(nn.LeakyReLU(0.01))
            if not (i == 0 and size == 32):  # CIFAR-10: the first deconv runs at 4 x 4, before upsampling
                blocks.append(nn.Upsample(scale_factor=2))
            blocks.append(nn.ConvTranspose2d(c_in, c_out, 5, padding=pads[i], bias=False))
            if i < len(chans) - 2:  # no BatchNorm after the last
                blocks.append(nn.BatchNorm2d(c_out, eps=BN_EPS, affine=False))
        self.body = nn.Sequential(*blocks)
        self.c0 = c0

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        z = self.head(z)
        return torch.sigmoid(self.body(z.view(z.shape[0], self.c0, 4, 4)))


class MLP(nn.Module):
    """The seeds' tabular encoder: [Linear + BN1d + LeakyReLU] per hidden layer, then Linear to ``rep_dim``."""

    def __init__(self, x_dim: int, h_dims: list[int], rep_dim: int):
        super().__init__()
        self.net = nn.Sequential(*_dense([x_dim, *h_dims], rep_dim))
        self.rep_dim = rep_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.flatten(1))


class MLPDecoder(nn.Module):
    """Mirror of :class:`MLP`: rep_dim -> reversed hidden layers -> x_dim, sigmoid output (data in [0, 1])."""

    def __init__(self, x_dim: int, h_dims: list[int], rep_dim: int):
        super().__init__()
        self.net = nn.Sequential(*_dense([rep_dim, *reversed(h_dims)], x_dim))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.net(z))


class AutoEncoder(nn.Module):
    """``decoder(encoder(x))``, reshaped to the input's shape. ``encoder`` is a network of the same class (and
    state-dict keys) as the one it will initialise, so the transfer is a plain ``load_state_dict``."""

    def __init__(self, encoder: nn.Module, decoder: nn.Module):
        super().__init__()
        self.encoder, self.decoder = encoder, decoder
        self.rep_dim = encoder.rep_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x)).view_as(x)


# name -> (kind, spec, default rep_dim). LeNets: (channels, spatial size after pooling, hidden, input size).
# Tabular MLPs: (x_dim, hidden dims). wbc and wine are this project's choice (same shape as the seed's cardio
# net) for the scikit-learn breast-cancer and wine sets used in the ODDS manner.
SAD_NETS: dict[str, tuple[str, tuple, int]] = {
    "mnist_lenet_sad": ("lenet", ([1, 8, 4], 7, None, 28), 32),
    "fmnist_lenet_sad": ("lenet", ([1, 16, 32], 7, 128, 28), 64),
    "cifar10_lenet_sad": ("lenet", ([3, 32, 64, 128], 4, None, 32), 128),
    "arrhythmia_mlp": ("mlp", (274, [128, 64]), 32),
    "cardio_mlp": ("mlp", (21, [32, 16]), 8),
    "satellite_mlp": ("mlp", (36, [32, 16]), 8),
    "satimage-2_mlp": ("mlp", (36, [32, 16]), 8),
    "shuttle_mlp": ("mlp", (9, [32, 16]), 8),
    "thyroid_mlp": ("mlp", (6, [32, 16]), 4),
    "wbc_mlp": ("mlp", (30, [32, 16]), 8),
    "wine_mlp": ("mlp", (13, [32, 16]), 8),
}


def make_sad_net(name: str, rep_dim: int | None = None, decoder: bool = False) -> nn.Module:
    """A bias-free Deep SVDD / Deep SAD network by name; ``decoder=True`` returns the :class:`AutoEncoder` whose
    encoder is that network. ``mlp:<x_dim>`` is a generic tabular net x_dim -> [32, 16] -> 8.

    Initialised as the Deep SAD seed's networks: PyTorch's default initialisation of every layer (uniform, bound
    1 / sqrt(fan_in)), except the CIFAR-10 decoder's transposed convolutions, which the seed draws Xavier-uniform
    with the LeakyReLU gain. The layers are built in the seed's order, so one seed draws the same kinds of weights."""
    if name.startswith("mlp:") and name[4:].isdigit():
        kind, spec, default_rep = "mlp", (int(name[4:]), [32, 16]), 8
    elif name in SAD_NETS:
        kind, spec, default_rep = SAD_NETS[name]
    else:
        raise ValueError(f"unknown Deep SAD net {name!r}; choose one of {', '.join(SAD_NETS)} or mlp:<x_dim>")
    rep_dim = rep_dim or default_rep
    if kind == "lenet":
        channels, spatial, hidden, size = spec
        enc: nn.Module = SADLeNet(channels, spatial, rep_dim, hidden)
        dec: nn.Module | None = SADLeNetDecoder(channels, size, rep_dim, hidden) if decoder else None
        if dec is not None and size == 32:  # the seed's CIFAR10_LeNet_Decoder
            for m in dec.modules():
                if isinstance(m, nn.ConvTranspose2d):
                    nn.init.xavier_uniform_(m.weight, gain=nn.init.calculate_gain("leaky_relu"))
    else:
        x_dim, h_dims = spec
        enc = MLP(x_dim, list(h_dims), rep_dim)
        dec = MLPDecoder(x_dim, list(h_dims), rep_dim) if decoder else None
    return AutoEncoder(enc, dec) if decoder else enc


def sad_net_for(dataset: str) -> str:
    """The seed's network for a dataset name (images: ``<name>_lenet_sad``; tabular: ``<name>_mlp``)."""
    for suffix in ("_lenet_sad", "_mlp"):
        if dataset + suffix in SAD_NETS:
            return dataset + suffix
    raise ValueError(f"no Deep SAD network for dataset {dataset!r}; pass net=... (one of {', '.join(SAD_NETS)})")


def mlp_for(x_dim: int) -> str:
    """A tabular network name for any input width: the seed's net when one matches, else ``mlp:<x_dim>``."""
    for name, (kind, spec, _) in SAD_NETS.items():
        if kind == "mlp" and spec[0] == x_dim:
            return name
    return f"mlp:{x_dim}"


# --- CLAD's autoencoder -------------------------------------------------------------------------------------

class _ReparamCode(nn.Module):
    """Input dropout, the convolutional encoder ``net`` (its last layer gives 2 x hidden numbers: μ and σ), and the
    reparameterised code z = μ + σ·N(0, 1) in training mode; the mean code μ in eval mode (no dropout, no draw)."""

    def __init__(self, net: nn.Module, hidden: int, input_dropout: float):
        super().__init__()
        self.net, self.hidden, self.dropout = net, hidden, nn.Dropout(input_dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.net(self.dropout(x))
        mu, sigma = out[:, :self.hidden], out[:, self.hidden:]
        return mu + sigma * torch.randn_like(mu) if self.training else mu


def _seed_init(module: nn.Module) -> None:
    """The CLAD seed's ``init_weights``: Xavier-uniform weights and zero biases for convolutions and dense layers."""
    for m in module.modules():
        if type(m) in (nn.Conv2d, nn.Linear):
            nn.init.xavier_uniform_(m.weight)
            nn.init.zeros_(m.bias)


class ConvAutoencoder(nn.Module):
    """The CLAD seed's convolutional autoencoder on standardised images (size divisible by 4).

    ``large=False`` (the seed's ``cvae``, its choice for grey images): three 3x3 convolutions with w, 2w, 4w channels
    (w = 4 x channels) and ELU, a 2x2 max-pool after the first two, then dense 512 (ReLU) and a dense layer that gives
    μ and σ of the code (2 x ``hidden`` numbers). ``large=True`` (``cvae_large``, for colour images): six 3x3
    convolutions (two each of w, 2w, 4w channels with w = 16 x channels), each with BatchNorm and ELU, a max-pool
    after the second and fourth, the same dense head. Default: large for colour images, as the seed.

    The code is reparameterised with the learned σ: z = μ + σ·ε, ε ~ N(0, 1), in training mode (also while DEC
    fine-tunes the encoder); ``encode`` and eval mode give μ. The decoder mirrors the encoder: dense 512 and a dense
    layer back to the last feature map (ReLU), two transposed 4x4 stride-2 convolutions (ELU; in the large one with
    BatchNorm and a 3x3 convolution after each), and a final 3x3 convolution to the image. It ends linear: the
    targets are standardised pixels (the seed ends in a sigmoid, which cannot reach their negative values).
    Weights: Xavier-uniform, zero biases, as the seed's ``init_weights``.
    """

    def __init__(self, channels: int = 1, size: int = 28, hidden: int = 10, input_dropout: float = 0.1,
                 large: bool | None = None):
        super().__init__()
        if size % 4:
            raise ValueError(f"image size must be divisible by 4 (two 2x2 max-pools), got {size}")
        large = channels == 3 if large is None else bool(large)
        w, s = channels * (16 if large else 4), size // 4
        feat = 4 * w * s * s

        def block(c_in: int, c_out: int) -> list[nn.Module]:
            return [nn.Conv2d(c_in, c_out, 3, 1, 1), *([nn.BatchNorm2d(c_out)] if large else []), nn.ELU()]

        if large:
            conv = [*block(channels, w), *block(w, w), nn.MaxPool2d(2), *block(w, 2 * w), *block(2 * w, 2 * w),
                    nn.MaxPool2d(2), *block(2 * w, 4 * w), *block(4 * w, 4 * w)]
        else:
            conv = [*block(channels, w), nn.MaxPool2d(2), *block(w, 2 * w), nn.MaxPool2d(2), *block(2 * w, 4 * w)]
        net = nn.Sequential(*conv, nn.Flatten(), nn.Linear(feat, 512), nn.ReLU(), nn.Linear(512, 2 * hidden))
        self.encoder = _ReparamCode(net, hidden, input_dropout)

        def up(c_in: int, c_out: int) -> list[nn.Module]:
            return [nn.ConvTranspose2d(c_in, c_out, 4, 2, 1), *([nn.BatchNorm2d(c_out)] if large else []), nn.ELU()]

        if large:
            deconv = [*block(4 * w, 4 * w), *up(4 * w, 2 * w), *block(2 * w, 2 * w), *up(2 * w, w), *block(w, w)]
        else:
            deconv = [*up(4 * w, 2 * w), *up(2 * w, w)]
        self.decoder = nn.Sequential(nn.Linear(hidden, 512), nn.ReLU(), nn.Linear(512, feat), nn.ReLU(),
                                     nn.Unflatten(1, (4 * w, s, s)), *deconv, nn.Conv2d(w, channels, 3, 1, 1))
        _seed_init(self.encoder)
        _seed_init(self.decoder[5:])  # the seed leaves its decoder's dense layers at PyTorch's default init
        self.hidden, self.large = hidden, large

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The mean code μ (deterministic: no dropout, no draw), whatever the mode."""
        return self.encoder.net(x)[:, :self.hidden]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))
