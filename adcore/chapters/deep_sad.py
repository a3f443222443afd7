"""The Deep SVDD / Deep SAD chapter: its profiles, its run grid (four sections), its run card, AUC-vs-ratio curves
in the style of the Deep SAD paper (one line per method, mean ± std), tables, and the numbers its prose quotes.

``df`` below is the frame of ``adcore.report.collect(runs(...), ...)``: one row per run with the labels
``section``, ``method``, ``ratio`` and the record (AUC in %).
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .. import report
from ..config import ConfigError, with_overrides
from ..deepsad import DEEP, SADConfig

NOTEBOOKS = ("deep_sad",)
# Method labels of the chapter -> the config fields that define them.
METHODS: dict[str, dict[str, Any]] = {
    "Deep SAD": dict(method="deepsad"),
    "Deep SVDD": dict(method="deepsvdd"),
    "Deep SVDD (soft-boundary)": dict(method="deepsvdd_soft"),
    "Autoencoder": dict(method="ae"),
    "OC-SVM": dict(method="ocsvm"),
    "KDE": dict(method="kde"),
    "Isolation Forest": dict(method="isoforest"),
    "SSAD": dict(method="ssad"),
    "SemiDGM": dict(method="semidgm"),
    "OC-SVM (hybrid)": dict(method="ocsvm", hybrid=True),
    "KDE (hybrid)": dict(method="kde", hybrid=True),
    "Isolation Forest (hybrid)": dict(method="isoforest", hybrid=True),
    "SSAD (hybrid)": dict(method="ssad", hybrid=True),
}
SECTIONS = ("unsupervised", "labelled", "pollution", "tabular")
SECTION_TITLES = {"unsupervised": "(a) unsupervised", "labelled": "(b) labelled anomalies",
                  "pollution": "(c) pollution", "tabular": "(d) tabular"}
RATIO_NAMES = {"labelled": r"ratio of labelled anomalies $\gamma_l$", "pollution": r"pollution ratio $\gamma_p$"}
_CFG_KEYS = ("dataset", "n_train", "n_test", "preprocess", "net", "rep_dim", "ae_epochs", "ae_lr", "ae_milestones",
             "ae_weight_decay", "epochs", "lr", "milestones", "weight_decay", "batch_size", "eta", "nu", "warm_up",
             "kappa", "gammas", "dgm_epochs", "dgm_lr", "data_root")

# Training settings shared by the image sections, then one entry per section. The paper profile uses the Deep SAD
# seed's settings (Adam, lr 1e-4, 150 epochs with lr x 0.1 after 50; autoencoder 150 epochs, weight decay 5e-4) on
# all training data, 10 classes, 10 seeds.
_ALL = ["Deep SAD", "Deep SVDD", "SSAD", "SSAD (hybrid)", "SemiDGM"]
_UNSUP = ["Deep SVDD", "Deep SVDD (soft-boundary)", "Autoencoder", "OC-SVM", "KDE", "Isolation Forest"]
_TAB = ["Deep SAD", "Deep SVDD", "OC-SVM", "KDE", "Isolation Forest", "SSAD", "SSAD (hybrid)", "SemiDGM"]
_RATIOS = [0.0, 0.01, 0.05, 0.1, 0.2]
_TAB_TRAIN = dict(datasets=["sk-wdbc", "sk-wine"], labelled=0.05, pollution=0.0, n_train=None, n_test=None,
                  batch_size=32, ae_lr=1e-3, lr=1e-3, ae_milestones=[], milestones=[])
PROFILES: dict[str, dict[str, Any]] = {
    "smoke": dict(
        dataset="fmnist", classes=[0], seeds=1, n_train=64, n_test=200, preprocess="minmax", ae_epochs=1,
        ae_lr=1e-3, ae_milestones=[], epochs=1, lr=1e-3, milestones=[], batch_size=32, dgm_epochs=1,
        gammas=[2 ** -5, 2 ** -1],
        unsupervised=dict(methods=_UNSUP, warm_up=0),
        labelled=dict(methods=_ALL, ratios=[0.0, 0.05], pollution=0.0),
        pollution=dict(methods=["Deep SAD", "Deep SVDD"], ratios=[0.0, 0.1], labelled=0.05),
        tabular=dict(_TAB_TRAIN, datasets=["sk-wine"], methods=_TAB, seeds=1, ae_epochs=2, epochs=2, dgm_epochs=2)),
    # Fashion-MNIST, subsampled to fit 10 minutes on 2 CPU cores: 500 normal training images per class, 1,000 test
    # images, 10 autoencoder + 10 network epochs at lr 1e-3 in batches of 64, a 5-value RBF grid; the unsupervised
    # and labelled-anomaly sections on 5 classes, the pollution section on 2 classes, 3 methods and 3 levels.
    "laptop": dict(
        dataset="fmnist", classes=list(range(10)), seeds=1, n_train=500, n_test=1000, preprocess="minmax",
        ae_epochs=10, ae_lr=1e-3, ae_milestones=[], epochs=10, lr=1e-3, milestones=[], batch_size=64, dgm_epochs=15,
        gammas=[2 ** -7, 2 ** -5, 2 ** -3, 2 ** -1, 2 ** 1],
        unsupervised=dict(methods=_UNSUP, max_classes=5, warm_up=2),
        labelled=dict(methods=_ALL, max_classes=5, ratios=_RATIOS, pollution=0.0),
        pollution=dict(methods=["Deep SAD", "Deep SVDD", "SSAD (hybrid)"], max_classes=2, ratios=[0.0, 0.1, 0.2],
                       labelled=0.05),
        tabular=dict(_TAB_TRAIN, methods=_TAB, seeds=3, ae_epochs=50, epochs=50, dgm_epochs=50)),
    "paper": dict(
        dataset="fmnist", classes=list(range(10)), seeds=10, n_train=None, n_test=None, preprocess="minmax",
        ae_epochs=150, ae_lr=1e-4, ae_milestones=[], ae_weight_decay=5e-4, epochs=150, lr=1e-4, milestones=[50],
        weight_decay=5e-7, batch_size=128, dgm_epochs=150, gammas=None,
        unsupervised=dict(methods=_UNSUP, preprocess="gcn"),  # the Deep SVDD paper's preprocessing
        labelled=dict(methods=_ALL, ratios=_RATIOS, pollution=0.0),
        pollution=dict(methods=_ALL, ratios=_RATIOS, labelled=0.05),
        tabular=dict(_TAB_TRAIN, methods=_TAB, seeds=10, ae_epochs=150, epochs=150, dgm_epochs=150)),
}


def settings(notebook: str = "deep_sad", profile: str = "laptop", **overrides: Any) -> dict[str, Any]:
    if profile not in PROFILES:
        raise ConfigError(f"unknown profile {profile!r}; choose one of {', '.join(PROFILES)}")
    return with_overrides(notebook, PROFILES[profile], overrides, _CFG_KEYS, profile)


def _base(s: dict[str, Any]) -> SADConfig:
    kw = {k: s[k] for k in _CFG_KEYS if k in s}
    for k in ("ae_milestones", "milestones", "gammas"):
        if kw.get(k) is not None:
            kw[k] = tuple(kw[k])
    return SADConfig(**kw)


def _seeds(n: int | list[int]) -> list[int]:
    return list(range(n)) if isinstance(n, int) else list(n)


def runs(notebook: str, s: dict[str, Any]) -> list[tuple[dict[str, Any], SADConfig]]:
    """(labels, canonical config) for every run of the chapter's settings ``s``.

    Sections: ``unsupervised`` (gamma_l = gamma_p = 0), ``labelled`` (gamma_l sweep at fixed pollution),
    ``pollution`` (gamma_p sweep at fixed gamma_l), ``tabular``. Image sections use the first ``max_classes`` of
    ``classes``; a section's own keys override the chapter's (e.g. its ``preprocess``). SemiDGM needs labelled
    anomalies and is left out where gamma_l = 0."""
    out: list[tuple[dict[str, Any], SADConfig]] = []
    for name in SECTIONS:
        sec = s.get(name)
        if not sec:
            continue
        base = _base({**s, **{k: v for k, v in sec.items() if k in _CFG_KEYS}})
        if name == "tabular":
            cells = [(ds, 0, seed) for ds in sec["datasets"] for seed in _seeds(sec.get("seeds", s["seeds"]))]
        else:
            classes = list(s["classes"])[:sec.get("max_classes") or None]
            cells = [(base.dataset, c, seed) for c in classes for seed in _seeds(s["seeds"])]
        if name == "unsupervised":
            points = [(0.0, 0.0)]
        elif name == "labelled":
            points = [(r, sec.get("pollution", 0.0)) for r in sec["ratios"]]
        elif name == "pollution":
            points = [(sec.get("labelled", 0.05), r) for r in sec["ratios"]]
        else:
            points = [(sec.get("labelled", 0.05), sec.get("pollution", 0.0))]
        for ds, cls, seed in cells:
            for gl, gp in points:
                for label in sec["methods"]:
                    spec = METHODS[label]
                    if spec["method"] == "semidgm" and gl == 0:
                        continue
                    cfg = base.replace(dataset=ds, normal_class=cls, seed=seed, ratio_known_outlier=gl,
                                       ratio_pollution=gp, n_known_outlier_classes=sec.get("known_classes", 1),
                                       **spec)
                    ratio = gl if name == "labelled" else gp if name == "pollution" else 0.0
                    out.append(({"section": name, "method": label, "ratio": ratio}, cfg.canonical()))
    return out


def run_card(s: dict[str, Any], runs: list[tuple[dict[str, Any], SADConfig]], df: pd.DataFrame,
             device: str | None = None) -> pd.DataFrame:
    """Profile, data, budget, seeds, number of distinct runs and device of one execution of the chapter."""
    images = [c for lab, c in runs if lab["section"] != "tabular"]
    tab = [c for lab, c in runs if lab["section"] == "tabular"]
    deep = [c for c in images if c.method in DEEP]
    with_ae = [c for c in images if c.method in DEEP + ("ae",) or c.hybrid]
    classes = {sec: sorted({c.normal_class for lab, c in runs if lab["section"] == sec}) for sec in SECTIONS}
    rows = {
        "image data": ", ".join(sorted({report.dataset_label(c.dataset) for c in images})) or "—",
        "normal classes (a) / (b) / (c)": " / ".join(
            ", ".join(map(str, classes[s])) or "—" for s in ("unsupervised", "labelled", "pollution")),
        "normal training images per class": report.values(c.n_train for c in images),
        "test images": report.values(c.n_test for c in images),
        "preprocessing": report.values(c.preprocess for c in images),
        "autoencoder epochs / network epochs": f"{report.values(c.ae_epochs for c in with_ae)} / "
                                               f"{report.values(c.epochs for c in deep)}",
        "tabular data": ", ".join(sorted({report.dataset_label(c.dataset) for c in tab})) or "—",
        "seeds (images / tabular)": f"{len({c.seed for c in images})} / {len({c.seed for c in tab})}",
    }
    return report.run_card(s["profile"], df, rows, device)


def curves(df: pd.DataFrame, section: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Mean and std of AUC (%) over runs (classes x seeds) per ratio (rows) and method (columns)."""
    sub = df[df["section"] == section]
    cols = list(dict.fromkeys(sub["method"]))
    g = sub.groupby(["ratio", "method"])["auc"]
    return g.mean().unstack("method")[cols], g.std(ddof=0).unstack("method")[cols]


def curve_table(df: pd.DataFrame, section: str) -> pd.DataFrame:
    """``mean ± std`` cells of :func:`curves` (over classes and seeds), ratios as row labels."""
    mean, std = curves(df, section)
    out = report.cells(mean, std, n=2)
    out.index = [f"{r:.2f}" for r in out.index]
    out.index.name = "γ_l" if section == "labelled" else "γ_p"
    return out


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
    out = report.auc_table(sub, "dataset", "method", mean_row=False)
    out.index = [report.dataset_label(d) for d in out.index]
    return out


def best_per_dataset(df: pd.DataFrame) -> str:
    """``best method (AUC) on dataset`` for every tabular dataset, joined by semicolons."""
    sub = df[df["section"] == "tabular"]
    parts = []
    for ds, part in sub.groupby("dataset", sort=True):
        means = part.groupby("method")["auc"].mean()
        parts.append(f"{means.idxmax()} ({means.max():.1f}) on {report.dataset_label(ds)}")
    return "; ".join(parts) or "n/a"
