"""The CLAD chapter (Park et al., 2021): CLAD against Deep SVDD, an OC-SVM and HSC + natural-image OE on
super-category splits. Its profiles, run grid (a mix of ``CLADConfig``, ``OCSVMConfig`` and ``RunConfig``), run
card, tables, the PCA view of the codes and the numbers its prose quotes.

Settings: ``groups`` (None = every super-category of the dataset), the CLAD stages' budgets (ae_epochs,
dec_max_rounds, clf_epochs, clf_lr, clf_width, ...; unset ones take CLADConfig's defaults, the seed's values),
the deep baselines' budget (baseline_*) and the OC-SVM's (ocsvm_*).
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
import pandas as pd

from .. import paper, report
from ..clad import CLADConfig, OCSVMConfig
from ..config import ConfigError, with_overrides
from ..data import SUPER_CATEGORIES, super_category
from ..experiment import RunConfig
from .rethinking import TRAINING

NOTEBOOKS = ("clad",)
METHODS = ("CLAD", "Deep SVDD", "OC-SVM", "HSC + OE")
_CLAD_KEYS = ("hidden", "ae_epochs", "ae_lr", "code_noise", "input_dropout", "k", "dec_tol", "dec_max_rounds",
              "clf_epochs", "clf_lr", "clf_batch_size", "clf_width", "clf_augment", "temperature", "eps")
_OTHER_KEYS = ("baseline_lr", "baseline_milestones", "baseline_batch_size", "ocsvm_nu", "ocsvm_gamma", "ocsvm_pca",
               "ocsvm_max_train")
PROFILES: dict[str, dict[str, Any]] = {
    "smoke": dict(dataset="fmnist", groups=["SHOE", "MIX"], seeds=1, methods=list(METHODS), n_train=128, n_test=128,
                  ae_epochs=1, dec_max_rounds=2, clf_epochs=1, clf_lr=1e-3, clf_width=8, baseline_epochs=1,
                  oe="natural", oe_size=256, parts=[]),
    # The three Fashion-MNIST groups, subsampled, a quarter-width ResNet-18 (clf_width 16) and a 10x larger
    # learning rate than the seed's 1e-4 so that a few epochs suffice; <= 10 minutes on 2 CPU cores.
    "laptop": dict(dataset="fmnist", groups=None, seeds=1, methods=list(METHODS), n_train=2000, n_test=2000,
                   ae_epochs=30, dec_max_rounds=10, clf_epochs=5, clf_lr=1e-3, clf_width=16, baseline_epochs=10,
                   oe="natural", oe_size=2048, parts=[]),
    # The seed's CLAD settings (k 10, code 10 / 200, classifier 100 epochs at lr 1e-4, T 1000, eps 1e-4 / 0.01,
    # full-width ResNet-18); autoencoder epochs are not given by the seed, 100 is our choice. Deep SVDD and HSC + OE
    # with the Rethinking seed's per-dataset budgets. MNIST and CIFAR-10 (JPEG copy) as in the paper, plus the
    # Fashion-MNIST groups with MNIST's settings.
    "paper": dict(groups=None, seeds=5, methods=list(METHODS), n_train=None, n_test=None, ae_epochs=100,
                  dec_max_rounds=200, clf_epochs=100, clf_lr=1e-4, clf_width=64, oe="natural", oe_size=None,
                  parts=[dict(dataset=ds, baseline_epochs=TRAINING[t]["paper"]["epochs"],
                              baseline_milestones=list(TRAINING[t]["paper"]["milestones"]))
                         for ds, t in (("mnist", "mnist"), ("fmnist", "mnist"), ("cifar10", "cifar10"))]),
}


def settings(notebook: str = "clad", profile: str = "laptop", **overrides: Any) -> dict[str, Any]:
    if profile not in PROFILES:
        raise ConfigError(f"unknown profile {profile!r}; choose one of {', '.join(PROFILES)}")
    return with_overrides(notebook, PROFILES[profile], overrides, ("dataset", *_CLAD_KEYS, *_OTHER_KEYS), profile)


def groups_of(s: dict[str, Any]) -> list[str]:
    groups = s.get("groups") or list(SUPER_CATEGORIES.get(s["dataset"], {}))
    if not groups:
        raise ConfigError(f"no super-categories defined for {s['dataset']!r}")
    return list(groups)


def runs(notebook: str, s: dict[str, Any]) -> list[tuple[dict[str, Any], Any]]:
    """(labels, config) for every part x super-category x seed x method of the notebook's settings."""
    out = []
    for part in s.get("parts") or [{}]:
        p = {**s, **part}
        seeds = list(range(p["seeds"])) if isinstance(p["seeds"], int) else list(p["seeds"])
        for group in groups_of(p):
            normal = super_category(p["dataset"], group)
            for seed in seeds:
                common = dict(dataset=p["dataset"], normal_class=normal, seed=seed, n_train=p.get("n_train"),
                              n_test=p.get("n_test"), data_root=p.get("data_root"))
                deep = RunConfig(**common, epochs=p["baseline_epochs"], lr=p.get("baseline_lr", 1e-3),
                                 milestones=tuple(p.get("baseline_milestones") or ()),
                                 batch_size=p.get("baseline_batch_size", 128))
                for method in p["methods"]:
                    if method == "CLAD":
                        cfg: Any = CLADConfig(**common, **{k: p[k] for k in _CLAD_KEYS if p.get(k) is not None})
                    elif method == "OC-SVM":
                        cfg = OCSVMConfig(**common, **{k: p[f"ocsvm_{k}"] for k in ("nu", "gamma", "pca", "max_train")
                                                       if f"ocsvm_{k}" in p})
                    elif method == "Deep SVDD":
                        cfg = deep.replace(objective="deepsvdd", oe=None)
                    elif method == "HSC + OE":
                        cfg = deep.replace(objective="hsc", oe=p.get("oe", "natural"), oe_size=p.get("oe_size"))
                    else:
                        raise ConfigError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
                    out.append(({"dataset": p["dataset"], "group": group, "method": method}, cfg))
    return out


def run_card(s: dict[str, Any], runs: list[tuple[dict[str, Any], Any]], df: pd.DataFrame,
             device: str | None = None) -> pd.DataFrame:
    """The facts a reader needs before trusting the chapter's numbers: settings from the configurations, data and
    device from the records (``df`` from ``report.collect``)."""
    cfgs = [c for _, c in runs]
    cl = [c for c in cfgs if isinstance(c, CLADConfig)]
    deep = [c for c in cfgs if isinstance(c, RunConfig)]

    def vals(items, f) -> str:
        return ", ".join(sorted({str(f(c)) for c in items})) or "—"

    rows = {
        "dataset": ", ".join(dict.fromkeys(df["data"])),
        "super-categories": ", ".join(dict.fromkeys(f"{lab['dataset']} {lab['group']}" for lab, _ in runs)),
        "methods": ", ".join(dict.fromkeys(lab["method"] for lab, _ in runs)),
        "training images per group": report.values(c.n_train for c in cfgs),
        "test images": report.values(c.n_test for c in cfgs),
        "CLAD stages": vals(cl, lambda c: f"autoencoder {c.ae_epochs} epochs (code {c.hidden}); DEC k = {c.k}, "
                                         f"at most {c.dec_max_rounds} rounds; classifier {c.clf_epochs} epochs, "
                                         f"lr {c.clf_lr:g}"),
        "classifier": vals(cl, lambda c: f"ResNet-18, small-image stem, width {c.clf_width}"
                                         + (" (standard)" if c.clf_width == 64 else " (reduced; standard is 64)")),
        "ODIN": vals(cl, lambda c: f"T = {c.temperature:g}, ε = {c.eps:g}"),
        "Deep SVDD / HSC + OE": vals(deep, lambda c: f"{c.epochs} epochs")
        + "; OE " + vals([c for c in deep if c.oe], lambda c: f"{c.oe} ({c.oe_size or 'all'})"),
    }
    return report.run_card(s["profile"], df, rows, device)


def auc_table(df: pd.DataFrame) -> pd.DataFrame:
    """AUROC (%) per (dataset, super-category) × method: mean over seeds (± std when more than one)."""
    g = df.groupby(["dataset", "group", "method"], sort=False)["auc"]
    mean, std, n = g.mean().unstack("method"), g.std(ddof=0).unstack("method"), g.count().max()
    cols = [m for m in METHODS if m in mean.columns]
    return report.cells(mean[cols], std[cols], n)


def with_paper(df: pd.DataFrame) -> pd.DataFrame:
    """Our mean AUROC beside the paper's published value where the data match (MNIST, CIFAR-10); "—" elsewhere."""
    ref = paper.clad_table()
    rows = []
    for (ds, group, method), sub in df.groupby(["dataset", "group", "method"], sort=False):
        published = ref.loc[(ds, group), method] if (ds, group) in ref.index and method in ref.columns else None
        rows.append({"dataset": ds, "group": group, "method": method, "ours": round(sub["auc"].mean(), 1),
                     "paper": "—" if published is None or math.isnan(published) else f"{published:.1f}"})
    return pd.DataFrame(rows).set_index(["dataset", "group", "method"])


def nmi_table(df: pd.DataFrame) -> pd.DataFrame:
    """The self-labels of each CLAD run: NMI after DEC, after k-means alone, by chance; purity; DEC rounds."""
    c = df[df["method"] == "CLAD"]
    cols = ["nmi", "nmi_kmeans", "nmi_chance", "purity", "dec_rounds", "clf_train_acc"]
    return c.groupby(["dataset", "group"], sort=False)[cols].mean().round(3)


def plot_codes(record: dict[str, Any], axes=None, class_names: Sequence[str] | None = None):
    """Two scatter plots of the PCA view of a CLAD run's codes: coloured by true class and by DEC label."""
    import matplotlib.pyplot as plt

    v = record["view"]
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(10, 4.2))
    for ax, key, title in ((axes[0], "true", "true class"), (axes[1], "dec", "DEC self-label")):
        values = np.asarray(v[key])
        for j, val in enumerate(np.unique(values)):
            m = values == val
            name = class_names[val] if key == "true" and class_names is not None else str(val)
            ax.scatter(np.asarray(v["x"])[m], np.asarray(v["y"])[m], s=6, color=plt.cm.tab10(j % 10), label=name)
        ax.set_title(f"codes (PCA), coloured by {title}")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.legend(fontsize=7, markerscale=2, loc="best", ncol=2)
    return axes


def summary(df: pd.DataFrame) -> dict[str, str]:
    """Strings for the chapter's prose, computed from the runs (so that no number is typed in)."""
    means = df.groupby("method")["auc"].mean()

    def mean_of(m: str) -> str:
        return f"{means[m]:.1f}" if m in means.index else "n/a (not run)"

    per_group = df.groupby(["dataset", "group", "method"])["auc"].mean().unstack("method")
    out = {"clad_mean_" + k: mean_of(m) for k, m in
           (("clad", "CLAD"), ("svdd", "Deep SVDD"), ("ocsvm", "OC-SVM"), ("hsc", "HSC + OE"))}
    out["clad_best"] = f"{means.idxmax()} ({means.max():.1f})" if len(means) else "n/a"
    one_class = [m for m in ("Deep SVDD", "OC-SVM") if m in per_group.columns]
    if "CLAD" in per_group.columns and one_class:
        wins = int((per_group["CLAD"] > per_group[one_class].max(1)).sum())
        out["clad_wins"] = f"{wins} of {len(per_group)}"
    else:
        out["clad_wins"] = "n/a (CLAD or the one-class baselines not run)"
    if "HSC + OE" in per_group.columns and "CLAD" in per_group.columns:
        out["clad_vs_hsc"] = f"{int((per_group['CLAD'] > per_group['HSC + OE']).sum())} of {len(per_group)}"
    else:
        out["clad_vs_hsc"] = "n/a"
    c = df[df["method"] == "CLAD"]
    for key, col in (("clad_nmi", "nmi"), ("clad_nmi_kmeans", "nmi_kmeans"), ("clad_nmi_chance", "nmi_chance"),
                     ("clad_purity", "purity")):
        out[key] = f"{c[col].mean():.2f}" if len(c) else "n/a"
    if len(c):
        lo, hi = c.groupby("group")["nmi"].mean().agg(["min", "max"])
        out["clad_nmi_range"] = f"{lo:.2f}–{hi:.2f}"
        above = c["nmi"].mean() > 3 * c["nmi_chance"].mean() + 0.05
        out["clad_nmi_verdict"] = ("the self-labels carry class information well above chance" if above else
                                   "the self-labels carry little more class information than chance")
    else:
        out["clad_nmi_range"] = out["clad_nmi_verdict"] = "n/a (CLAD not run)"
    return out
