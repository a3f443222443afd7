"""What every chapter's notebook shows, computed the same way: the runs with their labels (``run_missing``), mean ±
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
from .runner import check_execution, config_hash, execute  # noqa: F401 (check_execution: the notebooks')
from .tabular import NAMES as TABULAR_NAMES
from .train import pick_device

DATASET_NAMES = {"fmnist": "Fashion-MNIST", "mnist": "MNIST", "cifar10": "CIFAR-10", "cifar100": "CIFAR-100",
                 "emnist-letters": "EMNIST letters", "gtsrb": "GTSRB", "tiny-imagenet": "Tiny-ImageNet",
                 "imagenet30": "ImageNet-30", **TABULAR_NAMES}
EXTRA_METRICS = ("aupr_in", "aupr_out", "fpr95", "detection_error")  # beside auc; adcore.metrics
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


def run_missing(runs: list[tuple[dict[str, Any], Any]], results_dir: str | os.PathLike, **execute_kw: Any
                ) -> pd.DataFrame:
    """Trains what is missing from the store (:func:`adcore.runner.execute`; resumable, locally or on Ray) and return
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
    for k in EXTRA_METRICS:  # records written before adcore.metrics have none of them: NaN there
        if k in out:
            out[k] = 100 * out[k]
    sources = out["data_source"] if "data_source" in out else [""] * len(out)
    out["data"] = [dataset_label(d, str(src)) for d, src in zip(out["dataset"], sources)]
    if "normal_class" in out:
        out["normal_class"] = out["normal_class"].map(lambda v: tuple(v) if isinstance(v, list) else v)
    out.attrs.update(ran=result.ran, stored=result.already)
    return out


def t_interval(std1: Any, n: Any) -> Any:
    """Half-width of the 95 % Student-t interval of a mean of ``n`` values with sample std ``std1`` (ddof 1):
    t(0.975, n - 1) s / sqrt(n); NaN for n < 2."""
    from scipy.stats import t as student
    n_arr = np.asarray(n, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        q = np.where(n_arr >= 2, student.ppf(0.975, np.maximum(n_arr - 1, 1)), np.nan)
        half = q * np.asarray(std1, dtype=float) / np.sqrt(n_arr)
    return type(std1)(half, index=std1.index, **({"columns": std1.columns} if isinstance(std1, pd.DataFrame)
                                                   else {})) if isinstance(std1, (pd.DataFrame, pd.Series)) else half


def cells(mean: pd.DataFrame | pd.Series, std: Any = None, n: Any = 1, digits: int = 1, half: Any = None):
    """Table cells "m" (one seed) or "m ± s" (several); "—" where there is no value. ``n``: the number of seeds,
    for all cells or per cell (a frame / series like ``mean``). ``half``: the half-width of a 95 % interval per
    cell (:func:`t_interval`): the cells then read "m ± s [lo, hi]"."""
    def fmt(m, s, k, h=None):
        if m != m:
            return "—"
        if k is None or k != k or k <= 1 or s is None or s != s:
            return f"{m:.{digits}f}"
        ci = f" [{m - h:.{digits}f}, {m + h:.{digits}f}]" if h is not None and h == h else ""
        return f"{m:.{digits}f} ± {s:.{digits}f}{ci}"
    def flat(x, align=True):  # one value per cell, in mean's order; a scalar (or None) is every cell's
        if not isinstance(x, (pd.DataFrame, pd.Series)):
            return np.full(mean.shape, x, dtype=object).ravel()
        return (x.reindex_like(mean) if align else x).values.ravel()
    out = [fmt(*c) for c in zip(mean.values.ravel(), flat(std, align=False), flat(n), flat(half))]
    return type(mean)(np.array(out, dtype=object).reshape(mean.shape), index=mean.index,
                      **({"columns": mean.columns} if isinstance(mean, pd.DataFrame) else {}))


def auc_table(df: pd.DataFrame, index: str, columns: str, dataset: str | None = None,
              mean_row: bool = True, metric: str = "auc", interval: bool = False) -> pd.DataFrame:
    """Mean ± std of AUC (%) over seeds, rows = ``index``, columns = ``columns`` (order of appearance); ± only
    where a cell ran with several seeds. The "mean" row averages the rows (each first averaged over its seeds);
    it carries a ± over seeds only when every row ran with the same seeds. ``metric``: another recorded metric
    (``aupr_in``, ``aupr_out``, ``fpr95``, ``detection_error``, in % after :func:`collect`; see
    :mod:`adcore.metrics`); ``interval``: each cell with several seeds also shows the 95 % Student-t interval of
    its mean over seeds, "m ± s [lo, hi]"."""
    if metric not in df:
        raise KeyError(f"no column {metric!r} in the records (records written before adcore.metrics have only auc)")
    g = df.groupby([index, columns])[metric]
    cols = list(dict.fromkeys(df[columns]))
    mean, std = g.mean().unstack(columns)[cols], g.std(ddof=0).unstack(columns)[cols]
    n = (df.groupby([index, columns])["seed"].nunique() if "seed" in df else g.count() * 0 + 1).unstack(columns)
    half = t_interval(g.std(ddof=1).unstack(columns)[cols], n[cols]) if interval else None
    out = cells(mean, std, n[cols], half=half)
    if mean_row:
        seed_sets = df.groupby([index, columns])["seed"].agg(frozenset) if "seed" in df else None
        balanced = seed_sets is not None and seed_sets.nunique() == 1 and len(seed_sets.iloc[0]) > 1
        if balanced:
            per_seed = df.groupby([columns, "seed"])[metric].mean().unstack("seed")
            out.loc["mean"] = cells(per_seed.mean(axis=1)[cols], per_seed.std(axis=1, ddof=0)[cols],
                                    per_seed.shape[1], half=t_interval(per_seed.std(axis=1, ddof=1)[cols],
                                                                       per_seed.shape[1]) if interval else None)
        else:
            out.loc["mean"] = cells(mean.mean()[cols])
    if dataset:
        out.index = [class_label(dataset, i) if i != "mean" else i for i in out.index]
    return out


def values(items: Iterable[Any], none: str = "all") -> str:
    """The distinct values of a column for a run card: integers without ".0", sorted, None as ``none``."""
    def text(v):
        if v is None or isinstance(v, float) and v != v:
            return none
        if isinstance(v, float) and v.is_integer():
            v = int(v)
        return f"{v:,}" if isinstance(v, int) and not isinstance(v, bool) else str(v)
    return ", ".join(sorted({text(v) for v in items}, key=lambda t: (len(t), t))) or "—"


def counted(items: Iterable[Any], noun: str, none: str = "all") -> str:
    """:func:`values` followed by ``noun`` (a plural), singular where the only value is 1: "1 epoch", "3, 5 epochs"
    (the smoke profile's run cards said "1 epochs")."""
    text = values(items, none)
    return f"{text} {noun[:-1] if text == '1' and noun.endswith('s') else noun}"


_POINT = ("data", "dataset", "normal_class", "method", "objective", "oe", "oe_size", "blur", "ratio_known_outlier",
          "ratio_pollution", "hybrid")  # the columns that tell the points of a design apart, where present


def seed_text(df: pd.DataFrame) -> str:
    """The number of seeds behind the records, per point of the design where it varies ("1; 3 at 12 of 42 points":
    a design whose spread part reruns a few points), since one count for all would overstate most cells."""
    if "seed" not in df:
        return "—"
    cols = [c for c in _POINT if c in df]
    if not cols:
        return str(df["seed"].nunique())
    keys = df[cols].map(lambda v: tuple(v) if isinstance(v, list) else v).astype(str)
    counts = df["seed"].groupby([keys[c] for c in cols], sort=False, dropna=False).nunique()
    if counts.nunique() <= 1:
        return str(int(counts.iloc[0])) if len(counts) else "—"
    base = int(counts.mode().iloc[0])
    return "; ".join([str(base)] + [f"{n} at {int((counts == n).sum())} of {len(counts)} points"
                                    for n in sorted(set(counts)) if n != base])


def run_card(profile: str, df: pd.DataFrame, rows: dict[str, Any], device: str | None = None,
             wall: str | None = None) -> pd.DataFrame:
    """The facts a reader needs before trusting a number: the profile, the chapter's ``rows`` (data, budget...),
    then seeds, runs (trained now / read from the store, from ``df.attrs``), device, torch and the execution's
    wall time."""
    distinct = df.drop_duplicates("config_hash") if "config_hash" in df else df
    devices = sorted({d for d in distinct.get("device", []) if isinstance(d, str)})
    ran, stored = df.attrs.get("ran"), df.attrs.get("stored")
    runs = f"{len(distinct)}" + (f" ({ran} trained now, {stored} read from the store)" if ran is not None else "")
    seeds = {} if any(k.startswith("seeds") for k in rows) else {"seeds": seed_text(distinct)}
    stamp = {}  # the records' reproducibility stamp (adcore.stamp); absent from records written before it
    for col, label in (("commit", "adcore commit"), ("versions", "package versions"), ("threads", "threads")):
        found = [v for v in distinct.get(col, []) if v is not None and v == v]
        if found:
            stamp[label] = values(found).replace(", ", "; ") if col != "versions" else "; ".join(sorted(set(found)))
            stamp[label] += " (and records without a stamp)" if distinct[col].isna().any() else ""
    card = {"profile": profile, **rows, **seeds,
            "runs": runs,
            "device": ", ".join(devices) if devices else device_name(pick_device(device)),
            "torch": torch.__version__, **stamp, **({"wall time of this execution": wall} if wall else {})}
    return pd.DataFrame({"setting": list(card), "value": [str(v) for v in card.values()]}).set_index("setting")


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


def glue_card(card: pd.DataFrame, prefix: str) -> pd.DataFrame:
    """Glue the run card as "card" (a chapter shows it at its top with a ``{glue} card`` directive) and every row
    as ``<prefix>_<slug of the setting>`` (e.g. ``tab_profile``) for the prose; return the card."""
    from myst_nb import glue

    with pd.option_context("display.max_colwidth", None):
        glue("card", card, display=False)
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


# ------------------------------------------------------------------------------------------ claims checked by code

def seed_spread(df: pd.DataFrame, by: list[str]) -> float:
    """The seed-to-seed spread of AUC (points): the mean over the ``by`` groups run with two or more seeds of the
    standard deviation (ddof 1) over their seeds; NaN when no group has two seeds."""
    g = df.groupby(by)["auc"]
    std = g.std(ddof=1)[g.count() >= 2]
    return float(std.mean()) if len(std) else float("nan")
