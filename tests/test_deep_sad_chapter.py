import numpy as np
import pandas as pd
import pytest

from adcore import chapters
from adcore.chapters import deep_sad as sad_report
from adcore.chapters.deep_sad import METHODS as CHAPTER_METHODS


def chapter_runs(s):
    return chapters.runs("deep_sad", s)


def test_chapter_grid_labels_and_shared_runs():
    s = chapters.settings("deep_sad", "laptop")
    runs = chapter_runs(s)
    assert {lab["section"] for lab, _ in runs} == {"unsupervised", "labelled", "pollution", "tabular"}
    for lab, cfg in runs:
        spec = CHAPTER_METHODS[lab["method"]]
        assert cfg.method == spec["method"] or (spec["method"] == "deepsad" and cfg.ratio_known_outlier == 0)
        if lab["section"] == "labelled":
            assert cfg.ratio_pollution == 0 and (cfg.ratio_known_outlier == lab["ratio"] or cfg.method == "deepsvdd")
        if lab["section"] == "pollution":
            assert cfg.ratio_pollution == lab["ratio"]
    # SemiDGM needs labelled anomalies: not run at gamma_l = 0
    assert not [1 for lab, _ in runs if lab["method"] == "SemiDGM" and lab["section"] == "labelled"
                and lab["ratio"] == 0]
    # Deep SVDD of the labelled-anomaly sweep is one run per class, shared with the unsupervised section
    svdd = {c for lab, c in runs if lab["method"] == "Deep SVDD" and lab["section"] in ("labelled", "unsupervised")}
    assert len(svdd) == 5
    # overrides reach the image sections
    small = chapter_runs(chapters.settings("deep_sad", "laptop", classes=[3], epochs=2))
    assert {c.normal_class for lab, c in small if lab["section"] != "tabular"} == {3}
    assert {c.epochs for lab, c in small if lab["section"] != "tabular" and c.method.startswith("deep")} == {2}


def _frame():
    rows = []
    for cls in (0, 1):
        for r in (0.0, 0.05):
            rows.append(dict(section="labelled", method="Deep SVDD", ratio=r, normal_class=cls, seed=0,
                             auc=80.0 + cls, dataset="fmnist"))
            rows.append(dict(section="labelled", method="Deep SAD", ratio=r, normal_class=cls, seed=0,
                             auc=80.0 + cls + 10 * r * (1 if cls == 0 else -1), dataset="fmnist"))
    rows.append(dict(section="tabular", method="SSAD", ratio=0.0, normal_class=0, seed=0, auc=90.0,
                     dataset="sk-wine"))
    rows.append(dict(section="tabular", method="KDE", ratio=0.0, normal_class=0, seed=0, auc=70.0,
                     dataset="sk-wine"))
    return pd.DataFrame(rows)


def test_curves_head_to_head_and_tables():
    df = _frame()
    mean, std = sad_report.curves(df, "labelled")
    assert list(mean.columns) == ["Deep SVDD", "Deep SAD"] and mean.loc[0.05, "Deep SAD"] == pytest.approx(80.5)
    assert std.loc[0.0, "Deep SVDD"] == pytest.approx(0.5)
    h = sad_report.head_to_head(df, "labelled", "Deep SAD", "Deep SVDD", 0.05)
    assert h["pairs"] == 2 and h["wins"] == 1 and h["diff"] == pytest.approx(0.0)
    assert sad_report.head_to_head(df, "labelled", "Deep SAD", "Deep SVDD", 0.2)["pairs"] == 0
    assert sad_report.curve_table(df, "labelled").loc["0.05", "Deep SAD"] == "80.5 ± 0.0"
    assert np.isnan(sad_report.mean_at(df, "pollution", "Deep SAD"))
    assert sad_report.fmt(float("nan")) == "n/a"
    assert sad_report.best_per_dataset(df).startswith("SSAD (90.0) on Wine")
    assert sad_report.tabular_table(df).loc["Wine (scikit-learn, ODDS-style)", "KDE"] == "70.0"  # one seed: no ±
