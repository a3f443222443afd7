"""Command line.

``python -m adcore run --dataset fmnist --normal-class 0 --objective hsc --oe natural ...``: one run.
``python -m adcore sweep GRID --profile paper [--executor ray] [--dry-run] [-p key value ...]``: a named grid into
the results store (``python -m adcore sweep --list`` lists the grids).
"""
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

    from .sweep import GRIDS, PROFILE_NAMES
    w = sub.add_parser("sweep", help="run a named grid (e.g. the paper's CIFAR-10 table) into the results store",
                       description="Run every configuration of a named grid that has no record in the results "
                                   "folder yet; failing runs are retried, then reported at the end.")
    w.add_argument("grid", nargs="?", choices=list(GRIDS), metavar="GRID", help="a named grid (see --list)")
    w.add_argument("--list", action="store_true", help="list the named grids with their paper run counts")
    w.add_argument("--profile", default="laptop", choices=PROFILE_NAMES,
                   help="smoke | laptop (default) | paper: the seed's exact settings")
    w.add_argument("-p", "--param", nargs=2, action="append", default=[], metavar=("KEY", "VALUE"),
                   help="override a setting, e.g. -p seeds 3 -p classes [0,1] -p epochs 50 -p oe None")
    w.add_argument("--executor", default="local", choices=("local", "ray"),
                   help="local: in this process; ray: one Ray task per run")
    w.add_argument("--address", default=None, help="Ray cluster address (default: $RAY_ADDRESS, else a local Ray)")
    w.add_argument("--gpus-per-run", type=float, default=None,
                   help="GPUs per Ray task; fractions pack runs onto one GPU (default: 1 if the cluster has GPUs)")
    w.add_argument("--cpus-per-run", type=float, default=1, help="CPUs per Ray task (default 1)")
    w.add_argument("--retries", type=int, default=2, help="retries of a failing run before it is reported")
    w.add_argument("--max-runs", type=int, default=None, help="start at most N of the missing runs")
    w.add_argument("--group-size", type=int, default=None,
                   help="K-model groups (when adcore.multi.run_many exists): at most K runs per task; 1 = off")
    w.add_argument("--results", default=None, help="results folder (default: results/, the folder the notebooks read)")
    w.add_argument("--data-root", default=None, help="dataset folder for every run")
    w.add_argument("--oe-root", default=None, help="OE source folder for every run")
    w.add_argument("--device", default=None, help="cpu, cuda ... (default: CUDA when the run has a GPU)")
    w.add_argument("--dry-run", action="store_true", help="print the number of runs (and a few) and stop")
    w.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def sweep_main(args: argparse.Namespace) -> int:
    from . import sweep
    from .results import ResultStore
    if args.list or not args.grid:
        rows = [(g.name, f"{g.paper_runs:,}", g.factorization) for g in sweep.GRIDS.values()]
        print(sweep._table(("grid", "paper runs", "paper factorization"), rows))
        if not args.list:
            print("error: name a GRID (above), e.g. python -m adcore sweep cifar10_table --dry-run", file=sys.stderr)
        return 0 if args.list else 2
    overrides = {k: sweep.parse_value(v) for k, v in args.param}
    try:
        configs = sweep.grid(args.grid, args.profile, **overrides)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    paths = {k: v for k, v in (("data_root", args.data_root), ("oe_root", args.oe_root)) if v is not None}
    configs = [c.replace(**paths) for c in configs] if paths else configs
    store = ResultStore(args.results or "results")
    if args.dry_run:
        done = sum(store.has(c) for c in configs)
        print(f"{args.grid} (profile {args.profile}): {len(configs)} runs, {done} already in {store.path}, "
              f"{len(configs) - done} to run")
        if args.profile == "paper":
            print(f"  paper design: {sweep.GRIDS[args.grid].factorization}")
        shown = configs if len(configs) <= 4 else configs[:3] + [None] + configs[-1:]
        for c in shown:
            print("  ..." if c is None else f"  {sweep.describe(c)}")
        return 0
    try:
        result = sweep.run_sweep(configs, store, executor=args.executor, address=args.address, device=args.device,
                                 progress=not args.quiet, gpus_per_run=args.gpus_per_run,
                                 cpus_per_run=args.cpus_per_run, retries=args.retries, max_runs=args.max_runs,
                                 group_size=args.group_size)
    except (ValueError, ImportError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"\ninterrupted: finished runs are recorded in {store.path}; run the same command again to resume",
              file=sys.stderr)
        return 130
    print(result.summary())
    print(f"records in {store.path.resolve()}")
    return 1 if result.failures else 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "sweep":
        return sweep_main(args)
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
