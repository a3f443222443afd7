"""What the Deep SVDD / Deep SAD chapter shows: its run card, AUC-vs-ratio curves in the style of the Deep SAD
paper (one line per method, mean ± std), tables, and the numbers its prose quotes.

``df`` below is the frame of ``adcore.report.collect(chapter_runs(...), ..., runner=adcore.deepsad.run)``: one
row per run with the labels ``section``, ``method``, ``ratio`` and the record (AUC in %).
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import torch

from .deepsad import DEEP, SADConfig
from .experiment import device_name
from .report import dataset_label
from .tabular import NAMES as TABULAR_NAMES
from .train import pick_device

SECTION_TITLES = {"unsupervised": "(a) unsupervised", "labelled": "(b) labelled anomalies",
                  "pollution": "(c) pollution", "tabular": "(d) tabular"}
RATIO_NAMES = {"labelled": r"ratio of labelled anomalies $\gamma_l$", "pollution": r"pollution ratio $\gamma_p$"}


def label(dataset: str) -> str:
    return TABULAR_NAMES.get(dataset) or dataset_label(dataset)


def run_card(settings: dict[str, Any], runs: list[tuple[dict[str, Any], SADConfig]],
             device: str | None = None) -> pd.DataFrame:
    """Profile, data, budget, seeds, number of distinct runs and device of one execution of the chapter."""
    images = [c for lab, c in runs if lab["section"] != "tabular"]
    tab = [c for lab, c in runs if lab["section"] == "tabular"]
    deep = [c for c in images if c.method in DEEP]
    with_ae = [c for c in images if c.method in DEEP + ("ae",) or c.hybrid]

    def vals(cfgs: list[SADConfig], field: str, none: str = "all") -> str:
        return ", ".join(sorted({str(getattr(c, field)) for c in cfgs})).replace("None", none) or "-"

    per_section = {lab["section"] for lab, _ in runs}
    classes = {sec: sorted({c.normal_class for lab, c in runs if lab["section"] == sec}) for sec in per_section}
    rows = {
        "profile": settings["profile"],
        "image data": ", ".join(sorted({label(c.dataset) for c in images})) or "-",
        "normal classes (a) / (b) / (c)": " / ".join(
            ", ".join(map(str, classes.get(s, []))) or "-" for s in ("unsupervised", "labelled", "pollution")),
        "normal training images per class": vals(images, "n_train"),
        "test images": vals(images, "n_test"),
        "preprocessing": vals(images, "preprocess"),
        "autoencoder epochs / network epochs": f"{vals(with_ae, 'ae_epochs')} / {vals(deep, 'epochs')}",
        "tabular data": ", ".join(sorted({label(c.dataset) for c in tab})) or "-",
        "seeds (images / tabular)": f"{len({c.seed for c in images})} / {len({c.seed for c in tab})}",
        "runs (distinct)": f"{len(runs)} ({len({c for _, c in runs})})",
        "device": device_name(pick_device(device)),
        "torch": torch.__version__,
    }
    return pd.DataFrame({"setting": list(rows), "value": [str(v) for v in rows.values()]}).set_index("setting")


def curves(df: pd.DataFrame, section: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Mean and std of AUC (%) over runs (classes x seeds) per ratio (rows) and method (columns)."""
    sub = df[df["section"] == section]
    cols = list(dict.fromkeys(sub["method"]))
    g = sub.groupby(["ratio", "method"])["auc"]
    return g.mean().unstack("method")[cols], g.std(ddof=0).unstack("method")[cols]


def curve_table(df: pd.DataFrame, section: str) -> pd.DataFrame:
    """``mean ± std`` cells of :func:`curves`, ratios as row labels."""
    mean, std = curves(df, section)
    cells = mean.round(1).astype(str) + " ± " + std.round(1).astype(str)
    cells = cells.where(mean.notna(), "—")
    cells.index = [f"{r:.2f}" for r in cells.index]
    cells.index.name = "γ_l" if section == "labelled" else "γ_p"
    return cells


MARKERS = "osD^v<>xP*"


def plot_curves(df: pd.DataFrame, section: str, ax) -> None:
    """AUC vs ratio, one line per method with ± std error bars (over classes and seeds), the ratios equally
    spaced as in the Deep SAD paper's figures; methods are nudged sideways so the bars do not overlap."""
    mean, std = curves(df, section)
    x = np.arange(len(mean.index))
    k = len(mean.columns)
    for i, method in enumerate(mean.columns):
        ok = mean[method].notna().to_numpy()
        shift = (i - (k - 1) / 2) * 0.06
        ax.errorbar(x[ok] + shift, mean[method].to_numpy()[ok], yerr=std[method].to_numpy()[ok], capsize=3,
                    marker=MARKERS[i % len(MARKERS)], label=method)
    ax.set_xticks(x, [f"{r:g}" for r in mean.index])
    ax.set_xlabel(RATIO_NAMES.get(section, "ratio"))
    ax.set_ylabel("AUC (%)")
    ax.grid(alpha=0.3)
    n = df[df["section"] == section].groupby("method")[["normal_class", "seed"]].apply(
        lambda g: len(g.drop_duplicates())).max()
    ax.set_title(f"{SECTION_TITLES[section]}: mean ± std over {n} runs per point")


def mean_at(df: pd.DataFrame, section: str, method: str, ratio: float | None = None) -> float:
    """Mean AUC (%) of ``method`` in ``section`` (at ``ratio``), NaN when it was not run."""
    sub = df[(df["section"] == section) & (df["method"] == method)]
    if ratio is not None:
        sub = sub[np.isclose(sub["ratio"], ratio)]
    return float(sub["auc"].mean()) if len(sub) else float("nan")


def fmt(x: float) -> str:
    return "n/a" if not np.isfinite(x) else f"{x:.1f}"


def head_to_head(df: pd.DataFrame, section: str, a: str, b: str, ratio_a: float, ratio_b: float | None = None
                 ) -> dict[str, Any]:
    """Method ``a`` at ``ratio_a`` against ``b`` (at ``ratio_b``, default the same) per normal class and seed:
    means, their difference and on how many (class, seed) pairs ``a`` is ahead."""
    ratio_b = ratio_a if ratio_b is None else ratio_b
    sub = df[df["section"] == section]
    pa = sub[(sub["method"] == a) & np.isclose(sub["ratio"], ratio_a)].set_index(["normal_class", "seed"])["auc"]
    pb = sub[(sub["method"] == b) & np.isclose(sub["ratio"], ratio_b)].set_index(["normal_class", "seed"])["auc"]
    both = pa.to_frame("a").join(pb.to_frame("b"), how="inner")
    if both.empty:
        return {"a": float("nan"), "b": float("nan"), "diff": float("nan"), "wins": 0, "pairs": 0}
    return {"a": float(both["a"].mean()), "b": float(both["b"].mean()),
            "diff": float((both["a"] - both["b"]).mean()), "wins": int((both["a"] > both["b"]).sum()),
            "pairs": len(both)}


def tabular_table(df: pd.DataFrame) -> pd.DataFrame:
    """Rows = tabular dataset, columns = method, cells = mean ± std of AUC (%) over seeds."""
    sub = df[df["section"] == "tabular"]
    if sub.empty:
        return pd.DataFrame()
    cols = list(dict.fromkeys(sub["method"]))
    g = sub.groupby(["dataset", "method"])["auc"]
    mean, std = g.mean().unstack("method")[cols], g.std(ddof=0).unstack("method")[cols]
    cells = mean.round(1).astype(str) + " ± " + std.round(1).astype(str)
    cells.index = [label(d) for d in cells.index]
    return cells


def best_per_dataset(df: pd.DataFrame) -> str:
    """``best method (AUC) on dataset`` for every tabular dataset, joined by semicolons."""
    sub = df[df["section"] == "tabular"]
    parts = []
    for ds, part in sub.groupby("dataset", sort=True):
        means = part.groupby("method")["auc"].mean()
        parts.append(f"{means.idxmax()} ({means.max():.1f}) on {label(ds)}")
    return "; ".join(parts) or "n/a"
