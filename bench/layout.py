"""CPU memory layout: NHWC (channels_last) against NCHW, side by side in one process, per network and task.

What the trainer's "auto" layout (``adcore.train.resolve_layout``) rests on. Cases:

* ``lenet-k1``: one CIFAR-10 LeNet (rep 256) trained model by model, batch 128 + 128, HSC, Adam;
* ``lenet-k10``: a K = 10 job of them (``train_many``, loop mode), as a grouped sweep trains them;
* ``score``: scoring 1,000 CIFAR-10 images with a LeNet (``forward_all``, batches of 256);
* ``resnet-w8`` / ``resnet-w64``: CLAD's classifier, a ResNet-18 with the small-image stem at width 8 (the laptop
  profile) or 64 (the seed's), 10 outputs, batch 128 of 28-px grey images (HSC loss on them: the loss costs nothing beside the net).

Each round times every case in both layouts, one after the other, so that load from other processes hits both
alike; the median round is reported with the NHWC/NCHW time ratio (< 1: NHWC is faster). Random uint8 images (the
content does not change the speed). Run it also under ``ONEDNN_MAX_CPU_ISA=AVX2`` (the path of the AVX2-only
machines); the ResNet cases are skipped there in NHWC unless ``--unsafe``: that layout corrupts the heap on it.

Usage: python bench/layout.py [--rounds 3] [--steps 4] [--cases lenet-k1,lenet-k10,score,resnet-w8,resnet-w64]
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

import torch

from adcore.augment import make_augment
from adcore.nets import ResNet18, make_net
from adcore.objectives import make_objective
from adcore.train import Model, Schedule, forward_all, train_many

CASES = ("lenet-k1", "lenet-k10", "score", "resnet-w8", "resnet-w64")


def images(n: int, shape: tuple[int, ...], seed: int = 0) -> torch.Tensor:
    return torch.randint(0, 256, (n, *shape), generator=torch.Generator().manual_seed(seed), dtype=torch.uint8)


def timed(case: str, nhwc: bool, steps: int) -> float:
    """Seconds of one measurement (a warm-up step excluded where it is a separate call)."""
    cpu = torch.device("cpu")
    if case == "score":
        net, x = make_net("cifar10_lenet", 256), images(1000, (3, 32, 32))
        forward_all(net, x[:256], make_augment("cifar"), cpu, channels_last=nhwc)  # warm-up
        t0 = time.perf_counter()
        forward_all(net, x, make_augment("cifar"), cpu, channels_last=nhwc)
        return time.perf_counter() - t0
    if case.startswith("lenet"):
        k = 10 if case == "lenet-k10" else 1
        nets = [make_net("cifar10_lenet", 256) for _ in range(k)]
        objs = [make_objective("hsc") for _ in range(k)]
        x, oe = images(128 * steps, (3, 32, 32)), images(1024, (3, 32, 32), 1)
    else:
        width = int(case.split("-w")[1])
        nets = [ResNet18(10, 1, width, small_input=True)]
        objs = [make_objective("hsc")]  # the loss costs nothing beside the network
        x, oe = images(128 * steps, (1, 28, 28)), None
    logs = train_many([Model(n, o, x, oe, seed=k) for k, (n, o) in enumerate(zip(nets, objs))],
                      Schedule(epochs=1, batch_size=128), device=cpu, mode="loop", channels_last=nhwc, progress=False)
    return sum(log.train_time for log in logs)  # the job's time (each log holds its 1/K share)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--steps", type=int, default=4, help="training steps per measurement")
    p.add_argument("--cases", default=",".join(CASES))
    p.add_argument("--unsafe", action="store_true", help="also time the ResNet in NHWC under an AVX2 ISA cap")
    a = p.parse_args()
    cases = [c for c in a.cases.split(",") if c]
    avx2 = os.environ.get("ONEDNN_MAX_CPU_ISA", "").upper() in ("AVX2", "AVX", "SSE41")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, ONEDNN_MAX_CPU_ISA="
          f"{os.environ.get('ONEDNN_MAX_CPU_ISA', '(unset)')}")
    times: dict[tuple[str, bool], list[float]] = {}
    for _ in range(a.rounds):
        for case in cases:
            for nhwc in (True, False):
                if nhwc and case.startswith("resnet") and avx2 and not a.unsafe:
                    continue
                times.setdefault((case, nhwc), []).append(timed(case, nhwc, a.steps))
    print(f"{'case':<11} {'NHWC s':>8} {'NCHW s':>8} {'NHWC/NCHW':>10}   (median of {a.rounds} rounds)")
    for case in cases:
        t_cl = statistics.median(times[(case, True)]) if (case, True) in times else float("nan")
        t_nc = statistics.median(times[(case, False)])
        print(f"{case:<11} {t_cl:8.3f} {t_nc:8.3f} {t_cl / t_nc:10.2f}")


if __name__ == "__main__":
    main()
