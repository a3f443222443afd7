"""What every chapter's notebook shows, computed the same way: the runs with their labels (``collect``), mean ±
std tables, run cards glued into the prose, band plots, readable names.

Chapter-specific tables and claim checks live in ``adcore.chapters``; notebooks stay a narrative of short cells.
"""
from __future__ import annotations

import os
import re
import time
from typing import Any, Iterable

import numpy as np
import pandas as pd
import torch

from . import paper
from .config import device_name
from .data import IMAGENET30_CLASSES
from .runner import config_hash, execute
from .tabular import NAMES as TABULAR_NAMES
from .train import pick_device

DATASET_NAMES = {"fmnist": "Fashion-MNIST", "mnist": "MNIST", "cifar10": "CIFAR-10", "cifar100": "CIFAR-100",
                 "emnist-letters": "EMNIST letters", "gtsrb": "GTSRB", "tiny-imagenet": "Tiny-ImageNet",
                 "imagenet30": "ImageNet-30", **TABULAR_NAMES}
FMNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                  "Ankle boot")
CLASS_NAMES = {"fmnist": FMNIST_CLASSES, "cifar10": paper.CIFAR10_CLASSES, "mnist": tuple(map(str, range(10))),
               "imagenet30": IMAGENET30_CLASSES}


def dataset_label(name: str, source: str = "") -> str:
    """Readable dataset name. CIFAR-10 read from the lossy JPEG copy (a tarball of JPEG folders) is labelled
    "CIFAR-10 (JPEG copy)", as results on it are not results on the original CIFAR-10."""
    if name == "cifar10":
        return "CIFAR-10 (JPEG copy)" if str(source).endswith((".tar.gz", ".tgz", ".tar")) else "CIFAR-10"
    return DATASET_NAMES.get(name, name)


def class_label(dataset: str, cls: Any) -> str:
    names = CLASS_NAMES.get(dataset)
    if isinstance(cls, (list, tuple)):
        return "+".join(class_label(dataset, c) for c in cls)
    return f"{cls}: {names[cls]}" if names and isinstance(cls, int) and cls < len(names) else str(cls)


def given(**params: Any) -> dict[str, Any]:
    """The notebook parameters that were set (not None): the overrides of the profile's settings."""
    return {k: v for k, v in params.items() if v is not None}


def collect(runs: list[tuple[dict[str, Any], Any]], results_dir: str | os.PathLike, **execute_kw: Any
            ) -> pd.DataFrame:
    """Run what is missing from the store (:func:`adcore.runner.execute`; resumable, locally or on Ray) and return
    one row per (labels, config): the labels, the record, AUC in %, the readable dataset name in ``data``.
    Raises :class:`adcore.runner.SweepError` when runs failed. ``df.attrs`` holds ``ran`` (trained by this call)
    and ``stored`` (read from the store)."""
    configs = [c for _, c in runs]
    result = execute(configs, results_dir, **execute_kw).raise_for_failures()
    df = result.frame
    labels = pd.DataFrame([{**lab, "config_hash": config_hash(c)} for lab, c in runs])
    out = labels.merge(df.drop(columns=[k for k in labels.columns if k in df.columns and k != "config_hash"]),
                       on="config_hash", how="left")
    out["auc"] = 100 * out["auc"]
    sources = out["data_source"] if "data_source" in out else [""] * len(out)
    out["data"] = [dataset_label(d, str(src)) for d, src in zip(out["dataset"], sources)]
    if "normal_class" in out:
        out["normal_class"] = out["normal_class"].map(lambda v: tuple(v) if isinstance(v, list) else v)
    out.attrs.update(ran=result.ran, stored=result.already)
    return out


def cells(mean: pd.DataFrame | pd.Series, std: Any = None, n: int = 1, digits: int = 1):
    """Table cells "m" (one seed) or "m ± s" (several); "—" where there is no value."""
    fmt = lambda m, s: "—" if m != m else f"{m:.{digits}f}" if n <= 1 or s is None or s != s else \
        f"{m:.{digits}f} ± {s:.{digits}f}"  # noqa: E731
    if isinstance(mean, pd.DataFrame):
        std = std if std is not None else pd.DataFrame(np.nan, index=mean.index, columns=mean.columns)
        return pd.DataFrame([[fmt(m, s) for m, s in zip(mr, sr)] for mr, sr in zip(mean.values, std.values)],
                            index=mean.index, columns=mean.columns)
    std = std if std is not None else pd.Series(np.nan, index=mean.index)
    return pd.Series([fmt(m, s) for m, s in zip(mean, std)], index=mean.index)


def auc_table(df: pd.DataFrame, index: str, columns: str, dataset: str | None = None,
              mean_row: bool = True) -> pd.DataFrame:
    """Mean ± std of AUC (%) over seeds, rows = ``index``, columns = ``columns`` (order of appearance), plus a
    "mean" row: the mean over rows per seed, then mean ± std over seeds."""
    g = df.groupby([index, columns])["auc"]
    cols = list(dict.fromkeys(df[columns]))
    mean, std = g.mean().unstack(columns)[cols], g.std(ddof=0).unstack(columns)[cols]
    n_seeds = int(df.groupby([index, columns])["seed"].nunique().max()) if "seed" in df else 1
    out = cells(mean, std, n_seeds)
    if mean_row:
        per_seed = df.groupby([columns, "seed"])["auc"].mean().unstack("seed") if "seed" in df else \
            df.groupby(columns)["auc"].mean().to_frame()
        out.loc["mean"] = cells(per_seed.mean(axis=1)[cols], per_seed.std(axis=1, ddof=0)[cols], n_seeds)
    if dataset:
        out.index = [class_label(dataset, i) if i != "mean" else i for i in out.index]
    return out


def values(items: Iterable[Any], none: str = "all") -> str:
    """The distinct values of a column for a run card: integers without ".0", sorted, None as ``none``."""
    def text(v):
        if v is None or isinstance(v, float) and v != v:
            return none
        if isinstance(v, float) and v.is_integer():
            return str(int(v))
        return str(v)
    return ", ".join(sorted({text(v) for v in items}, key=lambda t: (len(t), t))) or "—"


def run_card(profile: str, df: pd.DataFrame, rows: dict[str, Any], device: str | None = None) -> pd.DataFrame:
    """The facts a reader needs before trusting a number: the profile, the chapter's ``rows`` (data, budget...),
    then seeds, runs (trained now / read from the store, from ``df.attrs``), device and torch."""
    distinct = df.drop_duplicates("config_hash") if "config_hash" in df else df
    devices = sorted({d for d in distinct.get("device", []) if isinstance(d, str)})
    ran, stored = df.attrs.get("ran"), df.attrs.get("stored")
    runs = f"{len(distinct)}" + (f" ({ran} trained now, {stored} read from the store)" if ran is not None else "")
    seeds = {} if any(k.startswith("seeds") for k in rows) else {
        "seeds": str(distinct["seed"].nunique()) if "seed" in distinct else "—"}
    card = {"profile": profile, **rows, **seeds,
            "runs": runs,
            "device": ", ".join(devices) if devices else device_name(pick_device(device)),
            "torch": torch.__version__}
    return pd.DataFrame({"setting": list(card), "value": [str(v) for v in card.values()]}).set_index("setting")


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


def glue_card(card: pd.DataFrame, prefix: str) -> pd.DataFrame:
    """Glue every row of a run card as ``<prefix>_<slug of the setting>`` (e.g. ``tab_profile``) for the prose,
    and return the card for display."""
    from myst_nb import glue

    for setting, value in card["value"].items():
        glue(f"{prefix}_{slug(setting)}", value, display=False)
    return card


def band_plot(ax, band: pd.DataFrame, x: str, hue: str, label=str.upper, categorical: bool = False) -> None:
    """One line per ``hue`` of ``band``'s ``mean`` against ``x``, with a ± ``std`` band."""
    xs = {v: i for i, v in enumerate(sorted(band[x].unique()))}
    for key, g in band.groupby(hue, sort=False):
        pos = g[x].map(xs) if categorical else g[x]
        ax.plot(pos, g["mean"], marker="o", label=label(key))
        ax.fill_between(pos, g["mean"] - g["std"].fillna(0), g["mean"] + g["std"].fillna(0), alpha=0.2)
    if categorical:
        ax.set_xticks(list(xs.values()), [f"{v:g}" for v in xs])


class Stopwatch:
    """Wall time of a notebook's execution, for its run card."""

    def __init__(self) -> None:
        self.t0 = time.perf_counter()

    def minutes(self) -> str:
        return f"{(time.perf_counter() - self.t0) / 60:.1f} min"
