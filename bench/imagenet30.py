"""ImageNet-30 at the seed's size: what one training step and its data path cost.

(1) Training images/s (normal + OE) of ``resnet18_cbam`` at 224 px through ``adcore.train.train``: batch 128 + 128,
    one model, HSC, images stored at 256 x 256 as the ImageNet-30 cache holds them and augmented on the device by
    the seed's recipe (jitter 0.01, flip, RandomCrop 224, noise, ImageNet mean / std), with bf16 autocast and
    channels_last each on and off.
(2) The data path alone, no network: adcore's design (one class of uint8 images on the device, gathered and
    augmented in batches) against the design the issue proposed (the memory-mapped uint8 cache streamed by
    DataLoader workers, each image through the seed's per-image PIL transforms), images/s at the full 256 -> 224.

Usage: python bench/imagenet30.py [--device cuda] [--steps 20] [--workers 4] [--results bench/RESULTS.md]
       python bench/imagenet30.py --smoke     # seconds on a CPU: the same code at 40 px (crop 32), batch 8 + 8
``--results`` appends a dated section (device, torch, the figures) to a Markdown file.

Measured on a CPU only (no GPU was lent when this was written; the training figures at 224 px need one). On 2
shared, heavily loaded cores, 1 thread, 2026-12-01, ``--no-train --workers 1 --batches 4``: the streamed
memory-mapped cache with per-image PIL transforms gave 21 images/s, adcore's batched path 8 images/s. On a CPU the
batched path loses at this size: its float colour jitter (hue through HSV) takes ~80% of it (20 images/s with
jitter, 87 without, batch 32), where PIL jitters in uint8 C code. On a GPU the batched path runs where the network
runs and no worker has to keep up; that comparison is what ``--device cuda`` measures.
"""
from __future__ import annotations

import argparse
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from adcore.augment import IMAGENET_MEAN, IMAGENET_STD, Augment, cat_params
from adcore.config import device_name
from adcore.nets import make_net
from adcore.objectives import make_objective
from adcore.train import pick_device, train


def recipe(crop: int) -> Augment:
    """The seed's ImageNet training recipe at crop size ``crop`` (224 for the real thing)."""
    return Augment(jitter=0.01, flip=True, crop=crop, noise=0.001, mean=IMAGENET_MEAN, std=IMAGENET_STD)


def train_rate(device: torch.device, size: int, crop: int, batch: int, steps: int, amp: bool,
               channels_last: bool) -> float:
    """Images/s (normal + OE) of one resnet18_cbam trained for ``steps`` steps of ``batch`` + ``batch``."""
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (batch * steps, 3, size, size), dtype=torch.uint8, generator=g)
    pool = torch.randint(0, 256, (2 * batch, 3, size, size), dtype=torch.uint8, generator=g)
    kw = dict(augment=recipe(crop), device=device, progress=False, amp=amp, channels_last=channels_last,
              batch_size=batch, epochs=1, seed=0)
    net = make_net("resnet18_cbam")
    train(net, make_objective("hsc"), x[:2 * batch], pool, **kw)  # warm-up (cuDNN autotuning, allocator)
    return train(net, make_objective("hsc"), x, pool, **kw).images_per_s


class SeedPipeline(Dataset):
    """The proposed streaming design: rows of a memory-mapped uint8 N x 3 x S x S cache, each through the seed's
    per-image transforms (ColorJitter, RandomHorizontalFlip, RandomCrop, ToTensor, noise, Normalize)."""

    def __init__(self, path: str, crop: int):
        from torchvision import transforms

        self.path, self.arr = path, None
        self.transform = transforms.Compose([
            transforms.ColorJitter(brightness=0.01, contrast=0.01, saturation=0.01, hue=0.01),
            transforms.RandomHorizontalFlip(), transforms.RandomCrop(crop), transforms.ToTensor(),
            transforms.Lambda(lambda t: t + 0.001 * torch.randn_like(t)),
            transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD)])

    def __len__(self) -> int:
        return len(np.load(self.path, mmap_mode="r"))

    def __getitem__(self, i: int) -> torch.Tensor:
        if self.arr is None:
            self.arr = np.load(self.path, mmap_mode="r")
        return self.transform(Image.fromarray(np.ascontiguousarray(self.arr[i].transpose(1, 2, 0))))


def pipeline_rates(device: torch.device, size: int, crop: int, batch: int, batches: int, workers: int) -> dict:
    """Images/s of the two data paths, ``batches`` batches of ``batch`` images each."""
    rng = np.random.default_rng(0)
    n = batch * 4
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "x.npy")
        np.save(path, rng.integers(0, 256, (n, 3, size, size), dtype=np.uint8))
        loader = DataLoader(SeedPipeline(path, crop), batch_size=batch, shuffle=True, num_workers=workers,
                            drop_last=True, persistent_workers=workers > 0)
        it, done, t0 = iter(loader), 0, None
        while done < batches + 1:
            try:
                xb = next(it)
            except StopIteration:
                it = iter(loader)
                continue
            xb.to(device)
            done += 1
            if done == 1:  # the first batch starts the workers
                t0 = time.perf_counter()
        seed_rate = batch * batches / (time.perf_counter() - t0)
        aug, gen = recipe(crop), torch.Generator(device).manual_seed(0)
        X = torch.from_numpy(np.load(path)).to(device)
        rates = []
        for _ in range(2):  # the first round warms up
            t0 = time.perf_counter()
            for _ in range(batches):
                idx = torch.randint(0, n, (batch,), device=device, generator=gen)
                xb = X[idx].float().div_(255)
                out = aug.apply(xb, cat_params([aug.draw(tuple(xb.shape), device, gen)]))
            if device.type == "cuda":
                torch.cuda.synchronize()
            rates.append(batch * batches / (time.perf_counter() - t0))
            del out
    return {"seed-style workers": seed_rate, "adcore batched": rates[-1]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default=None)
    p.add_argument("--steps", type=int, default=20, help="timed training steps per variant")
    p.add_argument("--batches", type=int, default=8, help="timed batches per data path")
    p.add_argument("--workers", type=int, default=4, help="DataLoader workers of the seed-style data path")
    p.add_argument("--smoke", action="store_true", help="tiny sizes on a CPU: checks that the script runs")
    p.add_argument("--no-train", action="store_true", help="measure the data paths only")
    p.add_argument("--results", default=None, help="append the figures to this Markdown file")
    a = p.parse_args()
    dev = pick_device("cpu" if a.smoke and a.device is None else a.device)
    size, crop, batch = (40, 32, 8) if a.smoke else (256, 224, 128)
    steps, batches, workers = (1, 2, min(a.workers, 1)) if a.smoke else (a.steps, a.batches, a.workers)
    lines = [f"device: {device_name(dev)}, torch {torch.__version__}, {platform.machine()}; images {size} px, crop "
             f"{crop}, batch {batch} + {batch}"]
    if not a.no_train:
        lines.append("")
        lines.append("| bf16 autocast | channels_last | training images/s (normal + OE) |")
        lines.append("|---|---|---|")
        variants = [(amp, cl) for amp in (False, True) for cl in (False, True)] if dev.type == "cuda" or a.smoke \
            else [(False, False), (False, True)]  # bf16 on a CPU: slow emulation, not a figure to report
        for amp, cl in variants:
            rate = train_rate(dev, size, crop, batch, steps, amp, cl)
            lines.append(f"| {'on' if amp else 'off'} | {'on' if cl else 'off'} | {rate:,.0f} |")
    rates = pipeline_rates(dev, size, crop, batch, batches, workers)
    lines += ["", f"| data path (no network) | images/s |", "|---|---|",
              f"| memory-mapped cache, per-image PIL transforms, {workers} DataLoader worker(s) | "
              f"{rates['seed-style workers']:,.0f} |",
              f"| uint8 on the {dev.type}, gathered and augmented in batches (adcore) | "
              f"{rates['adcore batched']:,.0f} |"]
    text = "\n".join(lines)
    print(text)
    if a.results:
        with open(a.results, "a") as f:
            f.write(f"\n## bench/imagenet30.py, {time.strftime('%Y-%m-%d')}{' (smoke)' if a.smoke else ''}\n\n"
                    f"{text}\n")


if __name__ == "__main__":
    main()
