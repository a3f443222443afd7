"""Command line: ``python -m adcore run --dataset fmnist --normal-class 0 --objective hsc --oe natural ...``."""
from __future__ import annotations

import argparse
import json
import sys

from .experiment import RunConfig, run


def _classes(text: str) -> int | tuple[int, ...]:
    parts = [int(p) for p in text.split(",")]
    return parts[0] if len(parts) == 1 else tuple(parts)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m adcore", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="train and evaluate one configuration; prints AUC and timings")
    d = RunConfig()
    r.add_argument("--dataset", default=d.dataset)
    r.add_argument("--normal-class", type=_classes, default=d.normal_class, help="a class, or a comma list")
    r.add_argument("--objective", default=d.objective)
    r.add_argument("--oe", default=d.oe, help="OE source (natural, cifar100, emnist-letters, tinyimages, ...)")
    r.add_argument("--no-oe", action="store_true", help="train without Outlier Exposure")
    r.add_argument("--oe-size", type=int, default=d.oe_size)
    r.add_argument("--oe-classes", type=int, default=d.oe_classes)
    r.add_argument("--blur", type=float, default=d.blur, help="Gaussian blur sigma of the OE images")
    r.add_argument("--net", default=d.net)
    r.add_argument("--rep-dim", type=int, default=d.rep_dim)
    r.add_argument("--no-bias", action="store_true", help="bias terms and affine BatchNorm off")
    r.add_argument("--augment", default=d.augment, help="none | cifar | imagenet (default: by image size)")
    r.add_argument("--epochs", type=int, default=d.epochs)
    r.add_argument("--lr", type=float, default=d.lr)
    r.add_argument("--milestones", type=lambda s: tuple(int(m) for m in s.split(",") if m), default=d.milestones)
    r.add_argument("--batch-size", type=int, default=d.batch_size)
    r.add_argument("--weight-decay", type=float, default=d.weight_decay)
    r.add_argument("--hsc-norm", default=d.hsc_norm)
    r.add_argument("--focal-gamma", type=float, default=d.focal_gamma)
    r.add_argument("--seed", type=int, default=d.seed)
    r.add_argument("--n-train", type=int, default=None)
    r.add_argument("--n-test", type=int, default=None)
    r.add_argument("--data-root", default=None)
    r.add_argument("--oe-root", default=None)
    r.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: CUDA when present)")
    r.add_argument("--quiet", action="store_true", help="no progress bar")
    r.add_argument("--json", action="store_true", help="print the whole record as JSON")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    cfg = RunConfig(dataset=args.dataset, normal_class=args.normal_class, objective=args.objective,
                    oe=None if args.no_oe else args.oe, oe_size=args.oe_size, oe_classes=args.oe_classes,
                    blur=args.blur, net=args.net, rep_dim=args.rep_dim, bias=False if args.no_bias else None,
                    augment=args.augment, epochs=args.epochs, lr=args.lr, milestones=args.milestones,
                    batch_size=args.batch_size, weight_decay=args.weight_decay, hsc_norm=args.hsc_norm,
                    focal_gamma=args.focal_gamma, seed=args.seed, n_train=args.n_train, n_test=args.n_test,
                    data_root=args.data_root, oe_root=args.oe_root)
    rec = run(cfg, device=args.device, progress=not args.quiet)
    if args.json:
        print(json.dumps(rec, default=str))
    else:
        print(f"AUC {100 * rec['auc']:.2f}  |  train {rec['train_time']:.1f} s ({rec['images_per_s']:.0f} img/s)"
              f"  test {rec['test_time']:.1f} s  wall {rec['wall_time']:.1f} s  |  {rec['n_train']} normal, "
              f"{rec['n_oe']} OE, {rec['n_test']} test, {rec['n_params']} params, {rec['device']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
