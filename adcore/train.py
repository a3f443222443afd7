"""One trainer for every objective.

Each step concatenates ``batch_size`` training samples with ``batch_size`` OE samples (the seed: 128 + 128),
runs one forward/backward pass, and steps Adam. Data stay on the training device as uint8 tensors and are
augmented there in batches, so there is no DataLoader and no host round trip per step for in-memory data.

Every random draw of a run (batch order, OE order, augmentation) comes from the run's own ``torch.Generator``,
seeded from ``seed`` or, without one, by one draw from the global RNG. That is what lets ``adcore.multi`` train
K models in one step and still give each exactly the batches it would see alone.
"""
from __future__ import annotations

import random
import time
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from .augment import Augment, make_augment
from .objectives import Objective, check_finite


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


# Intra-op threads for assembling and augmenting a batch on a CPU. These are ~60 small elementwise ops; with 2
# threads on 2 cores shared with other processes each op waits for a descheduled thread, and one 256-image batch
# measured 1,100 ms with 2 threads vs 190 ms with 1 (while the PIL pipeline of the seed needs ~700 ms). On an idle
# machine the second thread would save ~30 ms of a ~850 ms step. None: leave torch's setting alone.
AUGMENT_THREADS: int | None = 1


@contextmanager
def batch_threads(device: torch.device):
    """Run the block with ``AUGMENT_THREADS`` intra-op threads when on a CPU (restored afterwards)."""
    old = torch.get_num_threads()
    if device.type != "cpu" or AUGMENT_THREADS is None or AUGMENT_THREADS >= old:
        yield
        return
    torch.set_num_threads(AUGMENT_THREADS)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def make_generator(device: torch.device, seed: int | None = None) -> torch.Generator:
    """A run's generator on ``device``: seeded with ``seed``, else with one draw from the global torch RNG (so
    ``torch.manual_seed`` still makes unseeded runs reproducible)."""
    if seed is None:
        seed = int(torch.randint(0, 2**62, (1,)))
    return torch.Generator(device).manual_seed(int(seed))


def pick_device(device: str | None = None) -> torch.device:
    """``None``/"auto" means CUDA when present, else CPU."""
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


class IndexStream:
    """Endless stream of indices into a pool of ``size`` items: concatenated random permutations.

    A pool smaller than a batch is simply cycled (each pass reshuffled), like the seed's re-created OE loader.
    """

    def __init__(self, size: int, device: torch.device, generator: torch.Generator | None = None):
        self.size, self.device, self.generator = size, device, generator
        self.buf = torch.empty(0, dtype=torch.long, device=device)

    def take(self, k: int) -> torch.Tensor:
        while self.buf.numel() < k:
            perm = torch.randperm(self.size, device=self.device, generator=self.generator)
            self.buf = torch.cat([self.buf, perm])
        out, self.buf = self.buf[:k], self.buf[k:]
        return out


class _LoaderStream:
    """Endless batches from a streamed (decoded on the fly) OE dataset, via DataLoader workers."""

    def __init__(self, ds: Dataset, batch_size: int, workers: int, device: torch.device):
        self.loader = DataLoader(ds, batch_size=batch_size, shuffle=True, num_workers=workers, drop_last=False,
                                 persistent_workers=workers > 0)
        self.batch_size, self.device, self.it = batch_size, device, iter(())
        self.pending: list[torch.Tensor] = []

    def take(self, k: int) -> torch.Tensor:
        got = sum(t.shape[0] for t in self.pending)
        while got < k:
            try:
                t = next(self.it)
            except StopIteration:
                self.it = iter(self.loader)
                continue
            self.pending.append(t)
            got += t.shape[0]
        batch = torch.cat(self.pending)
        self.pending = [batch[k:]] if batch.shape[0] > k else []
        return batch[:k].to(self.device, non_blocking=True)


@dataclass
class TrainLog:
    losses: list[float] = field(default_factory=list)  # mean loss per epoch
    epoch_times: list[float] = field(default_factory=list)
    train_time: float = 0.0
    images: int = 0  # images processed (normal + OE), for throughput figures
    models: int = 1  # models trained in the same steps (adcore.multi); times are then the job's share per model
    error: str | None = None  # adcore.multi with keep_going: why this model stopped (non-finite loss)

    @property
    def images_per_s(self) -> float:
        return self.images / self.train_time if self.train_time else 0.0


@torch.no_grad()
def forward_all(net: nn.Module, x: torch.Tensor, augment: Augment, device: torch.device,
                batch_size: int = 1024) -> torch.Tensor:
    """Outputs of ``net`` in eval mode on all of ``x`` (test-time augmentation only)."""
    net.eval()
    outs = [net(augment(x[i:i + batch_size].to(device), train=False)) for i in range(0, len(x), batch_size)]
    return torch.cat(outs)


def autocast(device: torch.device, amp: bool):
    """bf16 autocast for the forward pass when ``amp`` (a no-op context otherwise)."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp)


def train(net: nn.Module, objective: Objective, x: torch.Tensor, oe: torch.Tensor | Dataset | None = None, *,
          targets: torch.Tensor | None = None, augment: str | Augment = "none", epochs: int = 10,
          batch_size: int = 128, oe_batch_size: int | None = None, lr: float = 1e-3, weight_decay: float = 5e-7,
          milestones: tuple[int, ...] = (), gamma: float = 0.1, device: str | torch.device | None = None,
          seed: int | None = None, progress: bool = True, oe_workers: int = 0,
          generator: torch.Generator | None = None, amp: bool = False, channels_last: bool = False,
          compile: bool = False) -> TrainLog:
    """Train ``net`` in place on training data ``x`` (targets default to 0 = normal) plus OE samples (target
    ``objective.oe_target``). One epoch = len(x) // batch_size steps; Adam with MultiStepLR per epoch.

    Random draws come from ``generator`` (on ``device``), else from one seeded with ``seed``, else from one seeded
    by a draw from the global RNG. ``amp``: bf16 autocast of the forward pass (losses in fp32);
    ``channels_last``: NHWC memory format; ``compile``: ``torch.compile`` the network (pays only for long runs).
    """
    if seed is not None:
        seed_everything(seed)
    device = pick_device(device) if not isinstance(device, torch.device) else device
    gen = generator if generator is not None else make_generator(device, seed)
    augment = make_augment(augment)
    net.to(device)
    x = x.to(device)
    targets = torch.zeros(len(x), dtype=torch.long, device=device) if targets is None else targets.to(device)
    if len(targets) != len(x):
        raise ValueError(f"{len(targets)} targets for {len(x)} training samples")
    if len(x) == 0:
        raise ValueError("no training data")
    batch_size = min(batch_size, len(x))
    oe_bs = oe_batch_size or batch_size
    oe_stream = None
    if oe is not None:
        if len(oe) == 0:
            raise ValueError("empty OE set: pass oe=None to train without Outlier Exposure")
        if isinstance(oe, torch.Tensor):
            oe = oe.to(device)
            oe_idx = IndexStream(len(oe), device, gen)
            oe_stream = lambda k: oe[oe_idx.take(k)]  # noqa: E731
        else:
            oe_stream = _LoaderStream(oe, oe_bs, oe_workers, device).take
    oe_t = torch.full((oe_bs,), objective.oe_target, dtype=torch.long, device=device)
    if objective.needs_center and getattr(objective, "c", None) is None:
        objective.set_center(forward_all(net, x, augment, device).mean(0))

    if channels_last:
        net.to(memory_format=torch.channels_last)
    fwd = torch.compile(net) if compile else net
    opt = torch.optim.Adam(net.parameters(), lr=lr, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=list(milestones), gamma=gamma)
    steps = len(x) // batch_size
    log = TrainLog()
    normal_idx = IndexStream(len(x), device, gen)
    bar = tqdm(range(epochs), desc=f"train {objective.name}", disable=not progress, leave=False)
    for epoch in bar:
        net.train()
        t0 = time.perf_counter()
        total = torch.zeros((), device=device)
        for step in range(steps):
            with batch_threads(device):
                idx = normal_idx.take(batch_size)
                xb, tb = x[idx], targets[idx]
                if oe_stream is not None:
                    xb, tb = torch.cat([xb, oe_stream(oe_bs)]), torch.cat([tb, oe_t])
                xb = augment(xb, train=True, generator=gen)
            if channels_last:
                xb = xb.contiguous(memory_format=torch.channels_last)
            with autocast(device, amp):
                out = fwd(xb)
            out = out.float()
            loss = objective.loss(out, tb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            objective.after_step(out, tb, epoch)
            total += loss.detach()
            log.images += len(xb)
        sched.step()
        mean_loss = float(total) / max(steps, 1)
        check_finite(mean_loss, epoch)
        log.losses.append(mean_loss)
        log.epoch_times.append(time.perf_counter() - t0)
        bar.set_postfix(loss=f"{mean_loss:.4g}")
    log.train_time = sum(log.epoch_times)
    return log


def score(net: nn.Module, objective: Objective, x: torch.Tensor, augment: str | Augment = "none",
          device: str | torch.device | None = None, batch_size: int = 1024) -> np.ndarray:
    """Anomaly scores (higher = more anomalous) for every sample of ``x``."""
    device = pick_device(device) if not isinstance(device, torch.device) else device
    net.to(device)
    return objective.score(forward_all(net, x, make_augment(augment), device, batch_size)).float().cpu().numpy()
