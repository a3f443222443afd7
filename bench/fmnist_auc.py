"""Fashion-MNIST one-vs-rest AUC for classes 0-9 with HSC + natural-image OE (4096 crops), 10 epochs.

Usage: python bench/fmnist_auc.py [--epochs 10] [--classes 0,1,...] [--seed 0]
"""
from __future__ import annotations

import argparse

from adcore.experiment import RunConfig


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--classes", default="0,1,2,3,4,5,6,7,8,9")
    p.add_argument("--objective", default="hsc")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    aucs = []
    for c in [int(c) for c in a.classes.split(",")]:
        rec = RunConfig(dataset="fmnist", normal_class=c, objective=a.objective, oe="natural", oe_size=4096,
                        epochs=a.epochs, seed=a.seed).run(progress=False)
        aucs.append(rec["auc"])
        print(f"class {c}: AUC {100 * rec['auc']:.2f}  train {rec['train_time']:.0f} s "
              f"({rec['images_per_s']:.0f} img/s)", flush=True)
    print(f"mean AUC {100 * sum(aucs) / len(aucs):.2f} over {len(aucs)} classes")


if __name__ == "__main__":
    main()
