"""``adcore fit`` and ``adcore score``: a detector for your own data on the command line (:mod:`adcore.detector`).

``python -m adcore fit --data DIR|FILE [--anomalies DIR|FILE] [--test DIR|FILE] --objective hsc --out model.adcore``
trains, calibrates the threshold on held-out normal data and writes one model file; ``python -m adcore score
model.adcore INPUT... [--csv scores.csv]`` writes ``file,score,is_anomaly`` rows (score: higher = more anomalous;
is_anomaly: score above the model's threshold). Every input is checked before any training or writing: a bad one
is one line ``adcore: error: ...`` and exit status 2, and nothing is written. Outputs are written atomically.
"""
from __future__ import annotations

import argparse
import contextlib
import csv
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from .config import ConfigError, atomic_write


def add_parsers(sub: Any) -> None:
    """The ``fit`` and ``score`` subcommands, on the main parser's subparsers."""
    from .detector import METHODS
    f = sub.add_parser("fit", help="train a detector on your own image folder or table; write one model file",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    f.add_argument("--data", required=True, metavar="DIR|FILE",
                   help="normal training data: an image folder (DIR/normal/ or DIR itself) or a .csv/.npy/.npz table")
    f.add_argument("--anomalies", metavar="DIR|FILE", help="labelled anomalies (Deep SAD, SSAD; OE for hsc/bce/...)")
    f.add_argument("--oe", metavar="NAME|DIR|FILE",
                   help="Outlier Exposure: a source name (natural, noise, cifar100, ...) or your own folder/table "
                        "(default: the labelled anomalies, else natural for images and noise for tables)")
    f.add_argument("--test", metavar="DIR|FILE",
                   help="labelled test data: a folder with normal/ and anomalous/ (or --test-labels), or a table "
                        "with a label column; prints AUROC, AUPR-in/out, FPR@95TPR")
    f.add_argument("--test-labels", metavar="CSV", help="file,label rows for an image --test folder; a label file "
                                                        "for a .npy test table")
    f.add_argument("--labels", metavar="FILE", help="labels of the --data table rows (0 normal, 1 anomaly)")
    f.add_argument("--label-column", metavar="NAME", help="the label column of CSV tables (default: 'label')")
    f.add_argument("--objective", default="hsc", choices=METHODS, metavar="OBJECTIVE",
                   help=f"{', '.join(METHODS)} (default: hsc)")
    f.add_argument("--out", required=True, metavar="MODEL", help="the model file to write, e.g. model.adcore")
    f.add_argument("--csv", metavar="FILE", help="write the --test scores as file,score,is_anomaly,label rows")
    f.add_argument("--net", default=None, help="mnist_lenet, cifar10_lenet, resnet18_cbam (default: from the data)")
    f.add_argument("--image-size", type=int, default=None, metavar="N", help="resize every image to N x N first")
    for name, kind, default, help_text in (
            ("epochs", int, 10, "training epochs"), ("batch-size", int, 128, "batch size (normal; OE the same)"),
            ("lr", float, 1e-3, "Adam learning rate"), ("weight-decay", float, 5e-7, "weight decay"),
            ("rep-dim", int, None, "output dimension of the network"), ("oe-size", int, 4096, "OE samples drawn"),
            ("eta", float, 1.0, "Deep SAD's weight of labelled samples"), ("nu", float, 0.1, "nu (soft Deep SVDD, "
                                                                                             "OC-SVM, SSAD)"),
            ("fpr", float, 0.05, "false-positive rate on held-out normals that sets the threshold"),
            ("holdout", float, 0.1, "share of the normal data held out for the threshold"),
            ("seed", int, 0, "random seed")):
        f.add_argument(f"--{name}", type=kind, default=default, metavar=name.split("-")[0].upper(),
                       help=f"{help_text} (default: {default})")
    f.add_argument("--device", default=None, help="cpu, cuda ... (default: CUDA when present)")
    f.add_argument("--quiet", action="store_true", help="no progress bars")

    s = sub.add_parser("score", help="score images or table rows with a saved detector",
                       description="Score inputs with a model file written by `adcore fit`: file,score,is_anomaly "
                                   "rows (higher score = more anomalous).")
    s.add_argument("model", metavar="MODEL", help="a model file written by adcore fit")
    s.add_argument("inputs", nargs="+", metavar="INPUT", help="image files, folders (recursive) or table files")
    s.add_argument("--csv", metavar="FILE", help="write the rows here (default: print them)")
    s.add_argument("--labels", metavar="FILE", help="labels of the inputs (file,label CSV for images; a label file "
                                                    "for a table): also prints AUROC, AUPR-in/out, FPR@95TPR")
    s.add_argument("--device", default=None, help="cpu, cuda ... (default: the CPU)")
    s.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    return fit_main(args) if args.command == "fit" else score_main(args)


def _check_out(path: str | None, what: str) -> None:
    if path is None:
        return
    p = Path(path)
    if p.is_dir():
        raise ConfigError(f"--{what} {path!r} is a folder; give a file name")
    if not p.parent.is_dir():
        raise ConfigError(f"--{what} {path!r}: no folder {str(p.parent)!r} to write it into")


def _metrics_line(m: dict[str, float], n: int) -> str:
    from .metrics import NAMES
    return f"{n:,} labelled inputs: " + "  ".join(
        f"{NAMES[k]} {100 * v:.2f}" for k, v in m.items())


def write_rows(path: str | None, ids: list[str], scores: np.ndarray, threshold: float,
               labels: np.ndarray | None = None) -> None:
    """``file,score,is_anomaly[,label]`` rows, scores in full precision (repr of the float), to ``path``
    atomically, or to stdout."""
    with contextlib.nullcontext(sys.stdout) if path is None else atomic_write(path, "w") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["file", "score", "is_anomaly"] + (["label"] if labels is not None else []))
        for i, (name, s) in enumerate(zip(ids, scores)):
            w.writerow([name, repr(float(s)), int(s > threshold)] + ([int(labels[i])] if labels is not None else []))


def _test_set(args: argparse.Namespace) -> Any:
    """The --test input, checked before training: (what to score, labels)."""
    from . import owndata
    if args.test is None:
        if args.test_labels is not None:
            raise ConfigError("--test-labels needs --test")
        return None
    if owndata.is_table(args.test):
        t = owndata.read_table(args.test, args.label_column, args.test_labels)
        if t.y is None:
            raise ConfigError(f"--test {args.test!r} has no labels: add a label column (or --label-column NAME), "
                              "or --test-labels FILE")
        return args.test, t.y
    files, y = owndata.labelled_files(args.test, args.test_labels)
    return [str(f) for f in files], y


def fit_main(args: argparse.Namespace) -> int:
    from . import owndata
    from .detector import Detector
    _check_out(args.out, "out")
    _check_out(args.csv, "csv")
    if args.csv is not None and args.test is None:
        raise ConfigError("--csv writes the scores of the test set: give --test too")
    det = Detector(args.objective, net=args.net, image_size=args.image_size, epochs=args.epochs,
                   batch_size=args.batch_size, lr=args.lr, weight_decay=args.weight_decay, rep_dim=args.rep_dim,
                   oe=args.oe, oe_size=args.oe_size, eta=args.eta, nu=args.nu, fpr=args.fpr, holdout=args.holdout,
                   label_column=args.label_column, seed=args.seed, device=args.device, progress=not args.quiet)
    for name in ("data", "anomalies"):
        value = getattr(args, name)
        if value is not None and not Path(value).exists():
            raise ConfigError(f"--{name} {value!r}: no such file or folder")
    y = None
    if args.labels is not None:
        if not owndata.is_table(args.data):
            raise ConfigError("--labels labels the rows of a --data table; an image folder's anomalies go in "
                              "--anomalies")
        y = owndata.read_table(args.data, args.label_column, args.labels).y
    test = _test_set(args)
    det.fit(args.data, y, anomalies=args.anomalies)
    fit = det.fit_
    t = det.transform_
    what = (f"{fit['n_train'] + fit['n_holdout']:,} images ({'grey' if t['grey'] else 'RGB'} -> {t['channels']} x "
            f"{t['size']} x {t['size']}, {t['net']})" if t["kind"] == "image"
            else f"{fit['n_train'] + fit['n_holdout']:,} rows of {len(t['columns'])} columns")
    print(f"fit {args.objective} on {what} in {fit['fit_time']:.1f} s (training {fit['train_time']:.1f} s): "
          f"{fit['n_train']:,} train, {fit['n_holdout']:,} held out, {fit['n_anomalies']:,} labelled anomalies, "
          f"{fit['n_oe']:,} OE")
    print(f"threshold {det.threshold_:.6g}: {100 * fit['holdout_fpr']:.1f} % of the held-out normals above it "
          f"(target {100 * args.fpr:g} %)")
    if test is not None:
        t0 = time.perf_counter()
        scores, ids, _ = det.score_inputs(test[0], progress=not args.quiet)
        from .metrics import detection_metrics
        det.fit_["test"] = detection_metrics(test[1], scores)
        print(f"test ({time.perf_counter() - t0:.1f} s): " + _metrics_line(det.fit_["test"], len(scores)))
    det.save(args.out)
    if test is not None and args.csv is not None:
        write_rows(args.csv, ids, scores, det.threshold_, test[1])
        print(f"wrote {args.csv}")
    print(f"wrote {args.out} ({os.path.getsize(args.out) / 1e6:.1f} MB; {fit['versions']}; commit "
          f"{fit['commit'] or 'none'}; {fit['device']})")
    return 0


def score_main(args: argparse.Namespace) -> int:
    from . import owndata
    from .detector import Detector
    _check_out(args.csv, "csv")
    det = Detector.load(args.model, device=args.device)
    inputs: Any = list(args.inputs)
    labels = None
    if args.labels is not None:
        if det.kind_ == "image":
            if len(inputs) != 1:
                raise ConfigError("--labels with images takes one INPUT folder (the CSV's files are relative to it)")
            files, labels = owndata.labelled_files(inputs[0], args.labels)
            inputs = [str(f) for f in files]
        elif len(inputs) != 1:
            raise ConfigError("--labels with a table takes one INPUT table")
    t0 = time.perf_counter()
    scores, ids, y = det.score_inputs(inputs, progress=not args.quiet)
    elapsed = time.perf_counter() - t0
    if args.labels is not None and det.kind_ == "table":
        labels = owndata.read_table(inputs[0], det.transform_["label_column"], args.labels).y
    labels = labels if labels is not None else y
    write_rows(args.csv, ids, scores, det.threshold_, labels)
    out = sys.stdout if args.csv else sys.stderr
    flagged = int(np.sum(scores > det.threshold_))
    print(f"scored {len(scores):,} inputs in {elapsed:.1f} s: {flagged:,} ({100 * flagged / max(len(scores), 1):.1f} "
          f"%) above the threshold {det.threshold_:.6g}" + (f"; wrote {args.csv}" if args.csv else ""), file=out)
    if labels is not None and len(set(labels.tolist())) == 2:
        from .metrics import detection_metrics
        print(_metrics_line(detection_metrics(labels, scores), len(scores)), file=out)
    return 0
