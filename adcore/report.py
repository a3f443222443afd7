"""What the notebooks show: run cards, AUC tables (mean ± std over seeds), the paper beside ours.

Notebooks stay a narrative of short cells; everything that turns records into tables lives here and is tested.
"""
from __future__ import annotations

import os
import time
from typing import Any

import pandas as pd
import torch

from . import paper
from .experiment import RunConfig, device_name
from .results import config_hash
from .sweep import execute
from .train import pick_device

DATASET_NAMES = {"fmnist": "Fashion-MNIST", "mnist": "MNIST", "cifar10": "CIFAR-10",
                 "cifar100": "CIFAR-100", "emnist-letters": "EMNIST letters", "gtsrb": "GTSRB",
                 "tiny-imagenet": "Tiny-ImageNet"}
FMNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                  "Ankle boot")
CLASS_NAMES = {"fmnist": FMNIST_CLASSES, "cifar10": paper.CIFAR10_CLASSES, "mnist": tuple(map(str, range(10)))}


def dataset_label(name: str, source: str = "") -> str:
    """Readable dataset name. CIFAR-10 read from the lossy JPEG copy (a tarball of JPEG folders) is labelled
    "CIFAR-10 (JPEG copy)", as results on it are not results on the original CIFAR-10."""
    if name == "cifar10":
        return "CIFAR-10 (JPEG copy)" if source.endswith((".tar.gz", ".tgz", ".tar")) else "CIFAR-10"
    return DATASET_NAMES.get(name, name)


def class_label(dataset: str, cls: Any) -> str:
    names = CLASS_NAMES.get(dataset)
    if isinstance(cls, (list, tuple)):
        return "+".join(class_label(dataset, c) for c in cls)
    return f"{cls}: {names[cls]}" if names and isinstance(cls, int) and cls < len(names) else str(cls)


def run_card(settings: dict[str, Any], df: pd.DataFrame, device: str | None = None) -> pd.DataFrame:
    """The facts a reader needs before trusting a number: profile, data, OE, budget, seeds, device."""
    def values(col: str, none: str = "none") -> str:
        vals = sorted({none if v is None or v != v else str(v) for v in df[col]}, key=lambda v: (len(v), v))
        return ", ".join(vals)
    rows = {
        "profile": settings["profile"],
        "dataset": ", ".join(dict.fromkeys(df["data"])),
        "normal classes": values("normal_class"),
        "OE source": values("oe"),
        "OE size": values("n_oe"),
        "epochs": values("epochs"),
        "training images per class": values("n_train"),
        "test images": values("n_test"),
        "seeds": str(df["seed"].nunique()),
        "runs": str(len(df)),
        "device": ", ".join(sorted(set(df["device"]))) if "device" in df else device_name(pick_device(device)),
        "torch": torch.__version__,
    }
    return pd.DataFrame({"setting": list(rows), "value": list(rows.values())}).set_index("setting")


def collect(runs: list[tuple[dict[str, Any], RunConfig]], results_dir: str | os.PathLike, *,
            executor: str = "local", address: str | None = None, device: str | None = None,
            progress: bool = True, runner=None) -> pd.DataFrame:
    """Run what is missing (resumable) and return one row per run: the labels, the config and the record."""
    configs = [c for _, c in runs]
    df = execute(configs, results_dir, executor=executor, address=address, device=device, progress=progress,
                 runner=runner)
    labels = pd.DataFrame([{**lab, "config_hash": config_hash(c)} for lab, c in runs])
    out = labels.merge(df.drop(columns=[k for k in labels.columns if k in df.columns and k != "config_hash"]),
                       on="config_hash", how="left")
    out["auc"] = 100 * out["auc"]
    sources = out["data_source"] if "data_source" in out else [""] * len(out)
    out["data"] = [dataset_label(d, str(src)) for d, src in zip(out["dataset"], sources)]
    out["normal_class"] = out["normal_class"].map(lambda v: tuple(v) if isinstance(v, list) else v)
    return out


def auc_table(df: pd.DataFrame, index: str, columns: str, dataset: str | None = None) -> pd.DataFrame:
    """Mean ± std of AUC (%) over seeds, rows = ``index``, columns = ``columns``, plus a mean row."""
    g = df.groupby([index, columns])["auc"]
    mean, std = g.mean().unstack(columns), g.std(ddof=0).unstack(columns)
    cols = list(dict.fromkeys(df[columns]))  # keep the order of appearance
    mean, std = mean[cols], std[cols]
    n_seeds = df.groupby([index, columns])["seed"].nunique().max()
    cells = mean.map(lambda m: f"{m:.1f}") if n_seeds == 1 else \
        mean.round(1).astype(str) + " ± " + std.round(1).astype(str)
    per_seed = df.groupby([columns, "seed"])["auc"].mean().unstack("seed")  # mean over classes, per seed
    mean_row = per_seed.mean(axis=1)[cols]
    mean_std = per_seed.std(axis=1, ddof=0)[cols]
    cells.loc["mean"] = [f"{m:.1f}" if n_seeds == 1 else f"{m:.1f} ± {s:.1f}" for m, s in zip(mean_row, mean_std)]
    if dataset:
        cells.index = [class_label(dataset, i) if i != "mean" else i for i in cells.index]
    return cells


def mean_auc(df: pd.DataFrame, by: str | list[str]) -> pd.Series:
    """Mean AUC (%) over classes and seeds for each value of ``by``."""
    return df.groupby(by)["auc"].mean()


def with_paper(df: pd.DataFrame) -> pd.DataFrame:
    """Our CIFAR-10 mean AUC per method beside the paper's published number for the same method."""
    ref = paper.cifar10_table()
    classes = sorted(df["normal_class"].unique())
    rows = []
    for method in dict.fromkeys(df["method"]):
        col = paper.METHOD_COLUMN.get(method)
        sub = df[df["method"] == method]
        published = ref.loc[[paper.CIFAR10_CLASSES[c] for c in classes], col].mean() if col else float("nan")
        rows.append({"method": method, "ours (mean AUC %)": round(sub["auc"].mean(), 1),
                     "paper, same classes": round(published, 1) if col else None,
                     "paper, all 10 classes": ref.loc["mean", col] if col else None,
                     "paper column": col or "—"})
    return pd.DataFrame(rows).set_index("method")


class Stopwatch:
    """Wall time of a notebook's execution, for its run card."""

    def __init__(self) -> None:
        self.t0 = time.perf_counter()

    def minutes(self) -> str:
        return f"{(time.perf_counter() - self.t0) / 60:.1f} min"
