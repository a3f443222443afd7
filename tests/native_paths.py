"""Native-kernel smoke checks, one path per invocation, run by tests/test_native.py in a subprocess of their own:
a heap corruption, segfault or hang in oneDNN then fails that one test (with the signal or the timeout) instead
of killing the test run.

    python tests/native_paths.py PATH THREADS

PATH: ``auto`` (a width-4 ResNet-18 and a CIFAR-10 LeNet trained and scored through adcore's trainer in the layout
it chooses; the width-4 ResNet's 4 -> 8, 1 x 1, stride-2 shortcut is the convolution oneDNN 3.12's AVX2 path
corrupted the heap on in NHWC), ``vmap-nhwc`` (two LeNets in vmap mode, grouped convolutions in channels_last),
``bn-nhwc`` (the Fashion-MNIST LeNet, BatchNorm in NHWC, forced on), ``compile`` (``torch.compile`` of a LeNet).
Prints one line per model, ``ok <layout> <loss>``, and exits 0.
"""
from __future__ import annotations

import sys

import torch

from adcore.nets import ResNet18, make_net
from adcore.objectives import make_objective
from adcore.train import Model, Schedule, score, train, train_many


def images(n: int, shape: tuple[int, ...], seed: int) -> torch.Tensor:
    return torch.randint(0, 256, (n, *shape), generator=torch.Generator().manual_seed(seed), dtype=torch.uint8)


def fit(net: torch.nn.Module, shape: tuple[int, ...], **kw) -> None:
    x, oe = images(480, shape, 1), images(480, shape, 2)
    log = train(net, make_objective("hsc"), x, oe, epochs=1, batch_size=16, seed=0, progress=False,
                device="cpu", **kw)  # 30 steps of 16 + 16, as the reproducer
    s = score(net, make_objective("hsc"), images(64, shape, 3), device="cpu")
    assert log.losses and all(map(torch.isfinite, torch.tensor(log.losses))) and s.shape == (64,)
    print("ok", getattr(log, "layout", "?"), f"{log.losses[-1]:.4f}", flush=True)


def main(path: str, threads: int) -> None:
    torch.set_num_threads(threads)
    if path == "auto":
        fit(ResNet18(2, 1, 4, small_input=True), (1, 28, 28))
        fit(ResNet18(2, 3, 4, small_input=True), (3, 32, 32))
        fit(make_net("cifar10_lenet", 32), (3, 32, 32))
    elif path == "vmap-nhwc":
        nets = [make_net("cifar10_lenet", 32) for _ in range(2)]
        x, oe = images(480, (3, 32, 32), 1), images(480, (3, 32, 32), 2)
        logs = train_many([Model(n, make_objective("hsc"), x, oe, seed=k) for k, n in enumerate(nets)],
                          Schedule(epochs=1, batch_size=16), device="cpu", mode="vmap", channels_last=True,
                          progress=False)
        for log in logs:
            print("ok", getattr(log, "layout", "?"), f"{log.losses[-1]:.4f}", flush=True)
    elif path == "bn-nhwc":
        fit(make_net("mnist_lenet", 32), (1, 28, 28), channels_last=True)
    elif path == "compile":
        fit(make_net("mnist_lenet", 32), (1, 28, 28), compile=True)
    else:
        raise SystemExit(f"unknown path {path!r}")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
