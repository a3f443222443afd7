"""Command line.

``python -m adcore run --dataset fmnist --normal-class 0 --objective hsc --oe natural ...``: one run (one flag per
``RunConfig`` field).
``python -m adcore sweep GRID --profile paper [--executor ray] [--dry-run] [-p key value ...]``: a named grid into
the results store (``python -m adcore sweep --list`` lists the grids).
``python -m adcore book [--profile laptop] [--only NAME] ...``: execute the notebooks and render the book.

A bad input (an unknown name, a value out of range, a path that does not exist, ``--device cuda`` without CUDA)
is answered before any work starts with one line, ``adcore: error: ...``, and exit status 2; a run that fails
(e.g. its loss became non-finite) ends with one such line and exit status 1. ``--traceback`` (anywhere on the
command line) shows the Python stack instead.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from typing import Any

from .config import ConfigError, check_device, check_path, check_results, parse_value
from .experiment import RunConfig
from .train import LAYOUT_ENV, LAYOUTS

PROG = "adcore"
# Errors that mean "the input is wrong" (exit status 2, as argparse's); anything else a run raises exits with 1.
INPUT_ERRORS = (ConfigError, ValueError, FileNotFoundError, ImportError, NotADirectoryError)


class Parser(argparse.ArgumentParser):
    """argparse with its usage errors on one line: ``adcore: error: ...`` (exit status 2)."""

    def error(self, message: str):  # noqa: D102 - argparse's hook
        sub = self.prog.split()[-1] if len(self.prog.split()) > 3 else ""
        hint = f"python -m adcore {sub + ' ' if sub else ''}--help"
        self.exit(2, f"{PROG}: error: {one_line(message)} (see {hint})\n")


def one_line(message: Any) -> str:
    """A message on one line: its lines joined, blank ones dropped."""
    return " ".join(part.strip() for part in str(message).splitlines() if part.strip())


def error_line(e: BaseException) -> str:
    """``adcore: error: ...`` for an exception: the message of an input error, else its type and message."""
    text = one_line(e) or type(e).__name__
    return f"{PROG}: error: {text if isinstance(e, INPUT_ERRORS) else f'{type(e).__name__}: {text}'}"


def field_parser(annotation: str):
    """Parse a command-line value for a dataclass field of type ``annotation`` (e.g. "int | None",
    "tuple[int, ...]", "int | tuple[int, ...]"); "none" gives None where the type allows it. Text that does not
    parse stays text, so that the config's own validation rejects it with the message the Python API and the
    notebooks give (``epochs='ten' must be an integer``)."""
    def parse(text: str) -> Any:
        if "None" in annotation and text.lower() == "none":
            return None
        try:
            if "tuple" in annotation:
                parts = [int(p) for p in text.split(",") if p.strip()]
                return parts[0] if annotation.startswith("int |") and len(parts) == 1 else tuple(parts)
            if annotation.startswith(("int", "float")):  # bool fields are flags (add_fields)
                return (int if annotation.startswith("int") else float)(text)
        except ValueError:
            pass
        return text
    parse.__name__ = annotation  # argparse names the type in its error message
    return parse


def add_fields(parser: argparse.ArgumentParser, cls: type) -> None:
    """One flag per field of the config dataclass ``cls``, typed and defaulted from the field; ``bool | None``
    fields get ``--x / --no-x``, optional fields with a default also ``--no-x`` (sets None)."""
    for f in dataclasses.fields(cls):
        flag, help_text = "--" + f.name.replace("_", "-"), f.metadata.get("help", "")
        ann = str(f.type)
        if ann.startswith("bool"):
            parser.add_argument(flag, dest=f.name, default=f.default, action=argparse.BooleanOptionalAction,
                                help=help_text)
            continue
        parser.add_argument(flag, dest=f.name, default=f.default, type=field_parser(ann), metavar=f.name.upper(),
                            help=f"{help_text} (default: {f.default})".strip())
        if "None" in ann and f.default is not None:
            parser.add_argument(f"--no-{f.name.replace('_', '-')}", dest=f.name, action="store_const", const=None,
                                help=f"{f.name} = None")


def build_parser() -> argparse.ArgumentParser:
    from . import chapters

    p = Parser(prog="python -m adcore", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="train and evaluate one configuration; prints AUC and timings")
    add_fields(r, RunConfig)
    r.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: CUDA when present)")
    r.add_argument("--quiet", action="store_true", help="no progress bar")
    r.add_argument("--json", action="store_true", help="print the whole record as JSON")

    w = sub.add_parser("sweep", help="run a named grid (e.g. the paper's CIFAR-10 table) into the results store",
                       description="Run every configuration of a named grid that has no record in the results "
                                   "folder yet; failing runs are retried, then reported at the end.")
    w.add_argument("grid", nargs="?", choices=list(chapters.GRIDS), metavar="GRID", help="a named grid (see --list)")
    w.add_argument("--list", action="store_true", help="list the named grids with their paper run counts")
    w.add_argument("--profile", default="laptop", choices=chapters.PROFILES,
                   help="smoke | laptop (default) | paper: the seed's exact settings")
    w.add_argument("-p", "--param", nargs=2, action="append", default=[], metavar=("KEY", "VALUE"),
                   help="override a setting, e.g. -p seeds 3 -p classes [0,1] -p epochs 50 -p oe None")
    w.add_argument("--executor", default="local", choices=("local", "ray"),
                   help="local: in this process; ray: one Ray task per job")
    w.add_argument("--address", default=None, help="Ray cluster address (default: $RAY_ADDRESS, else a local Ray)")
    w.add_argument("--gpus-per-run", type=float, default=None,
                   help="GPUs per Ray task; fractions pack runs onto one GPU (default: 1 if the cluster has GPUs)")
    w.add_argument("--cpus-per-run", type=float, default=1, help="CPUs per Ray task (default 1)")
    w.add_argument("--retries", type=int, default=2, help="retries of a failing run before it is reported")
    w.add_argument("--max-runs", type=int, default=None, help="start at most N of the missing runs")
    w.add_argument("--group-size", type=int, default=None,
                   help="at most K compatible runs trained in the same steps (default: 40 on CUDA, 10 on CPU); 1 = off")
    w.add_argument("--results", default=None, help="results folder (default: results/, the folder the notebooks read)")
    w.add_argument("--data-root", default=None, help="dataset folder for every run")
    w.add_argument("--oe-root", default=None, help="OE source folder for every run")
    w.add_argument("--device", default=None, help="cpu, cuda ... (default: CUDA when the run has a GPU)")
    w.add_argument("--dry-run", action="store_true", help="print the number of runs (and a few) and stop")
    w.add_argument("--quiet", action="store_true", help="no progress bar")
    w.add_argument("--repair", action="store_true",
                   help="move corrupt records of the results folder aside (into corrupt/) and re-run them")
    for q in (r, w):
        q.add_argument("--channels-last", default=None, choices=LAYOUTS,
                       help=f"CPU memory layout: auto (default: NHWC for the LeNets, where it is measured safe and "
                            f"faster), on or off; sets ${LAYOUT_ENV} for every run this command starts")
        q.add_argument("--traceback", action="store_true", help="on an error, show the Python stack")
    sub.add_parser("book", help="execute the notebooks with a profile and render the book (see book --help)",
                   add_help=False)
    from .owncli import add_parsers as add_own_data_parsers  # fit, score: your own data
    add_own_data_parsers(sub)
    return p


def sweep_main(args: argparse.Namespace) -> int:
    from . import chapters
    from .runner import ResultStore, execute, table

    if args.list or not args.grid:
        rows = [(g.name, f"{g.paper_runs:,}", g.factorization) for g in chapters.GRIDS.values()]
        print(table(("grid", "paper runs", "paper factorization"), rows))
        if not args.list:
            print(f"{PROG}: error: name a GRID (above), e.g. python -m adcore sweep cifar10_table --dry-run",
                  file=sys.stderr)
        return 0 if args.list else 2
    for name in ("retries", "max_runs", "group_size"):
        value = getattr(args, name)
        if value is not None and value < (0 if name == "retries" else 1):
            raise ConfigError(f"--{name.replace('_', '-')} {value} must be >= {0 if name == 'retries' else 1}")
    if args.executor == "local":  # on Ray the workers' devices count, not the driver's
        check_device(args.device)
    check_path("data_root", args.data_root), check_path("oe_root", args.oe_root)  # before building the grid
    check_results(args.results)
    overrides = {k: parse_value(v) for k, v in args.param}
    # Every configuration is built, so validated, before the first run starts.
    configs = chapters.grid(args.grid, args.profile, **overrides)
    paths = {k: v for k, v in (("data_root", args.data_root), ("oe_root", args.oe_root)) if v is not None}
    configs = [c.replace(**{k: v for k, v in paths.items() if hasattr(c, k)}) for c in configs]
    store = ResultStore(args.results or "results")
    if args.repair:
        for moved in store.repair():
            print(f"repair: moved corrupt record {moved.name} to {moved.parent}; its configuration runs again",
                  file=sys.stderr)
    if args.dry_run:
        done = sum(store.has(c) for c in configs)
        print(f"{args.grid} (profile {args.profile}): {len(configs)} runs, {done} already in {store.path}, "
              f"{len(configs) - done} to run")
        if args.profile == "paper":
            print(f"  paper design: {chapters.GRIDS[args.grid].factorization}")
        shown = configs if len(configs) <= 4 else configs[:3] + [None] + configs[-1:]
        for c in shown:
            print("  ..." if c is None else f"  {c.describe()}")
        return 0
    try:
        result = execute(configs, store, executor=args.executor, address=args.address, device=args.device,
                         progress=not args.quiet, gpus_per_run=args.gpus_per_run, cpus_per_run=args.cpus_per_run,
                         retries=args.retries, max_runs=args.max_runs, group_size=args.group_size)
    except KeyboardInterrupt:
        print(f"\ninterrupted: finished runs are recorded in {store.path}; run the same command again to resume",
              file=sys.stderr)
        return 130
    print(result.summary())
    print(f"records in {store.path.resolve()}")
    return 1 if result.failures else 0


def run_main(args: argparse.Namespace) -> int:
    cfg = RunConfig(**{f.name: getattr(args, f.name) for f in dataclasses.fields(RunConfig)})
    rec = cfg.run(device=args.device, progress=not args.quiet)
    if args.json:
        print(json.dumps(rec, default=str))
    else:
        print(f"AUC {100 * rec['auc']:.2f}  |  train {rec['train_time']:.1f} s ({rec['images_per_s']:.0f} img/s)"
              f"  test {rec['test_time']:.1f} s  wall {rec['wall_time']:.1f} s  |  {rec['n_train']} normal, "
              f"{rec['n_oe']} OE, {rec['n_test']} test, {rec['n_params']} params, {rec['device']}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """The command line; every error ends in one line on stderr (``--traceback``: the stack) and a status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    show_stack = "--traceback" in argv
    argv = [a for a in argv if a != "--traceback"]
    try:
        if argv[:1] == ["book"]:
            from . import book
            return book.main(argv[1:])
        args = build_parser().parse_args(argv)
        if getattr(args, "channels_last", None) is not None:  # one place for every run of this process, its
            os.environ[LAYOUT_ENV] = args.channels_last  # workers and kernels
        if args.command in ("fit", "score"):  # adcore.owncli
            from . import owncli
            return owncli.run(args)
        return sweep_main(args) if args.command == "sweep" else run_main(args)
    except SystemExit as e:  # argparse (usage errors, --help) and book's checks
        if isinstance(e.code, str):
            if show_stack:
                raise
            print(f"{PROG}: error: {one_line(e.code)}", file=sys.stderr)
            return 2
        return 0 if e.code is None else int(e.code)
    except KeyboardInterrupt:
        if show_stack:
            raise
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # noqa: BLE001 - the command line's one place that turns errors into a line
        if show_stack:
            raise
        print(error_line(e), file=sys.stderr)
        return 2 if isinstance(e, INPUT_ERRORS) else 1


if __name__ == "__main__":
    sys.exit(main())
