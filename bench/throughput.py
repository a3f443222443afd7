"""Training throughput of adcore's trainer: images/s (normal + OE) at batch 128 + 128 on this machine.

Usage: python bench/throughput.py [--steps 20] [--device cpu]
"""
from __future__ import annotations

import argparse
import time

import torch

from adcore.nets import make_net
from adcore.objectives import make_objective
from adcore.train import pick_device, train


def measure(net_name: str, shape: tuple[int, int, int], augment: str, steps: int, device: str | None) -> float:
    n = 128 * steps
    x = torch.randint(0, 256, (n, *shape), dtype=torch.uint8)
    oe = torch.randint(0, 256, (n, *shape), dtype=torch.uint8)
    net = make_net(net_name)
    train(net, make_objective("hsc"), x[:256], oe[:256], augment=augment, epochs=1, device=device,
          progress=False)  # warm-up
    log = train(net, make_objective("hsc"), x, oe, augment=augment, epochs=1, device=device, progress=False)
    return log.images_per_s


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--device", default=None)
    a = p.parse_args()
    dev = pick_device(a.device)
    print(f"device: {dev}, torch {torch.__version__}, threads {torch.get_num_threads()}")
    t0 = time.perf_counter()
    for name, shape, aug in [("mnist_lenet", (1, 28, 28), "none"), ("cifar10_lenet", (3, 32, 32), "cifar")]:
        print(f"{name:14s} ({aug:5s} augmentation) {measure(name, shape, aug, a.steps, a.device):8.0f} images/s")
    print(f"total {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
