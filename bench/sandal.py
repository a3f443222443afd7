"""Why one-class Deep SVDD once scored Fashion-MNIST "sandal" below chance (16.4 AUC in an early laptop build).

Sandals are the class with the least ink, so any anomaly score that is monotone in an image's ink gives sandal a
high AUC if it grows with ink and a low one (inverted) if it shrinks. A Deep SVDD network trained for a few epochs
from random weights scores mostly by such global statistics; which way round depends on the initialisation. This
script trains the one-class objective on the Rethinking LeNet for sandal under the seed's initialisation rule and
under the rule adcore used before (Xavier-normal gain 1 everywhere, zero biases), and prints the AUC, the AUC of
mean pixel intensity used as the score, and the correlation of each run's scores with ink; then the ICML 2018
method (pretrained, GCN) that the Rethinking table now runs.

Usage: python bench/sandal.py [--class 5] [--n-train 1000] [--epochs 3] [--batch 128]
"""
from __future__ import annotations

import argparse

import numpy as np
import torch
from sklearn.metrics import roc_auc_score

from adcore.deepsad import SADConfig
from adcore.experiment import RunConfig, prepare, schedule
from adcore.train import make_generator, score, train


def old_init(net: torch.nn.Module) -> None:
    """adcore's initialisation before the fidelity fix: Xavier-normal, gain 1, zero biases."""
    for m in net.modules():
        if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)):
            torch.nn.init.xavier_normal_(m.weight, gain=1.0)
            if m.bias is not None:
                torch.nn.init.zeros_(m.bias)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--class", dest="cls", type=int, default=5)
    p.add_argument("--n-train", type=int, default=1000)
    p.add_argument("--n-test", type=int, default=2000)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--batch", type=int, default=128)
    a = p.parse_args()
    cfg = RunConfig(dataset="fmnist", normal_class=a.cls, objective="deepsvdd", oe=None, n_train=a.n_train,
                    n_test=a.n_test, epochs=a.epochs, batch_size=a.batch, lr=1e-3, milestones=())
    for rule in ("seed", "old"):
        r = prepare(cfg)
        if rule == "old":
            old_init(r.net)
        train(r.net, r.objective, r.train_x, r.oe, augment=r.augment, device=r.device, progress=False,
              generator=make_generator(r.device, r.rng_seed), blur=cfg.blur, **vars(schedule(cfg)))
        s = score(r.net, r.objective, r.test_x, r.augment, r.device)
        y, ink = r.test_y.numpy(), r.test_x.float().flatten(1).mean(1).numpy()
        print(f"one-class objective, {rule} init: AUC {100 * roc_auc_score(y, s):.1f}; corr(score, ink) "
              f"{np.corrcoef(s, ink)[0, 1]:+.2f}; ink as the score: AUC {100 * roc_auc_score(y, ink):.1f}", flush=True)
    rec = SADConfig(dataset="fmnist", normal_class=a.cls, method="deepsvdd", preprocess="gcn", n_train=a.n_train,
                    n_test=a.n_test, batch_size=a.batch, ae_epochs=10, epochs=10, lr=1e-3, ae_lr=1e-3,
                    milestones=(), ae_milestones=()).run(progress=False)
    print(f"ICML 2018 Deep SVDD (pretrained, GCN, 10 + 10 epochs): AUC {100 * rec['auc']:.1f}")


if __name__ == "__main__":
    main()
