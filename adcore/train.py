"""One trainer for every objective, for one model or K models in the same steps.

Each step concatenates ``batch_size`` training samples with ``batch_size`` OE samples (the seed: 128 + 128), runs
one forward/backward pass, and steps Adam. Data stay on the training device as uint8 tensors and are augmented
there in batches, so there is no DataLoader and no host round trip per step for in-memory data.

Why K models: the paper's grids are thousands of runs of small LeNets (the CIFAR-10 table alone is 400 runs of 200
epochs). One LeNet at batch 128 + 128 leaves a GPU mostly idle: each step is a few dozen tiny kernels whose launch
overhead dominates. :func:`train_many` trains K models of one architecture in the same steps; :func:`train` is
the case K = 1. Each model keeps its own data and OE pools (identical pools are stored once), its own
``torch.Generator`` (batch order, OE order, augmentation), BatchNorm statistics, Adam state, LR schedule and
objective instance (centres, the soft-boundary radius), and draws in the same order whatever K is, so a model
trained with others sees exactly the batches it would see alone. Two modes:

* ``"loop"`` (default on a CPU, and for K = 1): the networks run one after the other on their slices of the
  shared batch. Bit for bit equal to K separate runs. On a CPU there is no idle hardware to fill: vmapped (grouped)
  convolutions measured 2-5x slower per image than plain ones on 2 cores, so the loop is the honest choice there.
  Measured with bench/multi_model.py on 2 shared cores (median of 3 rounds): seed-style 66 / adcore one model 69 /
  adcore K=10 73 images/s with 2 threads; 150 / 183 / 177 with 1 thread and channels_last.
* ``"vmap"`` (default on CUDA for K > 1): parameters and buffers are stacked (``torch.func`` ``stack_module_state``
  + ``functional_call`` + ``vmap``), so each layer runs once for all K models; one Adam over the stacked tensors is
  K independent Adams, as Adam is elementwise (fused into one kernel on CUDA). Equal to K separate runs up to
  floating-point rounding. ``channels_last`` lays the K x N batch out so that vmap's grouped convolution sees NHWC.

Either way the step is the same code: forward all models, one loss per model, one backward over their sum (each
model's gradients come from its own loss alone), then every optimizer steps. What a step costs the host grows
little with K: the batch is a few gathers and one augmentation for all models, each model adding only its five
augmentation draws (``Augment.draw_many``), and in vmap mode equal stateless objectives compute their K losses in
one call. Counted on a CPU (dispatched ATen ops that compute, per step, bench/gpu.py's launches section):
K = 100 in vmap mode 928 (9.3 per model), down from 5,089 (51 per model); one model 356 (was 367).

How many models one job trains at once: on CUDA as many as fit in the free memory (:func:`step_bytes`,
:func:`models_that_fit`), the rest in further chunks; on a CPU all. :func:`score_many` scores K trained models in
one vmapped pass over the test set.
"""
from __future__ import annotations

import copy
import dataclasses
import math
import os
import random
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from .augment import Augment, blur_groups, make_augment
from .environment import env
from .objectives import Objective

MODES = ("auto", "vmap", "loop")


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


def pick_device(device: str | torch.device | None = None) -> torch.device:
    """``None``/"auto" means CUDA when present, else CPU; a device this machine lacks raises
    :class:`adcore.config.ConfigError` (one line, before any work)."""
    from .config import check_device

    if isinstance(device, torch.device):
        return device
    check_device(device)
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


# ---- memory layout: NHWC (channels_last) on a CPU only where it is known to be safe and faster ---------------

LAYOUTS = ("auto", "on", "off")
LAYOUT_ENV = "ADCORE_CHANNELS_LAST"  # "on" | "off" | "auto": the default of every run in this process and its children


def check_layout(value: Any, name: str = "channels_last") -> bool | None:
    """``value`` as the trainer takes it: True ("on"), False ("off") or None ("auto"); anything else raises
    :class:`adcore.config.ConfigError` naming it."""
    from .config import ConfigError

    if value is None or isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in LAYOUTS:
        return {"on": True, "off": False, "auto": None}[text]
    raise ConfigError(f"{name}={value!r} is not a layout; choose one of {', '.join(LAYOUTS)}")


def nhwc_safe(net: nn.Module) -> bool:
    """Whether every convolution of ``net`` is of the kind measured safe (and faster) in NHWC on our CPUs: plain
    2-d convolutions of stride 1, as in the LeNets (their 5 x 5 / pad 2 convolutions, any channel count;
    max-pooling does the downsampling).

    Why so narrow: oneDNN 3.12 (inside torch 2.14.1) corrupts the heap in the backward pass of a strided 1 x 1
    convolution with 2 to 7 input channels in channels_last on its AVX2 kernel path (an AMD EPYC without
    AVX-512, or ``ONEDNN_MAX_CPU_ISA=AVX2`` anywhere): "double free or corruption", a segfault or a hang within a
    few steps. A width-4 ResNet-18's shortcut (4 -> 8, 1 x 1, stride 2) is such a convolution. Measured one
    shape at a time (30 Adam steps, batch 16, 1 thread): 1 x 1 / stride 2 with 3, 4, 5, 6, 7 input channels
    abort (2: hangs), 1, 8, 12, 16, 20 run; 3 x 3 and 5 x 5 at strides 1 and 2, 7 x 7 / stride 2, transposed
    convolutions and BatchNorm run.

    Measured with bench/layout.py (NHWC / NCHW time, median of 3 interleaved rounds, 2 threads, AMD EPYC with
    AVX-512 where ``make run`` takes about 30 s; with ``ONEDNN_MAX_CPU_ISA=AVX2`` in brackets): a CIFAR-10 LeNet
    trains in 0.83 (0.92) of the time alone, a K = 10 LeNet job in 0.86 (0.89), scoring 1,000 images takes 0.54
    (0.73); CLAD's ResNet-18 trains in 1.03 of the time at width 8 (the laptop profile) and 0.92 at width 64, on
    AVX-512 only. So NHWC pays for the LeNets on both paths; for the ResNet it is a loss or a few per cent, not
    worth a layout that crashes at small widths: every net with a strided, grouped or transposed convolution stays
    in the contiguous layout."""
    convs = [m for m in net.modules() if isinstance(m, nn.modules.conv._ConvNd)]
    return bool(convs) and all(type(m) is nn.Conv2d and m.stride == (1, 1) and m.groups == 1 for m in convs)


def resolve_layout(channels_last: bool | str | None, nets: Sequence[nn.Module], device: torch.device,
                   mode: str = "loop", image: bool = True) -> bool:
    """Whether to train or score ``nets`` in NHWC. ``channels_last`` True/"on" or False/"off" decides; None/"auto"
    takes ``$ADCORE_CHANNELS_LAST`` when set, else NHWC for image batches on a CPU, model by model ("loop"), when
    every net is :func:`nhwc_safe`. On CUDA "auto" is NCHW (cuDNN's choice is measured by bench/gpu.py instead)."""
    choice = check_layout(channels_last)
    if choice is None:
        choice = check_layout(env(LAYOUT_ENV), LAYOUT_ENV)
    if choice is not None:
        return choice and image
    return device.type == "cpu" and mode == "loop" and image and all(nhwc_safe(n) for n in nets)


class IndexStream:
    """Endless stream of indices into a pool of ``size`` items: concatenated random permutations.

    A pool smaller than a batch is simply cycled (each pass reshuffled), like the seed's re-created OE loader.
    Beyond 2^24 items (all of 80 Million Tiny Images) a pass is a keyed Feistel bijection instead of an explicit
    permutation, computed per drawn position: no 79M-entry permutation is ever built.
    """

    def __init__(self, size: int, device: torch.device | str, generator: torch.Generator | None = None):
        self.size, self.device, self.generator = size, torch.device(device), generator
        self.buf = torch.empty(0, dtype=torch.long, device=self.device)
        self.keys, self.pos = None, 0

    def reset(self) -> None:
        """Drop what is left of the current pass: the next index starts a new permutation."""
        self.buf, self.keys, self.pos = self.buf[:0], None, 0

    def take(self, k: int) -> torch.Tensor:
        if self.size > _PERMUTE_MAX:
            return self._take_keyed(k)
        while self.buf.numel() < k:
            perm = torch.randperm(self.size, device=self.device, generator=self.generator)
            self.buf = torch.cat([self.buf, perm])
        out, self.buf = self.buf[:k], self.buf[k:]
        return out

    def _take_keyed(self, k: int) -> torch.Tensor:
        from .oe import FEISTEL_ROUNDS, feistel

        parts = []
        while k:
            if self.keys is None or self.pos == self.size:
                kw = {"generator": self.generator, "device": self.device}
                self.keys = torch.randint(0, 2**62, (FEISTEL_ROUNDS,), **kw).cpu().numpy().astype(np.uint64)
                self.pos = 0
            m = min(k, self.size - self.pos)
            parts.append(feistel(np.arange(self.pos, self.pos + m, dtype=np.uint64), self.size, self.keys))
            self.pos, k = self.pos + m, k - m
        return torch.from_numpy(np.concatenate(parts)).to(self.device)


_PERMUTE_MAX = 2**24


class _Batches(torch.utils.data.Sampler):
    """An endless sampler of index batches for a DataLoader with ``batch_size=None``: workers get whole batches."""

    def __init__(self, size: int, batch: int, generator: torch.Generator):
        self.stream, self.batch = IndexStream(size, "cpu", generator), batch

    def __iter__(self):
        while True:
            yield self.stream.take(self.batch).tolist()


class _Prefetch:
    """Batches of a heavy lazy OE pool (files read or decoded on access) from DataLoader worker processes, a few
    batches ahead. Its indices come from a generator of its own (seeded by one draw from the run's), so that what
    a run draws does not depend on how far ahead the workers are."""

    def __init__(self, pool: Dataset, batch: int, workers: int, generator: torch.Generator, device: torch.device):
        seed = int(torch.randint(0, 2**62, (1,), generator=generator, device=generator.device))
        self.device = device
        loader = DataLoader(pool, batch_size=None, sampler=_Batches(len(pool), batch, torch.Generator().manual_seed(
            seed)), num_workers=workers, persistent_workers=workers > 0, prefetch_factor=4 if workers else None)
        self.it = iter(loader)

    def take(self, k: int) -> torch.Tensor:
        return next(self.it).to(self.device, non_blocking=True)


def default_workers() -> int:
    """DataLoader workers for heavy OE pools: all cores but one, at most 4."""
    return max(0, min(4, (os.cpu_count() or 1) - 1))


@dataclass
class TrainLog:
    losses: list[float] = field(default_factory=list)  # mean loss per epoch
    epoch_times: list[float] = field(default_factory=list)
    train_time: float = 0.0
    images: int = 0  # images processed (normal + OE), for throughput figures
    models: int = 1  # models trained in the same steps; times are then the job's share per model
    error: str | None = None  # with keep_going: why this model stopped (non-finite loss)
    layout: str = "nchw"  # the memory layout it trained in: "nhwc" (channels_last) or "nchw"

    @property
    def images_per_s(self) -> float:
        return self.images / self.train_time if self.train_time else 0.0


def eval_batch_size(x: torch.Tensor, device: torch.device | None = None) -> int:
    """Images per evaluation batch: 1024, fewer for large images (2^24 values per batch: 85 of 3 x 256 x 256), so
    that scoring a 224-px ResNet stays within a few GB and a memory-mapped test set is read batch by batch. On a
    CPU at most 256: the batch then stays in the cache (scoring a CIFAR-10 LeNet on 1,000 images on 2 cores,
    channels_last: 0.22 s in batches of 64-256, 0.39 s in one batch of 1,000)."""
    cap = 256 if device is not None and device.type == "cpu" else 1024
    return max(1, min(cap, 2**24 // max(1, x[0].numel()))) if len(x) else 1


@torch.no_grad()
def forward_all(net: nn.Module, x: torch.Tensor, augment: Augment, device: torch.device,
                batch_size: int | None = None, channels_last: bool | str | None = None) -> torch.Tensor:
    """Outputs of ``net`` in eval mode on all of ``x`` (test-time augmentation only), ``batch_size`` images at a
    time (default :func:`eval_batch_size`).

    In NHWC where :func:`resolve_layout` says so (``channels_last``: "auto" by default; on a CPU the LeNets), the
    network converted for the pass and back: oneDNN's convolutions are faster on it (a CIFAR-10 LeNet scores 1,000
    images in 0.27 s against 0.50 s in NCHW, 2 cores, bench/layout.py; 0.36 s under ``ONEDNN_MAX_CPU_ISA=AVX2``;
    outputs equal up to float rounding, 5e-6 on values of about 4). Scoring was a fifth of the laptop book's time,
    one pass per run."""
    net.eval()
    batch_size = batch_size or eval_batch_size(x, device)
    nhwc = resolve_layout(channels_last, [net], device, image=x.dim() == 4)
    if nhwc:
        net.to(memory_format=torch.channels_last)
    outs = []
    try:
        for i in range(0, len(x), batch_size):
            xb = augment(x[i:i + batch_size].to(device), train=False)
            outs.append(net(xb.contiguous(memory_format=torch.channels_last) if nhwc else xb))
    finally:
        if nhwc:
            net.to(memory_format=torch.contiguous_format)
    return torch.cat(outs)


def autocast(device: torch.device, amp: bool):
    """bf16 autocast for the forward pass when ``amp`` (a no-op context otherwise)."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp)


def _as_list(v, k: int, name: str) -> list:
    if v is None or isinstance(v, (torch.Tensor, Dataset)):
        return [v] * k
    v = list(v)
    if len(v) != k:
        raise ValueError(f"{len(v)} {name} for {k} models")
    return v


def _pool(tensors: Sequence[torch.Tensor], device: torch.device) -> tuple[torch.Tensor, list[int]]:
    """Concatenate the distinct tensors (by identity) on ``device``; the offset of each entry in the result."""
    first: dict[int, int] = {}
    parts: list[torch.Tensor] = []
    at = 0
    for t in tensors:
        if id(t) not in first:
            first[id(t)] = at
            parts.append(t)
            at += len(t)
    return torch.cat([p.to(device) for p in parts]), [first[id(t)] for t in tensors]


@dataclass(frozen=True)
class Schedule:
    """The optimisation every model of a job shares: ``epochs`` passes of len(x) // batch_size steps over a fresh
    order of the training data (the remainder dropped: the seed's DataLoader with shuffle and drop_last), each step
    ``batch_size`` training plus ``oe_batch_size`` OE images (None: the batch size; the seed's 128 + 128), Adam
    (``lr``, ``weight_decay``) with MultiStepLR (``milestones``, ``gamma``) stepped per epoch. A RunConfig's is
    :func:`adcore.experiment.schedule`."""
    epochs: int = 10
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 5e-7
    milestones: tuple[int, ...] = ()
    gamma: float = 0.1
    oe_batch_size: int | None = None


@dataclass(frozen=True)
class Model:
    """One model of a job and what it learns from. ``net`` is trained in place; ``objective`` is its own instance
    (it may hold a centre or a radius); ``x`` its training data with ``targets`` (None: all 0 = normal); ``oe`` its
    OE pool, a tensor or an ``adcore.oe.LazyImages`` (pass the same object to models that share a pool: it is
    stored on the device once), or None for every model of the job; ``blur`` the Gaussian blur sigma of its OE
    images (applied in the batch pipeline where the seed applies it, see ``Augment.apply``). Its random draws come
    from ``generator``, else from one seeded with ``seed``, else from one seeded by a draw from the global RNG."""
    net: nn.Module
    objective: Objective
    x: torch.Tensor
    oe: torch.Tensor | Dataset | None = None
    targets: torch.Tensor | None = None
    blur: float = 0.0
    seed: int | None = None
    generator: torch.Generator | None = None


def train(net: nn.Module, objective: Objective, x: torch.Tensor, oe: torch.Tensor | Dataset | None = None, *,
          targets: torch.Tensor | None = None, seed: int | None = None, generator: torch.Generator | None = None,
          device: str | torch.device | None = None, blur: float = 0.0, **kw) -> TrainLog:
    """Train ``net`` in place on training data ``x`` (targets default to 0 = normal) plus OE samples (target
    ``objective.oe_target``): :func:`train_many` with one model. ``kw``: the :class:`Schedule`'s fields and
    train_many's options. Random draws come from ``generator`` (on ``device``), else from one seeded with ``seed``
    (which also seeds the global RNGs), else from one seeded by a draw from the global RNG. Raises
    ``FloatingPointError`` when the loss becomes non-finite."""
    if seed is not None:
        seed_everything(seed)
    device = pick_device(device)
    gen = generator if generator is not None else make_generator(device, seed)
    plan = Schedule(**{k: kw.pop(k) for k in SCHEDULE_FIELDS if k in kw})
    return train_many([Model(net, objective, x, oe, targets, blur, generator=gen)], plan, device=device, mode="loop",
                      **kw)[0]


def resolve_mode(mode: str, device: torch.device, k_models: int) -> str:
    """``"auto"``: vmap on CUDA for more than one model, else loop (see the module docstring)."""
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; choose one of {', '.join(MODES)}")
    if mode == "auto":
        return "vmap" if device.type == "cuda" and k_models > 1 else "loop"
    return mode


# ---- memory: how many models fit in one job ---------------------------------------------------------------------

# What one model's training step keeps on the device, per sample of its batch, in units of the float32 layer
# outputs of one forward pass: the tensors saved for the backward pass (each layer's input, max-pool indices) plus
# the gradients flowing back. 2 is an upper bound for LeNet-style nets; bench/gpu.py measures the true peak against
# this estimate on a GPU.
ACT_COPIES = 2
AUG_COPIES = 16  # float copies of a sample that batch assembly and augmentation hold at once (padding included)
MEM_FRACTION = 0.85  # of the free device memory that a job may plan to use (the rest: allocator slack, scoring)


def step_bytes(net: nn.Module, sample_shape: Sequence[int], n_batch: int) -> int:
    """Estimated device memory one model of a K-model job needs: 20 bytes per parameter (the network's own
    weights, the stacked copy vmap trains, its gradient and Adam's two moments), its buffers twice, and per sample
    of a batch of ``n_batch`` the saved activations (``ACT_COPIES`` x the float32 outputs of every layer, counted
    by a forward pass on the meta device: no memory, no device needed) plus the batch's augmentation
    (``AUG_COPIES`` float copies of the sample)."""
    meta = copy.deepcopy(net).to("meta").train()
    count = [0]

    def hook(module, args, out):
        if isinstance(out, torch.Tensor):
            count[0] += out.numel()

    handles = [m.register_forward_hook(hook) for m in meta.modules() if not any(True for _ in m.children())]
    try:
        with torch.no_grad():
            meta(torch.empty(2, *sample_shape, device="meta"))  # 2 samples: BatchNorm needs more than one
    finally:
        for h in handles:
            h.remove()
    per_sample = count[0] // 2
    params = sum(p.numel() for p in net.parameters())
    buffers = sum(b.numel() * b.element_size() for b in net.buffers())
    return 20 * params + 2 * buffers + 4 * n_batch * (ACT_COPIES * per_sample + AUG_COPIES * math.prod(sample_shape))


def models_that_fit(per_model: int, shared: int = 0, free: int | None = None,
                    device: torch.device | str | None = None) -> int:
    """How many models of ``per_model`` bytes (:func:`step_bytes`) fit next to ``shared`` bytes (the job's data
    pools) in ``MEM_FRACTION`` of ``free`` bytes; at least 1. ``free`` defaults to the CUDA device's free memory
    (``torch.cuda.mem_get_info``) plus what PyTorch's allocator holds unused."""
    if per_model <= 0:
        raise ValueError(f"per_model must be positive, got {per_model}")
    if free is None:
        dev = torch.device(device if device is not None else "cuda")
        if dev.type != "cuda":
            raise ValueError(f"free memory is only known for CUDA devices, not {dev}; pass free=")
        free = torch.cuda.mem_get_info(dev)[0] + torch.cuda.memory_reserved(dev) - torch.cuda.memory_allocated(dev)
    return max(1, int((free * MEM_FRACTION - shared) // per_model))


def _nbytes(tensors: Sequence) -> int:
    """Bytes of the distinct tensors (by identity) among ``tensors``; other entries count 0."""
    seen = {id(t): t for t in tensors if isinstance(t, torch.Tensor)}
    return sum(t.numel() * t.element_size() for t in seen.values())


SCHEDULE_FIELDS = tuple(f.name for f in dataclasses.fields(Schedule))


@dataclass(frozen=True)
class _Job:
    """What train_many resolved once for all its chunks: the device, mode, layout and the shared step shape."""
    augment: Augment
    device: torch.device
    mode: str
    channels_last: bool
    amp: bool
    compile: bool
    keep_going: bool
    oe_workers: int
    progress: bool
    bs: int
    steps: int
    oe_bs: int


def train_many(models: Sequence[Model], schedule: Schedule = Schedule(), *, augment: str | Augment = "none",
               device: str | torch.device | None = None, mode: str = "auto", amp: bool = False,
               channels_last: bool | str | None = None, compile: bool = False, keep_going: bool = False,
               oe_workers: int | None = None, max_models: int | None = None, progress: bool = True) -> list[TrainLog]:
    """Train K = len(models) models in place, in the same steps, model k as ``train`` would train it alone
    (:class:`Model`: its network, objective, data, OE pool, blur and random stream) under one :class:`Schedule`.

    All models need the same batch size and number of steps per epoch, and either all or none an OE pool.
    ``mode``: "vmap", "loop" or "auto" (see the module docstring). ``amp``: bf16 autocast of the forward pass
    (losses in fp32); ``channels_last``: NHWC memory format, True/"on", False/"off" or None/"auto"
    (:func:`resolve_layout`: on a CPU model by model, for nets that are :func:`nhwc_safe`, i.e. the LeNets; results
    equal up to float rounding); ``compile``: ``torch.compile``. ``keep_going``: a model whose loss becomes
    non-finite gets ``log.error`` and stops instead of stopping the job with ``FloatingPointError``. ``oe_workers``:
    DataLoader workers for heavy lazy OE pools (default :func:`default_workers`). ``max_models``: train at most this
    many at once (consecutive chunks one after the other, each as it would be alone); None: on CUDA as many as
    :func:`models_that_fit` the free memory, on a CPU all. Returns one :class:`TrainLog` per model; its times are
    the job's share per model (job time / K of its chunk), so ``images_per_s`` is the job's throughput."""
    models = list(models)
    k_models = len(models)
    if k_models == 0:
        raise ValueError("no models to train")
    if len({id(m.objective) for m in models}) != k_models:
        raise ValueError("every model needs its own objective instance (they hold per-model state)")
    if max_models is not None and max_models < 1:
        raise ValueError(f"max_models must be at least 1, got {max_models}")
    device = pick_device(device)
    mode = resolve_mode(mode, device, k_models)
    gens = [m.generator if m.generator is not None else make_generator(device, m.seed) for m in models]
    if len({id(g) for g in gens}) != k_models:
        raise ValueError("every model needs its own generator (its draws must not depend on the other models)")
    xs, tgts, oes = [m.x for m in models], [m.targets for m in models], [m.oe for m in models]
    if any(len(x) == 0 for x in xs):
        raise ValueError("no training data")
    if len({(x.dtype, tuple(x.shape[1:])) for x in xs}) != 1:
        raise ValueError("all training sets need the same dtype and sample shape")
    batch_size = schedule.batch_size
    bss = {min(batch_size, len(x)) for x in xs}
    steps_set = {len(x) // min(batch_size, len(x)) for x in xs}
    if len(bss) != 1 or len(steps_set) != 1:
        raise ValueError(f"models must share batch size and steps per epoch; got batch sizes {sorted(bss)} and "
                         f"steps {sorted(steps_set)} (training set sizes {sorted({len(x) for x in xs})})")
    for x, t in zip(xs, tgts):
        if t is not None and len(t) != len(x):
            raise ValueError(f"{len(t)} targets for {len(x)} training samples")
    has_oe = oes[0] is not None
    if any((o is not None) != has_oe for o in oes):
        raise ValueError("either every model has an OE pool or none has")
    if has_oe and any(len(o) == 0 for o in oes):
        raise ValueError("empty OE set: pass oe=None to train without Outlier Exposure")
    sample_shape = tuple(xs[0].shape[1:])
    if has_oe and any(o.dtype != xs[0].dtype or tuple(o.shape[1:]) != sample_shape if isinstance(o, torch.Tensor)
                      else tuple(o.shape) != sample_shape for o in oes):
        raise ValueError("OE pools need the training data's dtype and sample shape")
    bs = bss.pop()
    oe_bs = schedule.oe_batch_size or bs
    job = _Job(make_augment(augment), device, mode,
               resolve_layout(channels_last, [m.net for m in models], device, mode, image=len(sample_shape) == 3),
               amp, compile, keep_going, default_workers() if oe_workers is None else oe_workers, progress, bs,
               steps_set.pop(), oe_bs)
    if max_models is None:
        max_models = k_models if device.type != "cuda" else models_that_fit(
            step_bytes(models[0].net, sample_shape, bs + (oe_bs if has_oe else 0)), _nbytes([*xs, *tgts, *oes]),
            device=device)
    return [log for a in range(0, k_models, max_models)
            for log in _train_chunk(models[a:a + max_models], gens[a:a + max_models], schedule, job)]


def _train_chunk(models: list[Model], gens: list[torch.Generator], schedule: Schedule, job: _Job) -> list[TrainLog]:
    """One chunk of :func:`train_many`: its models in the same steps (validated and resolved there)."""
    nets, objectives, xs, oes, tgts = ([getattr(m, f) for m in models] for f in ("net", "objective", "x", "oe",
                                                                                 "targets"))
    sigmas = [float(m.blur) for m in models]
    k_models, augment, device, mode, channels_last = len(models), job.augment, job.device, job.mode, job.channels_last
    bs, steps, oe_bs, has_oe = job.bs, job.steps, job.oe_bs, oes[0] is not None
    sample_shape = tuple(xs[0].shape[1:])
    n_batch = bs + (oe_bs if has_oe else 0)
    X, x_off = _pool(xs, device)
    tg = [torch.zeros(len(x), dtype=torch.long) if t is None else t for x, t in zip(xs, tgts)]
    T, t_off = _pool(tg, device)
    T = T.long()
    x_off_t = torch.tensor(x_off, device=device)[:, None]
    t_off_t = torch.tensor(t_off, device=device)[:, None]
    blur = None
    if has_oe:
        tensors = [o for o in oes if isinstance(o, torch.Tensor)]
        if tensors:
            O, offsets = _pool(tensors, device)
            o_off = iter(offsets)
        kinds = ["gather" if isinstance(o, torch.Tensor) else "prefetch" if getattr(o, "heavy", True) else "fetch"
                 for o in oes]
        oe_t = torch.tensor([[obj.oe_target] * oe_bs for obj in objectives], dtype=torch.long, device=device)
        if any(sigmas):
            blur = blur_groups(torch.tensor([[0.0] * bs + [sg] * oe_bs for sg in sigmas]).flatten())
    batch_shape = (n_batch, *sample_shape)

    for net in nets:
        net.to(device)
    for k, (net, obj) in enumerate(zip(nets, objectives)):
        if obj.needs_center and getattr(obj, "c", None) is None:
            obj.set_center(forward_all(net, X[x_off[k]:x_off[k] + len(xs[k])], augment, device,
                                       channels_last=channels_last).mean(0))

    normal_streams = [IndexStream(len(x), device, g) for x, g in zip(xs, gens)]
    oe_streams = [(_Prefetch(o, oe_bs, job.oe_workers, g, device), None) if kind == "prefetch" else
                  (IndexStream(len(o), device, g), next(o_off) if kind == "gather" else o)
                  for o, g, kind in zip(oes, gens, kinds)] if has_oe else []
    all_gather = has_oe and set(kinds) == {"gather"}
    if all_gather:
        o_off_t = torch.tensor([where for _, where in oe_streams], device=device)[:, None]

    def next_batch() -> tuple[torch.Tensor, torch.Tensor]:
        """K batches, each drawn from its model's generator in a fixed order: normal indices, OE indices,
        augmentation factors (each generator serves one model, so drawing model by model per kind keeps every
        model's order). Returns images K x N x C x H x W and targets K x N. A few gathers and one augmentation
        for all K; the per-model work is taking indices and the augmentation draws."""
        ni = torch.stack([s.take(bs) for s in normal_streams])  # K x bs, each into its own pool
        xb = X[(ni + x_off_t).flatten()].view(k_models, bs, *sample_shape)
        tb = T[(ni + t_off_t).flatten()].view(k_models, bs)
        if has_oe:
            if all_gather:
                oj = torch.stack([stream.take(oe_bs) for stream, _ in oe_streams])
                ob = O[(oj + o_off_t).flatten()].view(k_models, oe_bs, *sample_shape)
            else:
                oi = []
                for (stream, where), kind in zip(oe_streams, kinds):
                    j = stream.take(oe_bs)
                    oi.append(O[j + where] if kind == "gather" else j if kind == "prefetch" else
                              where.fetch(j.cpu()).to(device))
                ob = torch.stack(oi)
            xb, tb = torch.cat([xb, ob.to(xb.dtype)], 1), torch.cat([tb, oe_t], 1)
        params = augment.draw_many(batch_shape, device, gens)
        xb = xb.reshape(k_models * n_batch, *sample_shape)
        xb = xb.float().div_(255) if xb.dtype == torch.uint8 else xb.float()
        xb = augment.apply(xb, params, blur)
        return xb.view(k_models, n_batch, *xb.shape[1:]), tb

    forward, modules, opts = _forward(nets, mode, schedule.lr, schedule.weight_decay, job.amp, channels_last,
                                      job.compile, device)
    step_losses = _losses(objectives, mode)
    hooked = [k for k, o in enumerate(objectives) if type(o).after_step is not Objective.after_step]
    scheds = [torch.optim.lr_scheduler.MultiStepLR(o, milestones=list(schedule.milestones), gamma=schedule.gamma)
              for o in opts]
    logs = [TrainLog(models=k_models, layout="nhwc" if channels_last else "nchw") for _ in range(k_models)]
    active = list(range(k_models))
    bar = tqdm(range(schedule.epochs), desc=f"train {objectives[0].name}" if k_models == 1 else
               f"train {k_models} models ({mode})", disable=not job.progress, leave=False)
    for epoch in bar:
        t0 = time.perf_counter()
        totals = torch.zeros(k_models, device=device)
        for m in modules:
            m.train()
        for stream in normal_streams:  # a fresh order each epoch, the remainder dropped (shuffle + drop_last)
            stream.reset()
        for _ in range(steps):
            with batch_threads(device):
                xb, tb = next_batch()
            out = forward(xb)  # loop: a list (heads may differ); vmap: K x N x ...
            out = [o.float() for o in out] if mode == "loop" else out.float()
            losses = step_losses(out, tb)
            for o in opts:
                o.zero_grad(set_to_none=True)
            losses.sum().backward()
            for o in opts:
                o.step()
            for k in hooked:
                objectives[k].after_step(out[k].detach(), tb[k], epoch)
            totals += losses.detach()
        for s in scheds:
            s.step()
        means = [t / max(steps, 1) for t in totals.tolist()]  # float32 sums, Python division
        dt = (time.perf_counter() - t0) / k_models
        for k in list(active):
            if not math.isfinite(means[k]):
                msg = f"loss became {means[k]} in epoch {epoch}; lower the learning rate or check inputs"
                if not job.keep_going:
                    raise FloatingPointError(msg if k_models == 1 else f"model {k}: {msg}")
                logs[k].error = msg
                active.remove(k)
                continue
            logs[k].losses.append(means[k])
            logs[k].epoch_times.append(dt)
            logs[k].images += steps * n_batch
        if not active:
            break
        bar.set_postfix(loss=f"{sum(means[k] for k in active) / len(active):.4g}")
    for log in logs:
        log.train_time = sum(log.epoch_times)
    if mode == "vmap":
        params, buffers = forward.state
        with torch.no_grad():
            for k, net in enumerate(nets):
                net.load_state_dict({n: t[k] for n, t in (*params.items(), *buffers.items())})
    return logs


def _losses(objectives: Sequence[Objective], mode: str) -> Callable[[Any, torch.Tensor], torch.Tensor]:
    """The step's K losses from the outputs and targets (K x N). Loop: model by model (bit for bit a lone run's).
    vmap: models whose objectives are ``stateless`` and equal (same class and settings) in one vmapped call, so
    that a step launches a few loss kernels instead of a few per model; the others model by model."""
    k_models = len(objectives)
    if mode == "loop":
        return lambda out, tb: torch.stack([objectives[k].loss(out[k], tb[k]) for k in range(k_models)])
    from torch.func import vmap

    groups: dict[Any, list[int]] = {}
    for k, obj in enumerate(objectives):
        groups.setdefault((type(obj), repr(sorted(vars(obj).items()))) if obj.stateless else k, []).append(k)
    parts = [(objectives[idx[0]], idx, None if idx == list(range(k_models)) else torch.tensor(idx))
             for idx in groups.values()]
    order = [k for _, idx, _ in parts for k in idx]
    inverse = None if order == list(range(k_models)) else torch.argsort(torch.tensor(order))
    on: dict[torch.device, tuple] = {}

    def losses(out: torch.Tensor, tb: torch.Tensor) -> torch.Tensor:
        if out.device not in on:  # index tensors on the outputs' device, made once
            on[out.device] = ([None if s is None else s.to(out.device) for _, _, s in parts],
                              None if inverse is None else inverse.to(out.device))
        sels, inv = on[out.device]
        vals = []
        for (obj, idx, _), sel in zip(parts, sels):
            if len(idx) == 1:
                vals.append(obj.loss(out[idx[0]], tb[idx[0]])[None])
            else:
                vals.append(vmap(obj.loss)(out, tb) if sel is None else vmap(obj.loss)(out[sel], tb[sel]))
        v = vals[0] if len(vals) == 1 else torch.cat(vals)
        return v if inv is None else v[inv]

    return losses


# On CUDA, Adam's update as one fused kernel over all parameters instead of a dozen element-wise kernels per
# parameter tensor (bench/gpu.py measures it against the default; off there to compare).
FUSED_ADAM = True


def _adam(params: Sequence[torch.Tensor], lr: float, weight_decay: float) -> torch.optim.Adam:
    """Adam with ``fused=True`` when every parameter is a floating-point CUDA tensor (and ``FUSED_ADAM``): the same
    update rule."""
    params = list(params)
    fused = FUSED_ADAM and bool(params) and all(p.is_cuda and p.is_floating_point() for p in params)
    return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, **({"fused": True} if fused else {}))


def _channels_last_5d(xb: torch.Tensor) -> torch.Tensor:
    """K x N x C x H x W with N, H, W, K, C memory order: vmap's batching rule for a convolution merges K into
    the channels, and this layout makes that merged (N, K*C, H, W) input a channels_last view, no copy."""
    return xb.permute(1, 3, 4, 0, 2).contiguous().permute(3, 0, 4, 1, 2)


def _forward(nets: Sequence[nn.Module], mode: str, lr: float, weight_decay: float, amp: bool, channels_last: bool,
             compile: bool, device: torch.device) -> tuple[Callable, list[nn.Module], list[torch.optim.Optimizer]]:
    """The K-model forward pass (K x N x ... -> K outputs), the modules to put in train mode each epoch, and the
    optimizers: one Adam per network (loop) or one over the stacked parameters (vmap)."""
    if mode == "loop":
        if channels_last:
            for net in nets:
                net.to(memory_format=torch.channels_last)
        fwds = [torch.compile(net) if compile else net for net in nets]

        def loop(xb: torch.Tensor) -> list[torch.Tensor]:
            outs = []
            for f, xk in zip(fwds, xb):
                with autocast(device, amp):
                    outs.append(f(xk.contiguous(memory_format=torch.channels_last) if channels_last else xk))
            return outs

        return loop, list(nets), [_adam(n.parameters(), lr, weight_decay) for n in nets]

    params, buffers, base = _stack(nets, True)
    if amp:  # vmap's BatchNorm rule wants one dtype: feed BatchNorm fp32 (convs and matmuls stay bf16)
        for m in base.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.register_forward_pre_hook(lambda mod, args: (args[0].float(), *args[1:]))
    stacked = _vmapped(base)
    stacked = torch.compile(stacked) if compile else stacked

    def vmapped(xb: torch.Tensor) -> torch.Tensor:
        if channels_last and xb.dim() == 5:
            xb = _channels_last_5d(xb)
        with autocast(device, amp):
            return stacked(params, buffers, xb)

    vmapped.state = (params, buffers)  # type: ignore[attr-defined]
    return vmapped, [base], [_adam(list(params.values()), lr, weight_decay)]


def _stack(nets: Sequence[nn.Module], training: bool) -> tuple[dict, dict, nn.Module]:
    """The K networks' parameters and buffers stacked along a new first dim (``torch.func.stack_module_state``;
    the parameters are new leaf tensors), and a stateless copy of the architecture on the meta device, all in
    train or eval mode."""
    from torch.func import stack_module_state

    shapes = [[(n, tuple(t.shape)) for n, t in net.state_dict().items()] for net in nets]
    if any(s != shapes[0] for s in shapes) or len({type(net) for net in nets}) != 1:
        raise ValueError("vmap mode needs networks of one architecture")
    for net in nets:
        net.train(training)  # stack_module_state wants one mode (forward_all, for centres, left some in eval)
    params, buffers = stack_module_state(list(nets))
    return params, buffers, copy.deepcopy(nets[0]).to("meta")


def _vmapped(base: nn.Module, in_dims: tuple = (0, 0, 0)) -> Callable:
    """``f(params, buffers, x)``: ``base`` run with model k's parameters and buffers on input k, for all k at once."""
    from torch.func import functional_call, vmap

    def one(p: dict, b: dict, x: torch.Tensor) -> torch.Tensor:
        return functional_call(base, (p, b), (x,))

    return vmap(one, in_dims=in_dims)


def score(net: nn.Module, objective: Objective, x: torch.Tensor, augment: str | Augment = "none",
          device: str | torch.device | None = None, batch_size: int | None = None,
          channels_last: bool | str | None = None) -> np.ndarray:
    """Anomaly scores (higher = more anomalous) for every sample of ``x`` (``channels_last``: as in
    :func:`forward_all`)."""
    device = pick_device(device)
    net.to(device)
    out = forward_all(net, x, make_augment(augment), device, batch_size, channels_last)
    return objective.score(out).float().cpu().numpy()


SCORE_IMAGES = 2**15  # images (of all K models together) per vmapped scoring pass: bounds its activation memory


@torch.no_grad()
def score_many(nets: Sequence[nn.Module], objectives: Sequence[Objective], xs: torch.Tensor | Sequence[torch.Tensor],
               augment: str | Augment = "none", device: str | torch.device | None = None, mode: str = "auto",
               batch_size: int = 1024, channels_last: bool | str | None = None) -> list[np.ndarray]:
    """``[score(nets[k], objectives[k], xs[k], augment, device) for k in range(K)]``, K models in one pass.

    Why: scoring 200 models one by one is 200 passes over the test set of a few dozen small kernels per batch;
    vmap (the stacked networks, as in training) runs each layer once for all K. ``xs``: one test set for all or
    one per model; when all are the same tensor object it is read and transformed once per batch and broadcast.
    ``mode``: as in :func:`train_many` ("auto": vmap on CUDA for K > 1); vmap needs one architecture
    (test sets of several sizes: one pass per size) and agrees with :func:`score` up to floating-point rounding;
    "loop" is :func:`score` per model."""
    k_models = len(nets)
    if len(objectives) != k_models:
        raise ValueError(f"{len(objectives)} objectives for {k_models} models")
    device = pick_device(device)
    mode = resolve_mode(mode, device, k_models)
    xs = _as_list(xs, k_models, "test sets")
    augment = make_augment(augment)
    if mode == "loop":
        return [score(n, o, x, augment, device, batch_size, channels_last) for n, o, x in zip(nets, objectives, xs)]
    if len({len(x) for x in xs}) > 1:  # one vmapped pass per test-set size
        by_size: dict[int, list[int]] = {}
        for k, x in enumerate(xs):
            by_size.setdefault(len(x), []).append(k)
        out: dict[int, np.ndarray] = {}
        for idx in by_size.values():
            part = score_many([nets[k] for k in idx], [objectives[k] for k in idx], [xs[k] for k in idx], augment,
                              device, mode, batch_size, channels_last)
            out.update(zip(idx, part))
        return [out[k] for k in range(k_models)]
    shared = len({id(x) for x in xs}) == 1
    for net in nets:
        net.to(device)
    params, buffers, base = _stack(nets, False)
    run = _vmapped(base, (0, 0, None) if shared else (0, 0, 0))
    step = max(1, min(batch_size, SCORE_IMAGES // k_models))
    n = len(xs[0])
    outs = []
    for a in range(0, n, step):
        if shared:
            xb = augment(xs[0][a:a + step].to(device), train=False)
        else:
            xb = torch.stack([x[a:a + step].to(device) for x in xs])
            xb = augment(xb.flatten(0, 1), train=False).unflatten(0, (k_models, -1))
        outs.append(run(params, buffers, xb))
    out = torch.cat(outs, 1)
    return [o.score(out[k]).float().cpu().numpy() for k, o in enumerate(objectives)]
