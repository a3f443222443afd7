"""GEO with 8 transformations (flip x rotation, the laptop table's ``GEO-8``) against the paper's 72, at the laptop
table's budget, on a few CIFAR-10 (JPEG copy) classes: how far the affordable subset sits from the full method.

Both run as the table runs them (``adcore.chapters.rethinking.METHODS``: the laptop table's CIFAR-10 settings,
``oe=None``, ceil(epochs / T) epochs over the T-fold set, the GEO authors' budget), through the results store, so a second call (or a store the laptop book filled) reads them back.
Prints per class both AUCs, their paired difference with its standard error (adcore.claims), and each method's
training and scoring seconds.

Usage: python bench/geo.py [--classes 1,3,8] [--seeds 1] [--store bench_geo]
Measured figures: bench/RESULTS.md.
"""
from __future__ import annotations

import argparse

from adcore import chapters, claims, report
from adcore.chapters.rethinking import METHODS, geo_budget

VARIANTS = ("GEO-8 (no OE)", "GEO (no OE)")


def runs(classes: list[int], seeds: int) -> list[tuple[dict, object]]:
    base = chapters.open("cifar10_table", "laptop").settings.run
    return [({"method": m}, geo_budget(base.replace(normal_class=c, seed=s, **METHODS[m])))
            for c in classes for s in range(seeds) for m in VARIANTS]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--classes", default="1,3,8")
    p.add_argument("--seeds", type=int, default=1)
    p.add_argument("--store", default="bench_geo")
    a = p.parse_args()
    df = report.run_missing(runs([int(c) for c in a.classes.split(",")], a.seeds), a.store, progress=False)
    print(df.pivot_table(index="normal_class", columns="method", values="auc").round(1).to_string())
    times = df.groupby("method")[["train_time", "test_time"]].mean().round(1)
    print(times.to_string())
    d = claims.diff(df, {"method": VARIANTS[1]}, {"method": VARIANTS[0]}, "GEO (72) - GEO-8")
    print(f"{d.text()}; {df.attrs['ran']} runs trained now")


if __name__ == "__main__":
    main()
