"""Start-up of runs with large OE pools: time to the first training step and peak memory.

(1) 80 Million Tiny Images at full size: a sparse ``tiny_images.bin`` of 79,302,016 zero records (243 GB
apparent, no disk used) with an exclusion list; one run with all of it as OE. (2) The default natural-image OE
(2^20 virtual crops). Target (issue 13/14): start-up <= 5 s and memory <= 1 GB for the full file; a default run
starts training within 5 s. Each case runs in a fresh process, so the peak RSS is its own.

Usage: python bench/oe_startup.py [--dataset fmnist|cifar10]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

CASE = r"""
import json, resource, sys, time
t0 = time.perf_counter()
import torch
from adcore import train
from adcore.experiment import RunConfig, prepare, schedule
from adcore.train import make_generator
cfg = RunConfig(**json.loads(sys.argv[1]))
t_import, rss_import = time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
first = {}
real_next = train.IndexStream.take
def spy(self, k):  # the first index drawn for a training batch marks the first step
    first.setdefault("t", time.perf_counter())
    return real_next(self, k)
train.IndexStream.take = spy
p = prepare(cfg, "cpu")
t_prep = time.perf_counter()
train.train(p.net, p.objective, p.train_x, p.oe, augment=p.augment, device=p.device, progress=False,
            generator=make_generator(p.device, p.rng_seed), blur=cfg.blur, **{**vars(schedule(cfg)), "epochs": 1})
print(json.dumps({"import_s": t_import, "rss_import_mb": rss_import, "prepare_s": t_prep - t0, "first_step_s": first["t"] - t0, "n_oe": len(p.oe),
                  "pool": type(p.oe).__name__, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def case(cfg: dict) -> dict:
    out = subprocess.run([sys.executable, "-c", CASE, json.dumps(cfg)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default="fmnist")
    a = ap.parse_args()
    small = dict(dataset=a.dataset, n_train=128, n_test=256, batch_size=128, epochs=1)
    with tempfile.TemporaryDirectory() as tmp:
        bin_path = Path(tmp) / "tiny_images.bin"
        with open(bin_path, "wb") as f:
            f.truncate(79_302_016 * 3072)
        (Path(tmp) / "80mn_cifar_idxs.txt").write_text("\n".join(str(i) for i in range(1, 132_410)) + "\n")
        rows = {"80M Tiny Images, all records": case({**small, "oe": "tinyimages", "oe_root": tmp}),
                "natural crops, default size": case({**small, "oe": "natural"})}
    for name, r in rows.items():
        print(f"{name:30s} {r['pool']:18s} n_oe {r['n_oe']:>10,}  imports {r['import_s']:4.1f} s  first step "
              f"{r['first_step_s']:5.1f} s after start ({r['first_step_s'] - r['import_s']:4.1f} s after imports)  "
              f"peak RSS {r['peak_rss_mb']:5.0f} MB ({r['rss_import_mb']:4.0f} MB after imports)")


if __name__ == "__main__":
    main()
