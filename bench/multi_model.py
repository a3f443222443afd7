"""Training throughput, in one run on one machine: the seed's data pipeline vs adcore, one model vs K models.

(a) seed-style: a torch Dataset with per-sample PIL transforms (ColorJitter(0.01, 0.01, 0.01, 0.01),
    RandomHorizontalFlip, RandomCrop(32, padding=4), ToTensor, x + 0.001 * randn, Normalize(CIFAR mean/std)) and a
    DataLoader (num_workers=0, batch 128) for the normal data and one for OE, one model, as lukasruff/Classification-AD
    trains;
(b) adcore, one model: ``adcore.train.train`` (uint8 pools on the device, batched augmentation there);
(c) adcore, K models in the same steps: ``adcore.train.train_many``.

Same network (cifar10_lenet, rep_dim 256), batch 128 normal + 128 OE, HSC loss, Adam (lr 1e-3, weight decay 5e-7),
random uint8 32 x 32 RGB images (the content does not change the speed). Images/s counts normal + OE images. The
variants run interleaved for ``--rounds`` rounds so that load from other processes hits all of them alike; the
median (and best) round is reported. Prints the ratios and the projected time of the paper's CIFAR-10 table
(10 classes x 10 seeds x 4 objectives x 200 epochs x 5000 normal images x 2 for normal + OE) at (c)'s rate.

Usage: python bench/multi_model.py [--models 10] [--steps 6] [--k-steps 2] [--rounds 2] [--device cpu|cuda]
       [--threads N] [--mode auto|vmap|loop] [--amp] [--channels-last] [--compile]
``--models 10,20,40`` measures several K. Defaults are short on a CPU (about 2 minutes on 2 cores) and longer on
a GPU.
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from adcore.augment import CIFAR_MEAN, CIFAR_STD
from adcore.nets import make_net
from adcore.objectives import make_objective
from adcore.train import Model, Schedule, pick_device, train, train_many

BATCH = 128
SHAPE = (3, 32, 32)
TABLE_IMAGES = 10 * 10 * 4 * 200 * 5000 * 2  # CIFAR-10 table: classes x seeds x objectives x epochs x images x 2


class SeedStyleDataset(Dataset):
    """Per-sample PIL pipeline, as the seed's CIFAR-10 dataset class."""

    def __init__(self, x_nhwc: np.ndarray, target: int):
        from torchvision import transforms

        self.x, self.target = x_nhwc, target
        self.transform = transforms.Compose([
            transforms.ColorJitter(brightness=0.01, contrast=0.01, saturation=0.01, hue=0.01),
            transforms.RandomHorizontalFlip(),
            transforms.RandomCrop(32, padding=4),
            transforms.ToTensor(),
            transforms.Lambda(lambda x: x + 0.001 * torch.randn_like(x)),
            transforms.Normalize(CIFAR_MEAN, CIFAR_STD)])

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int):
        return self.transform(Image.fromarray(self.x[i])), self.target


def _images(n: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, *SHAPE), dtype=torch.uint8, generator=g)


def seed_style(steps: int, device: torch.device, warmup: int = 1) -> float:
    n = BATCH * (steps + warmup)
    normal = DataLoader(SeedStyleDataset(_images(n, 1).permute(0, 2, 3, 1).numpy(), 0), batch_size=BATCH,
                        shuffle=True, num_workers=0, drop_last=True)
    oe = DataLoader(SeedStyleDataset(_images(n, 2).permute(0, 2, 3, 1).numpy(), 1), batch_size=BATCH,
                    shuffle=True, num_workers=0, drop_last=True)
    torch.manual_seed(0)
    net = make_net("cifar10_lenet", 256).to(device).train()
    objective = make_objective("hsc")
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, weight_decay=5e-7)
    t0 = None
    for step, ((x, y), (xo, yo)) in enumerate(zip(normal, oe)):
        if step == warmup:
            if device.type == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
        inputs = torch.cat([x, xo]).to(device)
        targets = torch.cat([y, yo]).to(device)
        loss = objective.loss(net(inputs), targets)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        loss.item()  # the seed logs the loss every step
    return 2 * BATCH * steps / (time.perf_counter() - t0)


def adcore_one(steps: int, device: torch.device, **opts) -> float:
    net = make_net("cifar10_lenet", 256)
    x, oe = _images(BATCH * steps, 3), _images(5000, 4)
    train(net, make_objective("hsc"), x[:BATCH], oe, augment="cifar", epochs=1, device=device, seed=0,
          progress=False, **opts)  # warm-up
    return train(net, make_objective("hsc"), x, oe, augment="cifar", epochs=1, device=device, seed=1,
                 progress=False, **opts).images_per_s


def adcore_many(k: int, steps: int, device: torch.device, mode: str, **opts) -> float:
    def job(k: int, steps: int) -> float:
        nets = [make_net("cifar10_lenet", 256) for _ in range(k)]
        objectives = [make_objective("hsc") for _ in range(k)]
        xs = [_images(BATCH * steps, 10 + i) for i in range(k)]  # one pool per model, as for 10 classes
        oes = [_images(5000, 4)] * k
        logs = train_many([Model(*m, seed=i) for i, m in enumerate(zip(nets, objectives, xs, oes))], Schedule(epochs=1),
                          augment="cifar", device=device, progress=False, mode=mode, **opts)
        return logs[0].images_per_s

    job(min(k, 2), 1)  # warm-up
    return job(k, steps)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default="10", help="K, or a comma list of K values")
    p.add_argument("--steps", type=int, default=None, help="steps per measurement of (a) and (b)")
    p.add_argument("--k-steps", type=int, default=None, help="steps per measurement of (c)")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--device", default=None)
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    p.add_argument("--mode", default="auto", choices=["auto", "vmap", "loop"])
    p.add_argument("--amp", action="store_true", help="bf16 autocast in (b) and (c)")
    p.add_argument("--channels-last", action="store_true")
    p.add_argument("--compile", action="store_true", help="torch.compile in (b) and (c)")
    p.add_argument("--skip-seed", action="store_true", help="leave out (a)")
    a = p.parse_args()
    dev = pick_device(a.device)
    if a.threads:
        torch.set_num_threads(a.threads)
    gpu = dev.type == "cuda"
    steps = a.steps or (50 if gpu else 6)
    k_steps = a.k_steps or (30 if gpu else 2)
    ks = [int(k) for k in a.models.split(",")]
    opts = dict(amp=a.amp, channels_last=a.channels_last, compile=a.compile)
    name = torch.cuda.get_device_name(dev) if gpu else f"cpu, {torch.get_num_threads()} threads"
    mode = a.mode if a.mode != "auto" else ("vmap" if gpu else "loop")
    print(f"device: {dev} ({name}), torch {torch.__version__}; cifar10_lenet rep 256, batch {BATCH} + {BATCH}; "
          f"K-model mode {mode}; options {opts}")
    rates: dict[str, list[float]] = {}
    t_start = time.perf_counter()
    for r in range(a.rounds):
        if not a.skip_seed:
            rates.setdefault("(a) seed-style DataLoader + PIL, 1 model", []).append(seed_style(steps, dev))
        rates.setdefault("(b) adcore, 1 model", []).append(adcore_one(steps, dev, **opts))
        for k in ks:
            rates.setdefault(f"(c) adcore, K={k} models", []).append(adcore_many(k, k_steps, dev, a.mode, **opts))
        print(f"round {r + 1}/{a.rounds} done ({time.perf_counter() - t_start:.0f} s)")
    med = {key: statistics.median(v) for key, v in rates.items()}
    print(f"\n{'variant':44s} {'images/s':>10s} {'best':>10s}   (median and best of {a.rounds} rounds)")
    for key, v in rates.items():
        print(f"{key:44s} {med[key]:10.0f} {max(v):10.0f}")
    one = med["(b) adcore, 1 model"]
    seed_key = "(a) seed-style DataLoader + PIL, 1 model"
    print()
    if seed_key in med:
        print(f"adcore 1 model / seed-style:     {one / med[seed_key]:.2f}x")
    for k in ks:
        many = med[f"(c) adcore, K={k} models"]
        line = f"adcore K={k} / adcore 1 model:   {many / one:.2f}x per image"
        if seed_key in med:
            line += f"   (/ seed-style: {many / med[seed_key]:.2f}x)"
        print(line)
    best_k = max(ks, key=lambda k: med[f"(c) adcore, K={k} models"])
    rate = med[f"(c) adcore, K={best_k} models"]
    print(f"\nprojected CIFAR-10 table ({TABLE_IMAGES / 1e6:.0f} M training images) at K={best_k}: "
          f"{TABLE_IMAGES / rate / 3600:.1f} h on this device ({'GPU' if gpu else 'CPU'}); "
          f"one model: {TABLE_IMAGES / one / 3600:.1f} h"
          + (f"; seed-style: {TABLE_IMAGES / med[seed_key] / 3600:.1f} h" if seed_key in med else ""))
    print(f"total {time.perf_counter() - t_start:.0f} s")


if __name__ == "__main__":
    main()
