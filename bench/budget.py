"""How the laptop budget of the Rethinking chapters was chosen: for each candidate per-run budget (training images
per class x epochs x batch), the effects the chapters' claims test against the seed-to-seed spread at that budget.

Runs HSC without OE, HSC + OE and BCE + OE at the largest and a small OE size, on three CIFAR-10 (JPEG copy)
classes with three seeds each, natural-image OE, through the results store (so a second call reads its runs
back). Prints per budget: each method's mean AUC, the seed-to-seed spread s (standard deviation over seeds, mean
over points), and each effect as the chapters' claims test it: the paired difference over (class, seed), its
standard error and the smallest effect a one-sided test at 5 % detects with power 0.8 (adcore.claims).

Usage: python bench/budget.py [--budgets 256x4x32,512x4x64] [--classes 1,3,8] [--seeds 3] [--store bench_budget]
Measured figures: bench/RESULTS.md.
"""
from __future__ import annotations

import argparse
import time

from adcore import claims, report
from adcore.chapters.rethinking import spread
from adcore.experiment import RunConfig

METHODS = {"HSC (no OE)": dict(objective="hsc", oe=None), "HSC + OE": dict(objective="hsc"),
           "BCE + OE": dict(objective="bce")}


def runs(n_train: int, epochs: int, batch: int, classes: list[int], seeds: int, sizes: list[int], n_test: int):
    base = RunConfig(dataset="cifar10", oe="natural", n_train=n_train, epochs=epochs, batch_size=batch, lr=1e-3,
                     milestones=(), n_test=n_test)
    out = []
    for c in classes:
        for s in range(seeds):
            for label, spec in METHODS.items():
                for size in ([0] if spec.get("oe", "") is None else sizes):
                    cfg = base.replace(normal_class=c, seed=s, **spec, **({"oe_size": size} if size else {}))
                    out.append(({"method": label, "oe_size": size}, cfg))
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--budgets", default="256x4x32,512x4x64", help="images x epochs x batch, comma-separated")
    p.add_argument("--classes", default="1,3,8")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--sizes", default="4,4096", help="OE sizes of the OE methods")
    p.add_argument("--n-test", type=int, default=1000)
    p.add_argument("--store", default="bench_budget")
    a = p.parse_args()
    classes, sizes = [int(c) for c in a.classes.split(",")], [int(s) for s in a.sizes.split(",")]
    for budget in a.budgets.split(","):
        n_train, epochs, batch = (int(v) for v in budget.split("x"))
        t0 = time.perf_counter()
        df = report.run_missing(runs(n_train, epochs, batch, classes, a.seeds, sizes, a.n_test), a.store,
                            progress=False)
        s = spread(df)
        m = df.groupby(["method", "oe_size", "normal_class"])["auc"].mean().groupby(level=[0, 1]).mean()
        print(f"\nbudget {n_train} images x {epochs} epochs, batch {batch}: {len(df)} runs in "
              f"{time.perf_counter() - t0:.0f} s ({df.attrs['ran']} trained now); s = {s:.1f}")
        for (method, size), auc in m.items():
            print(f"  {method:12s} OE {size:>5d}: {auc:5.1f}")
        at = lambda method, size: {"method": method, "oe_size": size}  # noqa: E731
        for size in sizes:
            for p in (claims.diff(df, at("HSC + OE", size), at("HSC (no OE)", 0), "HSC lift over no OE"),
                      claims.diff(df, at("HSC + OE", size), at("BCE + OE", size), "HSC - BCE")):
                print(f"  OE {size:>5d}: {p.text()}, detects >= {p.detectable():.1f}")


if __name__ == "__main__":
    main()
