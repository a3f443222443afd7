"""Many independent models trained in one step: the K-model path for sweeps.

Why: the paper's grids are thousands of runs of small LeNets (the CIFAR-10 table alone is 10 classes x 10 seeds
x 4 objectives = 400 runs of 200 epochs). One LeNet at batch 128 + 128 leaves a GPU mostly idle: each step is a
few dozen tiny kernels whose launch overhead dominates. Training K models of one architecture in the same step
multiplies the work per kernel by K at little extra cost.

How: :func:`train_many` keeps, for every model, its own normal pool and OE pool (they may differ: classes, seeds,
OE sizes, blur), its own ``torch.Generator`` (batch order, OE order, augmentation), BatchNorm statistics, Adam
state, LR schedule and objective instance (centres of Deep SVDD / Deep SAD, the soft-boundary radius). Per step,
every model draws its indices and augmentation factors from its own generator exactly as :func:`adcore.train.train`
draws them; the pools live on the device as uint8 tensors (identical pools stored once), all K batches are
gathered with one index and augmented in one batched call. Then, by ``mode``:

* ``"vmap"`` (default on CUDA): the K networks' parameters and buffers are stacked (``torch.func``
  ``stack_module_state`` + ``functional_call`` + ``vmap``), so each layer runs once for all K models (convolutions
  become grouped convolutions, linear layers batched matmuls); one Adam over the stacked tensors is K independent
  Adams, as Adam is elementwise. Equal to K separate runs up to floating-point rounding (the grouped kernels sum
  in another order).
* ``"loop"`` (default on CPU): the networks step one after the other on their slices of the shared batch. Bit for
  bit equal to K separate runs. On a CPU there is no idle hardware to fill: vmapped (grouped) convolutions measured
  2-5x slower per image than plain ones on 2 cores, so the loop is the honest choice; K models then cost about
  what K single runs cost (the shared data pipeline saves a little). Measured with bench/multi_model.py on 2
  shared cores (load 2-5 from other processes, so absolute figures are low and noisy), median of 3 rounds:
  seed-style 66 / adcore one model 69 / adcore K=10 73 images/s with 2 threads; 145 / 161 / 163 with 1 thread;
  150 / 183 / 177 with 1 thread and channels_last. K=10 per image: 0.97-1.30x one model across runs.

:func:`run_many` is the sweep entry point: it groups configurations that can share steps (same image shape, net,
rep_dim, bias, head, batch size and steps per epoch, OE or not, epochs, lr, weight decay, milestones, augmentation)
into jobs of at most ``max_models``, and runs anything else (streamed OE sources, singletons) through
:func:`adcore.experiment.run`. Its records are those of ``run``; ``results.run_grid(..., many=True)`` uses it.
"""
from __future__ import annotations

import copy
import math
import time
from collections import defaultdict
from typing import Any, Callable, Sequence

import torch
from torch import nn
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from .augment import Augment, cat_params, make_augment, default_recipe
from .experiment import (RunConfig, _split, finish, objective_kwargs, prepare, run, train_kwargs, train_size)
from .nets import DEFAULT_REP_DIM, net_for_shape
from .objectives import Objective, make_objective
from .train import IndexStream, TrainLog, autocast, batch_threads, forward_all, make_generator, pick_device

MODES = ("auto", "vmap", "loop")
STREAMED_OE = ("tinyimages", "imagenet22k")  # OE sources that return a Dataset: run() handles them
MAX_MODELS = {"cuda": 40, "cpu": 10}  # default K per job (CUDA: not yet tuned on hardware, see bench/multi_model.py)


def _as_list(v: Any, k: int, name: str) -> list:
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


def train_many(nets: Sequence[nn.Module], objectives: Sequence[Objective], xs: torch.Tensor | Sequence[torch.Tensor],
               oes: torch.Tensor | Sequence[torch.Tensor | None] | None = None, *,
               targets: Sequence[torch.Tensor | None] | None = None, augment: str | Augment = "none",
               epochs: int = 10, batch_size: int = 128, oe_batch_size: int | None = None, lr: float = 1e-3,
               weight_decay: float = 5e-7, milestones: tuple[int, ...] = (), gamma: float = 0.1,
               device: str | torch.device | None = None, seeds: Sequence[int] | None = None,
               generators: Sequence[torch.Generator] | None = None, progress: bool = True, mode: str = "auto",
               amp: bool = False, channels_last: bool = False, compile: bool = False,
               keep_going: bool = False) -> list[TrainLog]:
    """Train K = len(nets) models in place, in the same steps; model k as
    ``train(nets[k], objectives[k], xs[k], oes[k], targets=targets[k], seed=seeds[k], ...)`` would (or with
    ``generator=generators[k]``; without either, generator k is seeded by a draw from the global RNG, in order).

    ``xs``/``oes``: one tensor for all models or one per model (pass the same tensor object for models that share a
    pool: it is stored on the device once). All models need the same batch size and number of steps per epoch and
    either all or none an OE pool (in-memory tensors only). ``mode``: "vmap", "loop" or "auto" (vmap on CUDA, loop
    elsewhere; see the module docstring). ``channels_last`` applies to loop mode only. ``keep_going``: a model whose
    loss becomes non-finite gets ``log.error`` and stops counting instead of stopping the whole job with
    ``FloatingPointError``. Returns one :class:`TrainLog` per model; its times are the job's share per model
    (job time / K), so ``images_per_s`` is the job's throughput.
    """
    k_models = len(nets)
    if k_models == 0:
        raise ValueError("no models to train")
    if len(objectives) != k_models:
        raise ValueError(f"{len(objectives)} objectives for {k_models} models")
    if len({id(o) for o in objectives}) != k_models:
        raise ValueError("every model needs its own objective instance (they hold per-model state)")
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; choose one of {', '.join(MODES)}")
    device = device if isinstance(device, torch.device) else pick_device(device)
    if mode == "auto":
        mode = "vmap" if device.type == "cuda" else "loop"
    xs, oes, tgts = _as_list(xs, k_models, "training sets"), _as_list(oes, k_models, "OE sets"), \
        _as_list(targets, k_models, "target sets")
    if generators is not None:
        gens = list(generators)
    elif seeds is not None:
        gens = [make_generator(device, s) for s in seeds]
    else:
        gens = [make_generator(device) for _ in range(k_models)]
    if len(gens) != k_models:
        raise ValueError(f"{len(gens)} generators/seeds for {k_models} models")
    augment = make_augment(augment)

    # ---- data: every distinct pool once on the device, one gather per step for all models
    if any(len(x) == 0 for x in xs):
        raise ValueError("no training data")
    if len({(x.dtype, tuple(x.shape[1:])) for x in xs}) != 1:
        raise ValueError("all training sets need the same dtype and sample shape")
    bss = {min(batch_size, len(x)) for x in xs}
    steps_set = {len(x) // min(batch_size, len(x)) for x in xs}
    if len(bss) != 1 or len(steps_set) != 1:
        raise ValueError(f"models must share batch size and steps per epoch; got batch sizes {sorted(bss)} and "
                         f"steps {sorted(steps_set)} (training set sizes {sorted({len(x) for x in xs})})")
    bs, steps = bss.pop(), steps_set.pop()
    sample_shape = tuple(xs[0].shape[1:])
    X, x_off = _pool(xs, device)
    tg = [torch.zeros(len(x), dtype=torch.long) if t is None else t for x, t in zip(xs, tgts)]
    for x, t in zip(xs, tg):
        if len(t) != len(x):
            raise ValueError(f"{len(t)} targets for {len(x)} training samples")
    T, t_off = _pool(tg, device)
    T = T.long()
    has_oe = oes[0] is not None
    if any((o is not None) != has_oe for o in oes):
        raise ValueError("either every model has an OE pool or none has")
    oe_bs = oe_batch_size or bs
    if has_oe:
        if not all(isinstance(o, torch.Tensor) for o in oes):
            raise ValueError("train_many needs in-memory OE tensors; train streamed OE sets with adcore.train.train")
        if any(len(o) == 0 for o in oes):
            raise ValueError("empty OE set: pass oe=None to train without Outlier Exposure")
        if any(o.dtype != xs[0].dtype or tuple(o.shape[1:]) != sample_shape for o in oes):
            raise ValueError("OE pools need the training data's dtype and sample shape")
        O, o_off = _pool(oes, device)
        oe_t = torch.tensor([[obj.oe_target] * oe_bs for obj in objectives], dtype=torch.long, device=device)
    n_batch = bs + (oe_bs if has_oe else 0)

    for net in nets:
        net.to(device)
    for k, (net, obj) in enumerate(zip(nets, objectives)):
        if obj.needs_center and getattr(obj, "c", None) is None:
            obj.set_center(forward_all(net, X[x_off[k]:x_off[k] + len(xs[k])], augment, device).mean(0))

    normal_streams = [IndexStream(len(x), device, g) for x, g in zip(xs, gens)]
    oe_streams = [IndexStream(len(o), device, g) for o, g in zip(oes, gens)] if has_oe else []

    def next_batch() -> tuple[torch.Tensor, torch.Tensor]:
        """K batches, each drawn from its model's generator in the order train() draws: normal indices, OE
        indices, augmentation factors. Returns images K x N x C x H x W and targets K x N."""
        ni, ti, oi, params = [], [], [], []
        for k in range(k_models):
            i = normal_streams[k].take(bs)
            ni.append(i + x_off[k])
            ti.append(i + t_off[k])
            if has_oe:
                oi.append(oe_streams[k].take(oe_bs) + o_off[k])
            params.append(augment.draw((n_batch, *sample_shape), device, gens[k]))
        xb = X[torch.cat(ni)].view(k_models, bs, *sample_shape)
        tb = T[torch.cat(ti)].view(k_models, bs)
        if has_oe:
            xb = torch.cat([xb, O[torch.cat(oi)].view(k_models, oe_bs, *sample_shape)], 1)
            tb = torch.cat([tb, oe_t], 1)
        xb = xb.reshape(k_models * n_batch, *sample_shape)
        xb = xb.float().div_(255) if xb.dtype == torch.uint8 else xb.float()
        xb = augment.apply(xb, cat_params(params))
        return xb.view(k_models, n_batch, *xb.shape[1:]), tb

    logs = [TrainLog(models=k_models) for _ in range(k_models)]
    active = list(range(k_models))
    if mode == "loop":
        if channels_last:
            for net in nets:
                net.to(memory_format=torch.channels_last)
        fwds = [torch.compile(net) if compile else net for net in nets]
        opts = [torch.optim.Adam(net.parameters(), lr=lr, weight_decay=weight_decay) for net in nets]
        scheds = [torch.optim.lr_scheduler.MultiStepLR(o, milestones=list(milestones), gamma=gamma) for o in opts]
    else:
        from torch.func import functional_call, stack_module_state, vmap

        shapes = [[(n, tuple(t.shape)) for n, t in net.state_dict().items()] for net in nets]
        if any(s != shapes[0] for s in shapes) or len({type(net) for net in nets}) != 1:
            raise ValueError("vmap mode needs networks of one architecture")
        for net in nets:
            net.train()  # stack_module_state wants one mode; forward_all (centres) left some in eval
        params, buffers = stack_module_state(list(nets))
        base = copy.deepcopy(nets[0]).to("meta")
        if amp:  # vmap's BatchNorm rule wants one dtype: feed BatchNorm fp32 (convs and matmuls stay bf16)
            for m in base.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    m.register_forward_pre_hook(lambda mod, args: (args[0].float(), *args[1:]))

        def one(p: dict, b: dict, x: torch.Tensor) -> torch.Tensor:
            return functional_call(base, (p, b), (x,))

        stacked = vmap(one)
        if compile:
            stacked = torch.compile(stacked)
        opt = torch.optim.Adam(list(params.values()), lr=lr, weight_decay=weight_decay)
        sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=list(milestones), gamma=gamma)

    bar = tqdm(range(epochs), desc=f"train {k_models} models ({mode})", disable=not progress, leave=False)
    for epoch in bar:
        t0 = time.perf_counter()
        totals = torch.zeros(k_models, device=device)
        if mode == "loop":
            for k in active:
                nets[k].train()
        else:
            base.train()
        for step in range(steps):
            with batch_threads(device):
                xb, tb = next_batch()
            if mode == "loop":
                for k in active:
                    xk = xb[k].contiguous(memory_format=torch.channels_last) if channels_last else xb[k]
                    with autocast(device, amp):
                        out = fwds[k](xk)
                    out = out.float()
                    loss = objectives[k].loss(out, tb[k])
                    opts[k].zero_grad(set_to_none=True)
                    loss.backward()
                    opts[k].step()
                    objectives[k].after_step(out, tb[k], epoch)
                    totals[k] += loss.detach()
            else:
                with autocast(device, amp):
                    out = stacked(params, buffers, xb)
                out = out.float()
                losses = torch.stack([objectives[k].loss(out[k], tb[k]) for k in range(k_models)])
                opt.zero_grad(set_to_none=True)
                losses.sum().backward()
                opt.step()
                out = out.detach()
                for k in range(k_models):
                    objectives[k].after_step(out[k], tb[k], epoch)
                totals += losses.detach()
        if mode == "loop":
            for s in (scheds[k] for k in active):
                s.step()
        else:
            sched.step()
        means = [t / max(steps, 1) for t in totals.tolist()]  # as train(): float32 sums, Python division
        dt = (time.perf_counter() - t0) / k_models
        for k in list(active):
            if not math.isfinite(means[k]):
                msg = f"loss became {means[k]} in epoch {epoch}; lower the learning rate or check inputs"
                if not keep_going:
                    raise FloatingPointError(f"model {k}: {msg}")
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
        with torch.no_grad():
            for k, net in enumerate(nets):
                net.load_state_dict({n: t[k] for n, t in (*params.items(), *buffers.items())})
    return logs


# ------------------------------------------------------------------------------------------------------- sweeps


def _data_key(cfg: RunConfig) -> tuple:
    normal = tuple(cfg.normal_class) if isinstance(cfg.normal_class, (list, tuple)) else int(cfg.normal_class)
    return cfg.dataset, normal, cfg.data_root


def _data_info(cfg: RunConfig, memo: dict | None = None) -> tuple[tuple, str, int]:
    """(sample shape, dtype, number of training samples) of the normal class(es) of ``cfg``."""
    key = _data_key(cfg)
    if memo is None or key not in memo:
        x = _split(*key).train_x
        info = (tuple(x.shape[1:]), str(x.dtype), len(x))
        if memo is None:
            return info
        memo[key] = info
    return memo[key]


def group_key(cfg: RunConfig, memo: dict | None = None) -> tuple | None:
    """Configurations with equal keys can train in the same steps; ``None``: run on its own."""
    if cfg.oe in STREAMED_OE:
        return None
    try:
        shape, dtype, n_all = _data_info(cfg, memo)
        objective = make_objective(cfg.objective, **objective_kwargs(cfg))
    except Exception:  # noqa: BLE001 - run() reports the error when this configuration's turn comes
        return None
    n = train_size(cfg, n_all)
    if n == 0:
        return None
    net = cfg.net or net_for_shape(shape)
    bs = min(cfg.batch_size, n)
    return (shape, dtype, net, cfg.rep_dim or DEFAULT_REP_DIM.get(net),
            objective.bias_allowed if cfg.bias is None else cfg.bias, objective.head, bs, n // bs, cfg.oe is not None,
            cfg.epochs, cfg.lr, cfg.weight_decay, tuple(cfg.milestones), cfg.augment or default_recipe(shape))


def plan(configs: Sequence[RunConfig], max_models: int) -> list[list[int]]:
    """Jobs (lists of indices into ``configs``), in order of their first configuration: compatible configurations
    in chunks of at most ``max_models``, everything else alone."""
    groups: dict[tuple, list[int]] = defaultdict(list)
    jobs: list[list[int]] = []
    memo: dict = {}
    for i, cfg in enumerate(configs):
        key = group_key(cfg, memo)
        if key is None:
            jobs.append([i])
        else:
            if not groups[key]:
                jobs.append(groups[key])
            groups[key].append(i)
    out: list[list[int]] = []
    for job in jobs:
        out += [job[a:a + max_models] for a in range(0, len(job), max_models)]
    return sorted(out, key=lambda j: j[0])


def _pool_keys(cfg: RunConfig, shape: tuple) -> tuple[tuple, tuple]:
    normal = tuple(cfg.normal_class) if isinstance(cfg.normal_class, (list, tuple)) else cfg.normal_class
    train_key = (cfg.dataset, normal, cfg.data_root, cfg.n_train, cfg.seed if cfg.n_train is not None else None)
    oe_key = (cfg.oe, shape, cfg.oe_size, cfg.seed, cfg.oe_classes, cfg.blur, cfg.oe_root)
    return train_key, oe_key


def run_many(configs: Sequence[RunConfig], device: str | None = None, progress: bool = True, *,
             max_models: int | None = None, mode: str = "auto", amp: bool = False, channels_last: bool = False,
             compile: bool = False,
             on_record: Callable[[RunConfig, dict[str, Any]], Any] | None = None) -> list[dict[str, Any]]:
    """Records of ``run(cfg)`` for every configuration, training compatible ones K at a time (K <= ``max_models``,
    default 40 on CUDA, 10 on CPU). ``on_record(cfg, record)`` is called as each record is ready (the results store
    writes it then). A model whose loss becomes non-finite does not stop its job; after all jobs,
    ``FloatingPointError`` names the failed configurations."""
    configs = list(configs)
    dev = pick_device(device)
    max_models = max_models or MAX_MODELS.get(dev.type, 10)
    records: list[dict[str, Any] | None] = [None] * len(configs)
    failed: list[str] = []
    bar = tqdm(total=len(configs), desc="runs", disable=not progress or not configs)

    def done(i: int, rec: dict[str, Any]) -> None:
        records[i] = rec
        if on_record is not None:
            on_record(configs[i], rec)
        bar.update(1)

    opts = dict(amp=amp, channels_last=channels_last, compile=compile)
    for job in plan(configs, max_models):
        if len(job) == 1:
            try:
                done(job[0], run(configs[job[0]], device=dev, progress=False, **opts))
            except FloatingPointError as e:
                failed.append(f"{configs[job[0]]}: {e}")
                bar.update(1)
            continue
        pools: dict[tuple, torch.Tensor] = {}
        prepared = {}
        for i in sorted(job, key=lambda i: repr(_data_key(configs[i]))):  # class by class: data cache hits
            p = prepare(configs[i], dev)
            train_key, oe_key = _pool_keys(p.cfg, tuple(p.train_x.shape[1:]))
            p.train_x = pools.setdefault(("train", *train_key), p.train_x)
            if p.oe is not None:
                p.oe = pools.setdefault(("oe", *oe_key), p.oe)
            prepared[i] = p
        preps = [prepared[i] for i in job]
        logs = train_many([p.net for p in preps], [p.objective for p in preps], [p.train_x for p in preps],
                          [p.oe for p in preps] if preps[0].oe is not None else None, augment=preps[0].augment,
                          device=dev, generators=[make_generator(dev, p.rng_seed) for p in preps],
                          progress=progress, mode=mode, keep_going=True, **opts, **train_kwargs(preps[0].cfg))
        for i, p, log in zip(job, preps, logs):
            if log.error:
                failed.append(f"{p.cfg}: {log.error}")
                bar.update(1)
            else:
                done(i, finish(p, log, amp))
        del preps, prepared, pools
    bar.close()
    if failed:
        raise FloatingPointError(f"{len(failed)} run(s) diverged:\n" + "\n".join(failed))
    return records  # type: ignore[return-value]
