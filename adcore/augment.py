"""Batched image augmentation on the training device.

The seed augments one PIL image at a time in the DataLoader; here the same recipe runs on whole uint8 batches
on the device (CPU or GPU), so the data never leaves it and no worker processes are needed for images <= 64 px.
Every random factor is drawn per sample, as the per-sample PIL pipeline does, from an optional
``torch.Generator``: each training run owns one, so K models trained at once draw exactly what K separate
runs would (``Augment.draw`` per model, one batched ``Augment.apply`` for all).
"""
from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

CIFAR_MEAN = (0.491373, 0.482353, 0.446667)
CIFAR_STD = (0.247059, 0.243529, 0.261569)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
_LUMA = (0.299, 0.587, 0.114)  # ITU-R 601, as PIL's 'L' conversion and torchvision's rgb_to_grayscale


@dataclasses.dataclass(frozen=True)
class Augment:
    """An augmentation recipe. ``__call__(x, train)`` maps uint8 N x C x H x W to normalized float.

    jitter: ColorJitter strength used for brightness, contrast, saturation and hue alike.
    crop/padding: RandomCrop(crop, padding) when training, CenterCrop(crop) at test time.
    noise: std of additive Gaussian noise after scaling to [0, 1].
    pil: colour jitter as the seed's torchvision ``ColorJitter`` on PIL images computes it, bit for bit: the four
    steps in a random order per image, each rounded to 8 bits as Pillow does (truncation: the seed's training
    images come out 1.4/255 darker on average than the test images), the hue through Pillow's 8-bit HSV
    (:func:`pil_jitter`). Off: the same factors in floating point, fixed order.
    """

    jitter: float = 0.0
    flip: bool = False
    crop: int | None = None
    padding: int = 0
    noise: float = 0.0
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    pil: bool = False

    def __call__(self, x: torch.Tensor, train: bool = True, generator: torch.Generator | None = None,
                 blur: torch.Tensor | None = None) -> torch.Tensor:
        x = x.float().div_(255) if x.dtype == torch.uint8 else x.float()
        if train:
            return self.apply(x, self.draw(tuple(x.shape), x.device, generator), blur)
        if self.crop and self.crop < x.shape[-1]:
            x = center_crop(x, self.crop)
        return self.normalize(x)

    def draw(self, shape: tuple[int, ...], device: torch.device | str = "cpu",
             generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """The random factors of a training batch of ``shape`` (N, C, H, W), drawn from ``generator`` (default:
        the global RNG) in a fixed order. Split from :meth:`apply` so that the batches of many independently
        seeded models can be drawn one by one and augmented in one call (see :meth:`draw_many`)."""
        return self.draw_many(shape, device, [generator])

    def draw_many(self, shape: tuple[int, ...], device: torch.device | str,
                  generators: Sequence[torch.Generator | None]) -> dict[str, torch.Tensor]:
        """The factors of K = len(generators) batches of ``shape`` each, batch k from ``generators[k]``, as one
        batch of K * N samples for :meth:`apply`.

        Why: a K-model training step draws K batches per step, one from each run's generator. Drawing every factor
        on its own costs 9 kernel launches per model and step (plus a concatenation per factor); here each batch
        takes at most five draws (brightness, contrast and saturation in one, hue, flip, both crop offsets in one,
        noise), written in place into tensors shared by all K. Each draw consumes its generator exactly as the
        separate draws did (same kernel, same order), so on a CPU the numbers are bit for bit those of drawing
        every factor on its own."""
        p: dict[str, torch.Tensor] = {}
        if not (self.jitter or self.flip or self.crop or self.noise):
            return p  # nothing random: any shape (tabular rows included) passes through
        n, c, h, w = shape
        k, dev = len(generators), torch.device(device)
        jitter = bool(self.jitter) and c == 3
        if self.crop:
            ranges = (h + 2 * self.padding - self.crop + 1, w + 2 * self.padding - self.crop + 1)
            if min(ranges) < 1:
                raise ValueError(f"crop {self.crop} is larger than the padded {h} x {w} images")
            offsets = torch.empty(k, 2, n, dtype=torch.long, device=dev)
            h = w = self.crop
        bcs, hue = (torch.empty(k, 3, n, device=dev), torch.empty(k, n, device=dev)) if jitter else (None, None)
        order = torch.empty(k, n, 4, device=dev) if jitter and self.pil else None
        flip = torch.empty(k, n, device=dev) if self.flip else None
        noise = torch.empty(k, n, c, h, w, device=dev) if self.noise else None
        for i, g in enumerate(generators):  # model i's draws, in the order of the separate draws
            if jitter:
                bcs[i].uniform_(1 - self.jitter, 1 + self.jitter, generator=g)
                hue[i].uniform_(-self.jitter, self.jitter, generator=g)
                if order is not None:
                    order[i].uniform_(generator=g)
            if flip is not None:
                flip[i].uniform_(generator=g)
            if self.crop:
                if ranges[0] == ranges[1]:
                    offsets[i].random_(0, ranges[0], generator=g)
                else:
                    offsets[i, 0].random_(0, ranges[0], generator=g)
                    offsets[i, 1].random_(0, ranges[1], generator=g)
            if noise is not None:
                noise[i].normal_(generator=g)
        col = (k * n, 1, 1, 1)
        if jitter:
            p.update(brightness=bcs[:, 0].reshape(col), contrast=bcs[:, 1].reshape(col),
                     saturation=bcs[:, 2].reshape(col), hue=hue.view(col))
            if order is not None:
                p["order"] = order.view(k * n, 4).argsort(1)  # a random permutation of the 4 steps per image
        if flip is not None:
            p["flip"] = flip.view(col) < 0.5
        if self.crop:
            p["oy"], p["ox"] = offsets[:, 0].reshape(-1), offsets[:, 1].reshape(-1)
        if noise is not None:
            p["noise"] = noise.view(k * n, c, h, w)
        return p

    def apply(self, x: torch.Tensor, p: dict[str, torch.Tensor], blur: torch.Tensor | None = None) -> torch.Tensor:
        """Training-time augmentation of float [0, 1] images with factors from :meth:`draw`, then normalization.

        ``blur``: a Gaussian blur sigma per sample (0: none; the OE images of a blur experiment), applied where the
        seed's OE pipeline applies PIL's GaussianBlur: after jitter, flip and padded crop (the padding band is
        blurred too), before the noise and the normalization, on the image rounded to 8 bits as PIL holds it."""
        if "order" in p:
            x = pil_jitter(x.mul(255).round_(), p).div_(255)
        elif "brightness" in p:
            x = apply_jitter(x, p)
        if "flip" in p:
            x = torch.where(p["flip"], x.flip(-1), x)
        if "oy" in p:
            x = crop_at(F.pad(x, (self.padding,) * 4) if self.padding else x, p["oy"], p["ox"], self.crop)
        if blur is not None:
            x = blur_samples(x, blur)
        if "noise" in p:
            x = x + self.noise * p["noise"]
        return self.normalize(x)

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        if self.mean is not None:
            mean = torch.tensor(self.mean, device=x.device).view(1, -1, 1, 1)
            std = torch.tensor(self.std, device=x.device).view(1, -1, 1, 1)
            x = (x - mean) / std
        return x


def cat_params(params: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Concatenate the factors of several batches (from :meth:`Augment.draw`) along the sample dimension."""
    return {k: torch.cat([p[k] for p in params]) for k in params[0]} if params else {}


RECIPES: dict[str, Augment] = {
    "none": Augment(),
    "cifar": Augment(jitter=0.01, flip=True, crop=32, padding=4, noise=0.001, mean=CIFAR_MEAN, std=CIFAR_STD),
    # The seed's --data_augmentation False --data_normalization True (the HSC sensitivity study's second arm).
    "cifar_normalize": Augment(mean=CIFAR_MEAN, std=CIFAR_STD),
    # Resize(256) happens when images are decoded; here RandomCrop(224) / CenterCrop(224).
    "imagenet": Augment(jitter=0.01, flip=True, crop=224, noise=0.001, mean=IMAGENET_MEAN, std=IMAGENET_STD),
}


# The CIFAR recipe with the seed's Pillow rounding in the colour jitter (bench/parity.py compares the two).
RECIPES["cifar_pil"] = dataclasses.replace(RECIPES["cifar"], pil=True)


def make_augment(recipe: str | Augment) -> Augment:
    if isinstance(recipe, Augment):
        return recipe
    if recipe not in RECIPES:
        raise ValueError(f"unknown augmentation recipe {recipe!r}; choose one of {', '.join(RECIPES)}")
    return RECIPES[recipe]


def default_recipe(shape: tuple[int, ...]) -> str:
    """The seed's choice: CIFAR-like colour images are augmented and normalized, MNIST-like ones are not."""
    return "none" if shape[0] == 1 else "cifar" if shape[1] <= 64 else "imagenet"


def grey(x: torch.Tensor) -> torch.Tensor:
    w = torch.tensor(_LUMA, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    return (x * w).sum(1, keepdim=True)


def jitter_params(n: int, s: float, device, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
    """Per-sample ColorJitter factors: brightness, contrast, saturation in [1-s, 1+s], hue shift in [-s, s]."""
    bounds = {"brightness": (1 - s, 1 + s), "contrast": (1 - s, 1 + s), "saturation": (1 - s, 1 + s), "hue": (-s, s)}
    return {k: torch.empty(n, 1, 1, 1, device=device).uniform_(lo, hi, generator=generator)
            for k, (lo, hi) in bounds.items()}


def apply_jitter(x: torch.Tensor, p: dict[str, torch.Tensor]) -> torch.Tensor:
    x = (x * p["brightness"]).clamp_(0, 1)
    c = p["contrast"]
    x = (c * x + (1 - c) * grey(x).mean((2, 3), keepdim=True)).clamp_(0, 1)
    c = p["saturation"]
    x = (c * x + (1 - c) * grey(x)).clamp_(0, 1)
    return adjust_hue(x, p["hue"])


def _blend(a: torch.Tensor, x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """Pillow's ``Image.blend(a, x, f)``: a + f (x - a) in float32, cut to [0, 255] and truncated."""
    return (a + f * (x - a)).clamp_(0, 255).trunc_()


def pil_luma(x: torch.Tensor) -> torch.Tensor:
    """Pillow's RGB -> L of 0..255 values: (19595 R + 38470 G + 7471 B + 2^15) >> 16, N x 1 x H x W."""
    r, g, b = x.double().unbind(1)
    return torch.floor((19595 * r + 38470 * g + 7471 * b + 32768) / 65536).float()[:, None]


def pil_hue(x: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """torchvision's PIL ``adjust_hue`` of 0..255 RGB values: Pillow's 8-bit RGB -> HSV (H and S truncated), H
    plus int(shift * 255) modulo 256, Pillow's HSV -> RGB (rounded); float32 and float64 steps as Pillow's C."""
    r, g, b = x.unbind(1)
    maxc, minc = x.max(1).values, x.min(1).values
    cr = maxc - minc
    grey = cr == 0
    one = torch.ones_like(cr)
    rc, gc, bc = ((maxc - c) / torch.where(grey, one, cr) for c in (r, g, b))
    h = torch.where(r == maxc, bc - gc, torch.where(g == maxc, (2.0 + rc.double() - bc.double()).float(),
                                                    (4.0 + gc.double() - rc.double()).float()))
    h = torch.fmod(h.double() / 6.0 + 1.0, 1.0).float().double()
    uh = torch.where(grey, 0.0, torch.trunc(h * 255.0).clamp(0, 255))
    us = torch.where(grey, 0.0, torch.trunc((cr / torch.where(maxc > 0, maxc, one)).double() * 255.0).clamp(0, 255))
    hh = (uh + torch.trunc(shift.view(-1, 1, 1).double() * 255).remainder(256)).remainder(256)
    v = maxc.double()
    sector = torch.floor(hh * 6.0 / 255.0)
    f = (hh * 6.0 / 255.0 - sector).float()
    fs = (us / 255.0).float()
    p = torch.round(v * (1.0 - fs.double())).clamp(0, 255)
    q = torch.round(v * (1.0 - (fs * f).double())).clamp(0, 255)
    t = torch.round(v * (1.0 - fs.double() * (1.0 - f.double()))).clamp(0, 255)
    i = sector.long().remainder(6)[None]
    rgb = [torch.stack(c).gather(0, i)[0] for c in ((v, q, p, p, t, v), (t, v, v, q, p, p), (p, p, t, v, v, q))]
    return torch.where((us == 0)[:, None], v[:, None], torch.stack(rgb, 1)).float()


def pil_jitter(x: torch.Tensor, p: dict[str, torch.Tensor]) -> torch.Tensor:
    """The seed's ``ColorJitter`` on PIL images, bit for bit, for 0..255 float RGB batches: step ``p["order"][:, r]``
    (0 brightness, 1 contrast, 2 saturation, 3 hue) in round r, each image its own order, Pillow's rounding after
    every step. Each round computes each step only on the images taking it."""
    def step(k: int, y: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        if k == 0:
            return _blend(torch.zeros_like(y), y, p["brightness"][idx])
        if k == 1:  # ImageEnhance.Contrast: the grey image's mean, rounded, as the degenerate image
            mean = torch.floor(pil_luma(y).double().mean((1, 2, 3), keepdim=True) + 0.5).float()
            return _blend(mean.expand_as(y), y, p["contrast"][idx])
        if k == 2:
            return _blend(pil_luma(y).expand_as(y), y, p["saturation"][idx])
        return pil_hue(y, p["hue"][idx])

    x = x.clone()
    for r in range(4):
        for k in range(4):
            idx = (p["order"][:, r] == k).nonzero().flatten()
            if len(idx):
                x[idx] = step(k, x[idx], idx)
    return x


def color_jitter(x: torch.Tensor, s: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Per-sample brightness, contrast, saturation (factors in [1-s, 1+s]) and hue (shift in [-s, s]) on [0,1] RGB."""
    return apply_jitter(x, jitter_params(x.shape[0], s, x.device, generator))


def adjust_hue(x: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """Rotate hue by ``shift`` (fraction of the colour wheel, per sample) through HSV."""
    r, g, b = x.unbind(1)
    maxc, minc = x.amax(1), x.amin(1)
    delta = maxc - minc
    safe = torch.where(delta > 0, delta, torch.ones_like(delta))
    h = torch.where(maxc == r, ((g - b) / safe) % 6, torch.where(maxc == g, (b - r) / safe + 2, (r - g) / safe + 4))
    h = torch.where(delta > 0, h / 6, torch.zeros_like(h))
    h = (h + shift[:, 0]) % 1.0
    sat = torch.where(maxc > 0, delta / torch.where(maxc > 0, maxc, torch.ones_like(maxc)), torch.zeros_like(maxc))
    # HSV -> RGB with the continuous formula f(k) = v - v*s*max(0, min(k, 4-k, 1)), k = (n + 6h) mod 6
    k = (torch.tensor([5.0, 3.0, 1.0], device=x.device).view(1, 3, 1, 1) + 6 * h[:, None]) % 6
    ramp = torch.clamp(torch.minimum(k, 4 - k), 0, 1)
    return maxc[:, None] - maxc[:, None] * sat[:, None] * ramp


def random_flip(x: torch.Tensor, p: float = 0.5, generator: torch.Generator | None = None) -> torch.Tensor:
    mask = torch.rand(x.shape[0], 1, 1, 1, device=x.device, generator=generator) < p
    return torch.where(mask, x.flip(-1), x)


def crop_offsets(n: int, h: int, w: int, size: int, device,
                 generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample top-left corners of a ``size`` crop out of h x w images."""
    oy = torch.randint(0, h - size + 1, (n,), device=device, generator=generator)
    ox = torch.randint(0, w - size + 1, (n,), device=device, generator=generator)
    return oy, ox


def crop_at(x: torch.Tensor, oy: torch.Tensor, ox: torch.Tensor, size: int) -> torch.Tensor:
    """Crop sample i at (oy[i], ox[i]), as one gather."""
    n, c, h, w = x.shape
    ar = torch.arange(size, device=x.device)
    rows = (oy[:, None] + ar)[:, None, :, None].expand(n, c, size, w)
    cols = (ox[:, None] + ar)[:, None, None, :].expand(n, c, size, size)
    return x.gather(2, rows).gather(3, cols)


def random_crop(x: torch.Tensor, size: int, padding: int = 0,
                generator: torch.Generator | None = None) -> torch.Tensor:
    """RandomCrop with zero padding: an independent offset per sample, done as one gather."""
    if padding:
        x = F.pad(x, (padding,) * 4)
    oy, ox = crop_offsets(x.shape[0], x.shape[2], x.shape[3], size, x.device, generator)
    return crop_at(x, oy, ox, size)


def center_crop(x: torch.Tensor, size: int) -> torch.Tensor:
    h, w = x.shape[-2:]
    top, left = (h - size) // 2, (w - size) // 2
    return x[..., top:top + size, left:left + size]


def _box_radius(sigma: float, passes: int = 3) -> np.float32:
    """Pillow's extended-box radius (in float32, as its C code) whose ``passes`` repetitions approximate a
    Gaussian of standard deviation sigma."""
    f = np.float32
    sigma2 = f(sigma) * f(sigma) / f(passes)
    big_l = np.sqrt(sigma2 * f(12) + f(1), dtype=np.float32)
    l = np.floor((big_l - f(1)) / f(2))
    a = (f(2) * l + f(1)) * (l * (l + f(1)) - f(3) * sigma2) / (f(6) * (sigma2 - (l + f(1)) * (l + f(1))))
    return f(l + a)


def _box_blur_lines(p: torch.Tensor, r: np.float32) -> torch.Tensor:
    """One extended box blur along the last dim in Pillow's 24-bit fixed point (edges repeated)."""
    l = int(r)
    ww = int(np.float32(1 << 24) / (r * np.float32(2) + np.float32(1)))
    fw = ((1 << 24) - (2 * l + 1) * ww) // 2
    n = p.shape[-1]
    pp = torch.cat([p[..., :1].expand(*p.shape[:-1], l + 1), p, p[..., -1:].expand(*p.shape[:-1], l + 1)], -1)
    cs = F.pad(pp.cumsum(-1), (1, 0))
    w = 2 * l + 2
    window = cs[..., w:w + n] - cs[..., 1:1 + n]  # pixels x-l .. x+l
    far = pp[..., :n] + pp[..., w:w + n]  # pixels x-l-1 and x+l+1, weighted by the fraction
    return ((window * ww + far * fw + (1 << 23)) >> 24).clamp_(max=255)


def blur_groups(sigmas: torch.Tensor) -> list[tuple[float, torch.Tensor]]:
    """(sigma, sample indices) for every sigma > 0 of a per-sample sigma vector: computed once per training job,
    so that blurring a batch costs no device-to-host sync."""
    return [(s, (sigmas == s).nonzero().squeeze(1)) for s in sigmas.unique().tolist() if s > 0]


def blur_samples(x: torch.Tensor, sigmas: torch.Tensor | list[tuple[float, torch.Tensor]]) -> torch.Tensor:
    """Blur float [0, 1] images N x C x H x W, sample i with sigma ``sigmas[i]`` (0: unchanged; or groups from
    :func:`blur_groups`), through 8 bits: round to uint8, :func:`gaussian_blur` (Pillow-exact), back to [0, 1]."""
    out = x
    for sigma, idx in blur_groups(sigmas) if isinstance(sigmas, torch.Tensor) else sigmas:
        idx = idx.to(x.device)
        u8 = x[idx].mul(255).round_().clamp_(0, 255).to(torch.uint8)
        out = out.index_copy(0, idx, gaussian_blur(u8, sigma).float().div_(255))
    return out


def gaussian_blur(x: torch.Tensor, sigma: float, passes: int = 3) -> torch.Tensor:
    """Gaussian blur of a uint8 batch N x C x H x W, bit-exact with Pillow's ``GaussianBlur(radius=sigma)``.

    Pillow's radius is the standard deviation. It approximates the Gaussian with three extended box blurs
    per axis (all horizontal passes, then all vertical ones), in 24-bit fixed point, rounding to 8 bits after
    every pass; this does the same on whole batches, so the seed's per-image PIL blur is reproduced exactly.
    """
    if x.dtype != torch.uint8:
        raise TypeError(f"gaussian_blur expects uint8 images, got {x.dtype}")
    if sigma <= 0:
        return x
    r = _box_radius(sigma, passes)
    out = x.long()
    for dim in (-1, -2):
        for _ in range(passes):
            out = _box_blur_lines(out.movedim(dim, -1), r).movedim(-1, dim)
    return out.to(torch.uint8)
