"""The K-model trainer on one GPU, in one command: correctness there, training images/s per K and precision,
kernel launches per step, a slice of the paper's CIFAR-10 table end to end, and the projected time of the whole
table (400 runs x 200 epochs) and of the OE-size grid (4,400 runs) against the 30-minute target.

Sections (each one's failure is recorded and the next one runs; results are written after every section):

1. correctness, on the device: one model trained there vs on the CPU on a separable toy task (same AUC within
   0.5 points; the device's generator draws other batches, so this is two honest runs, not one run twice); K = 3
   models in vmap vs loop mode (losses and scores within tolerance, TF32 off for this comparison); per-model
   BatchNorm statistics (identical initial networks on different data keep different running statistics, each
   equal to its loop-mode run); vmap scoring (``score_many``) vs lone scoring.
2. launches: kernel launches (on CUDA, from the profiler) or dispatched ATen ops that compute (on a CPU) per
   training step, for K models: what the K-model path costs the host per step.
3. throughput: training images/s (normal + OE) of ``cifar10_lenet`` at batch 128 + 128 with the seed's CIFAR
   augmentation, HSC, synthetic uint8 images, for K in --ks, fp32 and bf16 autocast; then channels_last, the
   unfused Adam, cuDNN autotuning, two processes sharing the GPU, ``torch.compile``, as the time budget allows.
   Each figure is the second epoch (the first holds one-time costs); the peak memory per model is set beside the
   trainer's estimate (``adcore.train.step_bytes``) that chooses K.
4. slice: 10 classes x 4 objectives x S seeds of the CIFAR-10 table (``adcore.chapters.rethinking.grid``, the
   paper profile: the seed's net, optimiser, batch and augmentation), 2 epochs, through ``adcore.runner.execute``
   (grouping, memory-chosen K, vmap training and scoring, records). The GPU machine has no datasets: CIFAR-10 is
   written in its native format with synthetic images of the real count and size, and the OE is an in-memory
   uniform-noise pool (the paper's 80 Million Tiny Images is streamed from disk: a different question). S is the
   largest of 10, 5, 2, 1 whose projected time fits the budget.
5. projection: the full table and the OE-size grid from the slice's per-run times (training per epoch, plus
   preparation, scoring and runner overhead per run), and from the best measured throughput.

Writes ``<out>/gpu_results.json`` and appends a dated section to ``<out>/RESULTS.md`` (default out: bench/).

Usage: python bench/gpu.py [--budget 450] [--ks 1,10,40,100,200] [--out bench]
       python bench/gpu.py --smoke [--out DIR]   # the same code on a CPU at tiny sizes (seconds); CI runs it
"""
from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import math
import os
import pickle
import platform
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from adcore import train as trainer
from adcore.nets import make_net
from adcore.objectives import make_objective
from adcore.train import (SCHEDULE_FIELDS, Model, Schedule, pick_device, score, score_many, step_bytes,
                          models_that_fit, train, train_many)

# sklearn and adcore.runner (pandas) are imported where used: a worker process of a several-process figure needs
# neither, and starts faster without them.

TABLE_RUNS, OE_GRID_RUNS, EPOCHS, STEPS_PER_EPOCH, BATCH = 400, 4400, 200, 5000 // 128, 128
TARGET_S = 30 * 60
TABLE_IMAGES = TABLE_RUNS * EPOCHS * STEPS_PER_EPOCH * 2 * BATCH  # normal + OE images the table trains on


# ------------------------------------------------------------------------------------------------- sizes


def sizes(smoke: bool) -> dict[str, Any]:
    """Every size the sections use: the GPU run's, or tiny ones that exercise the same code on a CPU."""
    if smoke:
        # fp32 only: bf16 on a CPU without bf16 units is slow, and amp is a flag the trainer's tests cover
        return dict(ks=[1, 2], amps=[False], batch=4, steps=1, oe_pool=64, toy_train=64, toy_epochs=3, launch_ks=[1, 2],
                    slice_classes=[0, 1], slice_train=16, slice_batch=8, slice_test=8, slice_seeds=[1],
                    slice_epochs=1, slice_oe=64, procs_k=1, compile=False)
    return dict(ks=[1, 10, 40, 100, 200], amps=[True, False], batch=BATCH, steps=10, oe_pool=5000, toy_train=384, toy_epochs=4,
                launch_ks=[1, 10, 40], slice_classes=None, slice_train=5000, slice_batch=BATCH, slice_test=1000,
                slice_seeds=[10, 5, 2, 1], slice_epochs=2, slice_oe=2**15, procs_k=None, compile=True)


def _images(n: int, seed: int, shape=(3, 32, 32)) -> torch.Tensor:
    return torch.randint(0, 256, (n, *shape), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))


def _many(models, xs, oe, seeds, **kw):
    """train_many over (net, objective) pairs: one training set per model or one for all, one shared OE pool; ``kw``:
    the Schedule's fields and train_many's options."""
    xs = xs if isinstance(xs, list) else [xs] * len(models)
    plan = Schedule(**{f: kw.pop(f) for f in SCHEDULE_FIELDS if f in kw})
    return train_many([Model(n, o, x, oe, seed=s) for (n, o), x, s in zip(models, xs, seeds)], plan, **kw)


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


@contextlib.contextmanager
def _setting(obj: Any, name: str, value: Any):
    old = getattr(obj, name)
    setattr(obj, name, value)
    try:
        yield
    finally:
        setattr(obj, name, old)


# ------------------------------------------------------------------------------------------------- meta


def meta(dev: torch.device, smoke: bool) -> dict[str, Any]:
    gpu = dev.type == "cuda"
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                cwd=Path(__file__).parent, timeout=10).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        commit = None
    return {
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "smoke": smoke,
        "device": str(dev),
        "device_name": torch.cuda.get_device_name(dev) if gpu else f"CPU ({platform.processor() or platform.machine()}"
                                                                    f", {torch.get_num_threads()} threads)",
        "device_memory_gb": round(torch.cuda.get_device_properties(dev).total_memory / 2**30, 1) if gpu else None,
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if gpu else None,
        "cudnn_tf32": torch.backends.cudnn.allow_tf32,
        "python": platform.python_version(),
        "host": platform.node(),
        "commit": commit,
    }


# ------------------------------------------------------------------------------------------------- 1. correctness


def _bars(n: int, vertical: bool, seed: int) -> torch.Tensor:
    """1 x 28 x 28 uint8 images: a bright 3-px bar at a random position on dark noise."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 60, (n, 1, 28, 28), generator=g)
    for i, p in enumerate(torch.randint(2, 24, (n,), generator=g).tolist()):
        if vertical:
            x[i, 0, :, p:p + 3] = 230
        else:
            x[i, 0, p:p + 3, :] = 230
    return x.to(torch.uint8)


def correctness(dev: torch.device, sz: dict) -> dict[str, Any]:
    """The checks of section 1; each ``{"passed": bool, ...figures, "tolerance": ...}``."""
    from sklearn.metrics import roc_auc_score

    n = sz["toy_train"]
    g = torch.Generator().manual_seed(99)
    oe = torch.cat([_bars(n // 2, True, 11), (torch.rand(n // 2, 1, 28, 28, generator=g) * 255).to(torch.uint8)])
    normal = [_bars(n, False, 1), _bars(n, False, 2), _bars(n, True, 3)]
    test_x = torch.cat([_bars(100, False, 4), _bars(100, True, 5)])
    test_y = np.r_[np.zeros(100), np.ones(100)]
    kw = dict(epochs=sz["toy_epochs"], batch_size=64, progress=False)
    out: dict[str, Any] = {}

    def model(objective: str, init: int, bias: bool = True, **okw):
        obj = make_objective(objective, **okw)
        torch.manual_seed(init)
        return make_net("mnist_lenet", 16, bias=bias, head=obj.head), obj

    # one model on the device vs on the CPU: two runs with their own draws, the same task
    aucs = {}
    for where in ("cpu", str(dev)):
        net, obj = model("hsc", 0)
        train(net, obj, normal[0], oe, seed=0, device=where, **kw)
        aucs[where] = float(roc_auc_score(test_y, score(net, obj, test_x, device=where)))
    delta = abs(aucs[str(dev)] - aucs["cpu"])
    out["device_vs_cpu_auc"] = {"passed": delta <= 0.005 and min(aucs.values()) > 0.9, "auc_device": aucs[str(dev)],
                                "auc_cpu": aucs["cpu"], "delta": delta, "tolerance": "|delta| <= 0.005, both > 0.9"}

    # vmap vs loop on the device: K = 3, plain fp32 (TF32 off so that only rounding separates the two)
    tf32 = (torch.backends.cudnn, "allow_tf32", False), (torch.backends.cuda.matmul, "allow_tf32", False)
    with contextlib.ExitStack() as stack:
        for obj_, name, value in tf32:
            stack.enter_context(_setting(obj_, name, value))
        specs = [("hsc", 0, {}), ("deepsad", 1, {}), ("hsc", 2, {"norm": "l1"})]
        runs = {}
        for mode in ("loop", "vmap"):
            models = [model(o, i, bias=False, **okw) for o, i, okw in specs]
            logs = _many(models, normal, oe, [5, 6, 7], device=dev, mode=mode, channels_last=False, **kw)  # one layout: only the algorithms differ
            scores = score_many([m[0] for m in models], [m[1] for m in models], test_x, device=dev, mode=mode)
            runs[mode] = (models, logs, scores)
        loss_rel = max(abs(a - b) / max(abs(a), 1e-12) for la, lb in zip(runs["loop"][1], runs["vmap"][1])
                       for a, b in zip(la.losses, lb.losses))
        score_rel = max(float(np.abs(a - b).max() / max(np.abs(a).max(), 1e-12))
                        for a, b in zip(runs["loop"][2], runs["vmap"][2]))
        auc_delta = max(abs(roc_auc_score(test_y, a) - roc_auc_score(test_y, b))
                        for a, b in zip(runs["loop"][2], runs["vmap"][2]))
        param_abs = max(float((pa - pb).abs().max()) for (na, _), (nb, _) in zip(runs["loop"][0], runs["vmap"][0])
                        for pa, pb in zip(na.state_dict().values(), nb.state_dict().values()) if pa.is_floating_point())
        out["vmap_vs_loop"] = {"passed": loss_rel <= 1e-3 and score_rel <= 1e-3 and auc_delta <= 0.005,
                               "loss_rel_max": loss_rel, "score_rel_max": score_rel, "auc_delta_max": auc_delta,
                               "param_abs_max": param_abs,
                               "tolerance": "losses and scores rel <= 1e-3, AUC within 0.5 points (TF32 off)"}

        # per-model BatchNorm statistics: identical initial networks, different data
        stats = {}
        for mode in ("loop", "vmap"):
            models = [model("hsc", 0, bias=False) for _ in range(3)]
            _many(models, normal, oe, [1, 1, 1], device=dev, mode=mode, channels_last=False, **{**kw, "epochs": 1})
            stats[mode] = [{k: v.float().cpu() for k, v in m[0].state_dict().items() if "running_" in k}
                           for m in models]
        names = list(stats["vmap"][0])
        differ = all(not torch.allclose(stats["vmap"][0][k], stats["vmap"][2][k]) for k in names)
        match = max(float(((stats["vmap"][i][k] - stats["loop"][i][k]).abs() /
                           (stats["loop"][i][k].abs() + 1e-3)).max()) for i in range(3) for k in names)
        out["batchnorm_per_model"] = {"passed": differ and match <= 1e-3 and len(names) == 6,
                                      "statistics": len(names), "differ_between_models": differ,
                                      "rel_diff_to_loop_max": match,
                                      "tolerance": "models 0 and 2 differ; each within 1e-3 (rel) of its loop run"}
    return out


# ------------------------------------------------------------------------------------------------- 2. launches


def _count(fn: Callable[[], Any], dev: torch.device) -> int:
    """Kernel launches (CUDA, from the profiler) or ATen ops that compute (CPU: views left out) while ``fn`` runs."""
    if dev.type == "cuda":
        from torch.profiler import ProfilerActivity, profile

        with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
            fn()
            _sync(dev)
        # runtime / driver launch calls (cudaLaunchKernel, cudaLaunchKernelExC, cuLaunchKernel, ...) and copies
        return sum(e.count for e in prof.key_averages()
                   if e.key.startswith(("cudaLaunch", "cuLaunch", "cudaMemcpyAsync", "cudaMemsetAsync")))
    from torch.utils._python_dispatch import TorchDispatchMode

    class Counter(TorchDispatchMode):
        n = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            if not any(r.alias_info is not None and not r.alias_info.is_write for r in func._schema.returns):
                Counter.n += 1
            return func(*args, **(kwargs or {}))

    with Counter():
        fn()
    return Counter.n


def launches(dev: torch.device, sz: dict) -> list[dict[str, Any]]:
    """Per training step (the difference of 3 and 1 steps, so setup cancels) for K models."""
    rows = []
    bs = 8  # the count does not depend on the batch size
    for k, mode in [*((k, "vmap" if k > 1 else "loop") for k in sz["launch_ks"]), (max(sz["launch_ks"]), "loop")]:
        counts = {}
        for steps in (1, 3):
            nets = [make_net("cifar10_lenet", 256) for _ in range(k)]
            objs = [make_objective("hsc") for _ in range(k)]
            xs = [_images(bs * steps, 10 + i) for i in range(k)]
            oe = _images(64, 4)
            counts[steps] = _count(lambda: _many(list(zip(nets, objs)), xs, oe, range(k), augment="cifar", epochs=1,
                                                 batch_size=bs, device=dev, progress=False, mode=mode,
                                                 max_models=k), dev)
        per_step = (counts[3] - counts[1]) / 2
        rows.append({"k": k, "mode": mode, "per_step": per_step, "per_step_per_model": per_step / k,
                     "what": "kernel launches" if dev.type == "cuda" else "ATen ops (views left out)"})
    return rows


# ------------------------------------------------------------------------------------------------- 3. throughput


def measure(k: int, dev: torch.device, sz: dict, mode: str = "auto", amp: bool = False,
            channels_last: bool = False, compile: bool = False, fused: bool = True,
            cudnn_benchmark: bool = False, barrier: tuple[str, int, int] | None = None) -> dict[str, Any]:
    """Images/s of one K-model job in its second epoch, with the peak memory per model beside the estimate."""
    bs, steps = sz["batch"], sz["steps"]
    nets = [make_net("cifar10_lenet", 256) for _ in range(k)]
    objectives = [make_objective("hsc") for _ in range(k)]
    pools = [_images(steps * bs, 10 + i) for i in range(min(k, 10))]  # ten classes' pools, shared as in a sweep
    xs = [pools[i % len(pools)] for i in range(k)]
    oe = _images(sz["oe_pool"], 4)
    est = step_bytes(nets[0], (3, 32, 32), 2 * bs)
    fits = models_that_fit(est, trainer._nbytes([*xs, oe]), device=dev) if dev.type == "cuda" else None
    if dev.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(dev)
    base = torch.cuda.memory_allocated(dev) if dev.type == "cuda" else 0
    if barrier is not None:  # processes sharing the GPU start their jobs together
        folder, rank, world = barrier
        Path(folder, f"ready{rank}").touch()
        while len(list(Path(folder).glob("ready*"))) < world:
            time.sleep(0.01)
    t0 = time.perf_counter()
    with _setting(trainer, "FUSED_ADAM", fused), _setting(torch.backends.cudnn, "benchmark", cudnn_benchmark):
        logs = _many(list(zip(nets, objectives)), xs, oe, range(k), augment="cifar", epochs=2, batch_size=bs,
                     device=dev, progress=False, mode=mode, amp=amp, channels_last=channels_last, compile=compile,
                     max_models=k)
    _sync(dev)
    wall = time.perf_counter() - t0
    epoch_s = logs[0].epoch_times[1] * k  # epoch_times are the job's share per model
    peak = (torch.cuda.max_memory_allocated(dev) - base) / k if dev.type == "cuda" else None
    return {"images_per_s": steps * 2 * bs * k / epoch_s, "step_ms": 1000 * epoch_s / steps,
            "first_epoch_s": logs[0].epoch_times[0] * k, "wall_s": wall, "peak_mb_per_model":
            None if peak is None else peak / 2**20, "est_mb_per_model": est / 2**20, "k_that_fits": fits}


def _variant(k: int, **opts) -> dict[str, Any]:
    return {"k": k, "mode": opts.get("mode", "loop" if k == 1 else "vmap"), "amp": opts.get("amp", False),
            "channels_last": opts.get("channels_last", False), "compile": opts.get("compile", False),
            "fused": opts.get("fused", True), "cudnn_benchmark": opts.get("cudnn_benchmark", False),
            "procs": opts.get("procs", 1)}


def core_variants(sz: dict) -> list[dict[str, Any]]:
    """The K grid in bf16 and fp32: what the projection rests on, measured first."""
    return [_variant(k, amp=amp) for amp in sz["amps"] for k in sz["ks"]]


def extra_variants(sz: dict) -> list[dict[str, Any]]:
    """What else may pay, in order of interest, as the budget allows."""
    big, ks, amp = max(sz["ks"]), sz["ks"], sz["amps"][0]
    out = [_variant(k, amp=amp, channels_last=True) for k in ks[1:] or ks]
    out += [_variant(big, amp=amp, fused=False), _variant(big, amp=amp, cudnn_benchmark=True)]
    if len(ks) > 2:  # (the smoke run's one K has these already)
        out += [_variant(big, amp=amp, channels_last=True, cudnn_benchmark=True)]
    out += [_variant(min(10, big), amp=amp, mode="loop"), _variant(sz["procs_k"] or max(1, big // 2), amp=amp,
                                                                  procs=2)]
    if sz["compile"]:
        out += [_variant(40 if 40 in ks else big, amp=amp, compile=True)]
    return out


def run_variant(v: dict[str, Any], dev: torch.device, sz: dict, smoke: bool) -> dict[str, Any]:
    opts = {key: v[key] for key in ("mode", "amp", "channels_last", "compile", "fused", "cudnn_benchmark")}
    if v["procs"] == 1:
        return {**v, **measure(v["k"], dev, sz, **opts)}
    with tempfile.TemporaryDirectory() as folder:  # several processes, each a K-model job, started together
        cmd = [sys.executable, __file__, "--worker", json.dumps({"k": v["k"], "opts": opts, "barrier": folder,
                                                                   "world": v["procs"]})]
        cmd += ["--smoke"] if smoke else []
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parent.parent),
                                                            os.environ.get("PYTHONPATH", "")])}
        procs = [subprocess.Popen([*cmd, "--rank", str(r)], stdout=subprocess.PIPE, text=True, env=env)
                 for r in range(v["procs"])]
        outs = [p.communicate(timeout=600)[0] for p in procs]
        if any(p.returncode for p in procs):
            raise RuntimeError(f"a worker process failed (exit codes {[p.returncode for p in procs]})")
    rows = [json.loads(o.strip().splitlines()[-1]) for o in outs]
    return {**v, "images_per_s": sum(r["images_per_s"] for r in rows), "step_ms": max(r["step_ms"] for r in rows),
            "first_epoch_s": max(r["first_epoch_s"] for r in rows), "wall_s": max(r["wall_s"] for r in rows),
            "peak_mb_per_model": rows[0]["peak_mb_per_model"], "est_mb_per_model": rows[0]["est_mb_per_model"],
            "k_that_fits": rows[0]["k_that_fits"], "note": f"{v['procs']} processes x K={v['k']}, rates summed"}


def throughput(variants: list[dict], dev: torch.device, sz: dict, smoke: bool, deadline: float,
               rows: list[dict]) -> None:
    """Measure ``variants`` into ``rows`` until ``deadline`` (time.perf_counter()); later ones are marked skipped."""
    for v in variants:
        if time.perf_counter() > deadline:
            rows.append({**v, "skipped": "time budget"})
            continue
        try:
            rows.append(run_variant(v, dev, sz, smoke))
        except Exception as e:  # out of memory at a large K, a compile failure: recorded, the next one runs
            rows.append({**v, "error": f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"[:300]})
            if dev.type == "cuda":
                torch.cuda.empty_cache()
        r = rows[-1]
        print(f"  K={v['k']:<4d} {v['mode']:4s} {'bf16' if v['amp'] else 'fp32'} cl={int(v['channels_last'])} "
              f"compile={int(v['compile'])} fused={int(v['fused'])} bench={int(v['cudnn_benchmark'])} "
              f"procs={v['procs']}: " + (f"{r['images_per_s']:,.0f} images/s" if "images_per_s" in r else
                                         r.get("error") or r.get("skipped", "")), flush=True)


# ------------------------------------------------------------------------------------------------- 4. slice


def write_cifar10(root: Path, per_class_train: int, per_class_test: int, seed: int = 0) -> None:
    """CIFAR-10 in its native python-pickle layout (cifar-10-batches-py/), synthetic: per class a colour tint on
    uniform noise (so that one-vs-rest is learnable and the AUCs mean something), real sizes when asked."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    tints = rng.integers(0, 128, (10, 3, 1, 1))

    def images(per_class: int) -> tuple[np.ndarray, np.ndarray]:
        y = np.repeat(np.arange(10), per_class)
        rng.shuffle(y)
        x = (rng.integers(0, 128, (len(y), 3, 32, 32)) + tints[y]).astype(np.uint8)
        return x.reshape(len(y), 3072), y

    x, y = images(per_class_train)
    for i, (xb, yb) in enumerate(zip(np.array_split(x, 5), np.array_split(y, 5)), 1):
        with open(folder / f"data_batch_{i}", "wb") as f:
            pickle.dump({"data": xb, "labels": yb.tolist()}, f)
    x, y = images(per_class_test)
    with open(folder / "test_batch", "wb") as f:
        pickle.dump({"data": x, "labels": y.tolist()}, f)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": [f"class{i}" for i in range(10)]}, f)


def table_slice(dev: torch.device, sz: dict, rate: float | None, seconds: float, work: Path) -> dict[str, Any]:
    """Section 4: the largest slice (seeds) whose estimated time fits ``seconds`` at ``rate`` images/s."""
    from adcore.chapters.rethinking import grid
    from adcore.runner import execute

    bs = sz["slice_batch"]
    per_run_images = sz["slice_epochs"] * (sz["slice_train"] // bs) * 2 * bs
    classes = sz["slice_classes"] or list(range(10))
    seeds = sz["slice_seeds"][-1]
    for s in sz["slice_seeds"]:
        n = len(classes) * 4 * s
        if rate and n * per_run_images / rate + 0.2 * n <= seconds:  # ~0.2 s per run for all else (a guess)
            seeds = s
            break
    t0 = time.perf_counter()
    write_cifar10(work / "data", sz["slice_train"], sz["slice_test"])
    data_s = time.perf_counter() - t0
    overrides = dict(epochs=sz["slice_epochs"], oe="noise", oe_size=sz["slice_oe"], seeds=seeds, classes=classes,
                     batch_size=bs, data_root=str(work / "data"),
                     methods=["Deep SAD + OE", "HSC + OE", "Focal + OE", "BCE + OE"])  # the seed's four; no GEO
    configs = grid("cifar10_table", "paper", **overrides)
    t0 = time.perf_counter()
    result = execute(configs, work / "store", device=str(dev), progress=False)
    wall = time.perf_counter() - t0
    df = result.frame
    out = {"configs": len(configs), "classes": len(classes), "seeds": seeds, "epochs": sz["slice_epochs"], "ran": result.ran,
           "failed": result.failed, "failures": [f.error for f in result.failures][:5], "wall_s": wall,
           "synthetic_data_s": data_s, "oe": f"noise, {sz['slice_oe']} images in memory"}
    if len(df):
        images = float((df["images_per_s"] * df["train_time"]).sum())  # each run's images
        out.update({
            "models_in_step": sorted({int(v) for v in df["models_in_step"]}),
            "train_s_per_run_epoch": float(df["train_time"].mean() / sz["slice_epochs"]),
            "prep_s_per_run": float(df["prep_time"].mean()), "test_s_per_run": float(df["test_time"].mean()),
            "other_s_per_run": float((wall - df[["train_time", "test_time", "prep_time"]].sum().sum()) / len(df)),
            "end_to_end_images_per_s": images / wall, "train_images_per_s": images / float(df["train_time"].sum()),
            "auc_mean": float(df["auc"].mean()),
            "auc_by_objective": {k: round(float(v), 4) for k, v in df.groupby("objective")["auc"].mean().items()}})
    return out


# ------------------------------------------------------------------------------------------------- 5. projection


def projection(sl: dict[str, Any], rows: list[dict]) -> dict[str, Any]:
    out: dict[str, Any] = {"target_s": TARGET_S}
    if sl.get("train_s_per_run_epoch") is not None:
        per_run = EPOCHS * sl["train_s_per_run_epoch"] + sl["prep_s_per_run"] + sl["test_s_per_run"] + \
            max(sl["other_s_per_run"], 0.0)
        out["from_slice"] = {"table_s": TABLE_RUNS * per_run, "oe_grid_s": OE_GRID_RUNS * per_run,
                             "models_in_step": sl["models_in_step"],
                             "how": "per run: 200 x the slice's training time per epoch + its preparation, "
                                    "scoring and runner overhead; times runs"}
    fine = [r for r in rows if r.get("images_per_s") and r["procs"] == 1]
    for label, pick in (("best_fp32", lambda r: not r["amp"]), ("best_any", lambda r: True)):
        cand = [r for r in fine if pick(r)]
        if cand:
            best = max(cand, key=lambda r: r["images_per_s"])
            extra = TABLE_RUNS * (sl.get("prep_s_per_run", 0) + sl.get("test_s_per_run", 0))
            t = TABLE_IMAGES / best["images_per_s"] + extra
            out[label] = {"table_s": t, "oe_grid_s": t * OE_GRID_RUNS / TABLE_RUNS,
                          "variant": {k: best[k] for k in ("k", "mode", "amp", "channels_last", "compile", "fused",
                                                           "cudnn_benchmark")},
                          "images_per_s": best["images_per_s"],
                          "how": "the table's 8.0e8 training images at this variant's rate, plus the slice's "
                                 "preparation and scoring per run"}
    return out


# ------------------------------------------------------------------------------------------------- output


def _fmt_s(s: float | None) -> str:
    if s is None or not math.isfinite(s):
        return "-"
    return f"{s:.0f} s" if s < 120 else f"{s / 60:.1f} min" if s < 7200 else f"{s / 3600:.1f} h"


def markdown(res: dict[str, Any]) -> str:
    m = res["meta"]
    title = "smoke run (CPU, tiny sizes: figures are not measurements)" if m["smoke"] else "GPU run"
    lines = [f"## {m['date']}: {title}, {m['device_name']}", "",
             f"torch {m['torch']}, CUDA {m['cuda']}, cuDNN {m['cudnn']}; commit {m['commit']}; "
             f"`python bench/gpu.py{' --smoke' if m['smoke'] else ''}` took {_fmt_s(res.get('elapsed_s'))}.", ""]
    corr = res.get("correctness", {})
    if corr:
        lines += ["### Correctness on the device", "", "| check | passed | figures | tolerance |", "|---|---|---|---|"]
        for name, c in corr.items():
            if name == "error":
                lines.append(f"| (section failed) | no | {c} | |")
                continue
            figs = ", ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}" for k, v in c.items()
                             if k not in ("passed", "tolerance"))
            lines.append(f"| {name} | {'yes' if c['passed'] else '**no**'} | {figs} | {c['tolerance']} |")
        lines.append("")
    if res.get("launches"):
        lines += ["### Per training step (cifar10_lenet, HSC, CIFAR augmentation)", "",
                  "| K | mode | per step | per step and model | counted |", "|---|---|---|---|---|"]
        lines += [f"| {r['k']} | {r['mode']} | {r['per_step']:.0f} | {r['per_step_per_model']:.1f} | {r['what']} |"
                  for r in res["launches"] if "per_step" in r]
        lines.append("")
    if res.get("throughput"):
        b = res.get("sizes", {}).get("batch", BATCH)
        lines += [f"### Training throughput (cifar10_lenet, batch {b} + {b}, HSC, the seed's CIFAR augmentation)", "",
                  "| K | mode | precision | channels_last | other | images/s | ms/step | peak MB/model | "
                  "estimate MB/model | K that fits |", "|---|---|---|---|---|---|---|---|---|---|"]
        for r in res["throughput"]:
            other = ", ".join([*(["compile"] if r["compile"] else []), *([] if r["fused"] else ["unfused Adam"]),
                               *(["cudnn.benchmark"] if r["cudnn_benchmark"] else []),
                               *([f"{r['procs']} processes"] if r["procs"] > 1 else [])]) or "-"
            if "images_per_s" in r:
                peak = "-" if r["peak_mb_per_model"] is None else f"{r['peak_mb_per_model']:.0f}"
                figs = (f"{r['images_per_s']:,.0f} | {r['step_ms']:.1f} | {peak} | {r['est_mb_per_model']:.0f} | "
                        f"{r['k_that_fits'] if r['k_that_fits'] is not None else '-'}")
            else:
                figs = f"{r.get('error') or r.get('skipped')} | | | | "
            lines.append(f"| {r['k']} | {r['mode']} | {'bf16' if r['amp'] else 'fp32'} | "
                         f"{'yes' if r['channels_last'] else 'no'} | {other} | {figs} |")
        lines.append("")
    sl = res.get("slice")
    if sl:
        lines += ["### A slice of the CIFAR-10 table through `adcore.runner.execute`", ""]
        if "error" in sl:
            lines.append(f"Failed: {sl['error']}")
        else:
            lines.append(f"{sl['configs']} configurations ({sl['classes']} classes x 4 objectives x {sl['seeds']} "
                         f"seeds, paper "
                         f"profile, {sl['epochs']} epochs; synthetic CIFAR-10 of the real size, OE {sl['oe']}): "
                         f"{sl['ran']} ran, {sl['failed']} failed, in {_fmt_s(sl['wall_s'])}; K per job "
                         f"{sl.get('models_in_step')}. Per run: training {sl.get('train_s_per_run_epoch', 0):.3f} s "
                         f"per epoch, preparation {sl.get('prep_s_per_run', 0):.3f} s, scoring "
                         f"{sl.get('test_s_per_run', 0):.3f} s, other {sl.get('other_s_per_run', 0):.3f} s; "
                         f"end to end {sl.get('end_to_end_images_per_s', 0):,.0f} training images/s; mean AUC "
                         f"{sl.get('auc_mean', float('nan')):.3f} {sl.get('auc_by_objective', '')}.")
        lines.append("")
    pr = res.get("projection")
    if pr:
        lines += ["### Projection (target: the table in 30 min)", "", "| from | table (400 runs) | OE-size grid "
                  "(4,400 runs) | meets the target |", "|---|---|---|---|"]
        for key, label in (("from_slice", "the slice (per-run times x runs)"),
                           ("best_fp32", "best fp32 throughput"), ("best_any", "best throughput, any option")):
            if key in pr:
                p = pr[key]
                what = label + (f" ({p['variant']})" if "variant" in p else f" (K {p.get('models_in_step')})")
                lines.append(f"| {what} | {_fmt_s(p['table_s'])} | {_fmt_s(p['oe_grid_s'])} | "
                             f"{'yes' if p['table_s'] <= TARGET_S else 'no'} |")
        lines.append("")
    errors = {k: v["error"] for k, v in res.items() if isinstance(v, dict) and "error" in v and k != "correctness"}
    if errors:
        lines += ["Errors: " + "; ".join(f"{k}: {v}" for k, v in errors.items()), ""]
    return "\n".join(lines) + "\n"


def save(res: dict[str, Any], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "gpu_results.json").write_text(json.dumps(res, indent=1, default=str) + "\n")


def append_results(res: dict[str, Any], out: Path) -> None:
    path = out / "RESULTS.md"
    head = "" if path.exists() else "# bench/gpu.py results\n\nOne section per run, newest last.\n\n"
    with open(path, "a") as f:
        f.write(head + markdown(res))


# ------------------------------------------------------------------------------------------------- main


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--smoke", action="store_true", help="CPU, tiny sizes, seconds: the code path without figures")
    p.add_argument("--out", default=None, help="folder for gpu_results.json and RESULTS.md (default: bench/; "
                                                "with --smoke a temporary folder)")
    p.add_argument("--budget", type=float, default=450, help="seconds for the whole run (default 450)")
    p.add_argument("--ks", default=None, help="comma list of K for the throughput grid (default 1,10,40,100,200)")
    p.add_argument("--device", default=None)
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)  # one process of a several-process figure
    p.add_argument("--rank", type=int, default=0, help=argparse.SUPPRESS)
    a = p.parse_args()
    sz = sizes(a.smoke)
    if a.ks:
        sz["ks"] = [int(k) for k in a.ks.split(",")]
    dev = torch.device("cpu") if a.smoke else pick_device(a.device)
    if a.worker:
        w = json.loads(a.worker)
        print(json.dumps(measure(w["k"], dev, sz, **w["opts"], barrier=(w["barrier"], a.rank, w["world"]))))
        return 0
    if not a.smoke and dev.type != "cuda":
        print("warning: no CUDA device; the figures will be CPU figures (use --smoke for the quick check)",
              file=sys.stderr)
    out = Path(a.out) if a.out else (Path(tempfile.mkdtemp(prefix="adcore-gpu-smoke-")) if a.smoke
                                     else Path(__file__).resolve().parent)
    t_start = time.perf_counter()
    deadline = t_start + a.budget
    res: dict[str, Any] = {"meta": meta(dev, a.smoke), "sizes": sz}
    print(f"bench/gpu.py on {res['meta']['device_name']} (torch {torch.__version__}, CUDA {torch.version.cuda}); "
          f"budget {a.budget:.0f} s; output {out}", flush=True)

    def section(name: str, fn: Callable[[], Any], key: str | None = None) -> None:
        t0, c0 = time.perf_counter(), time.process_time()
        try:
            res[key or name] = fn()
        except Exception as e:  # recorded; the other sections still run
            traceback.print_exc()
            res[key or name] = {"error": f"{type(e).__name__}: {e}"[:500]}
        res.setdefault("section_s", {})[name] = time.perf_counter() - t0
        res.setdefault("section_cpu_s", {})[name] = time.process_time() - c0  # this process's CPU time
        res["elapsed_s"] = time.perf_counter() - t_start
        save(res, out)
        print(f"[{name}] done in {time.perf_counter() - t0:.0f} s", flush=True)

    section("correctness", lambda: correctness(dev, sz))
    section("launches", lambda: launches(dev, sz))
    rows: list[dict] = []
    slice_s = 0.3 * a.budget  # kept for the slice
    section("throughput", lambda: (throughput(core_variants(sz), dev, sz, a.smoke, deadline - slice_s, rows), rows)[1])
    rates = [r["images_per_s"] for r in rows if r.get("images_per_s") and not r["amp"] and r["k"] > 1]
    with tempfile.TemporaryDirectory() as work:
        section("slice", lambda: table_slice(dev, sz, max(rates) if rates else None,
                                             min(slice_s, deadline - time.perf_counter() - 30), Path(work)))
    section("throughput_extra", lambda: (throughput(extra_variants(sz), dev, sz, a.smoke, deadline - 20, rows),
                                         rows)[1], key="throughput")
    section("projection", lambda: projection(res.get("slice", {}), rows))
    res["elapsed_s"] = time.perf_counter() - t_start
    save(res, out)
    append_results(res, out)
    corr = res.get("correctness", {})
    passed = bool(corr) and "error" not in corr and all(c["passed"] for c in corr.values())
    print(markdown(res))
    print(f"correctness {'passed' if passed else 'FAILED'}; results in {out / 'gpu_results.json'} and "
          f"{out / 'RESULTS.md'}")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
