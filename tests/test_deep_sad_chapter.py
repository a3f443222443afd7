import numpy as np
import pandas as pd
import pytest

from adcore import chapters
from adcore.chapters import deep_sad as sad_report
from adcore.chapters.deep_sad import METHODS as CHAPTER_METHODS


def chapter_runs(profile, **params):
    return chapters.open("deep_sad", profile, **params).runs


def test_chapter_grid_labels_and_shared_runs():
    runs = chapter_runs("laptop")
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
    assert len(svdd) == 3
    # both transfers are run in (b); "as the seed ran" is the no-pretraining computation
    seed_ran = [c for lab, c in runs if lab["method"] == "Deep SAD (as the seed ran)"]
    assert seed_ran and all(c.transfer == "seed" and not c.pretrain for c in seed_ran)
    assert all(c.transfer == "full" and c.pretrain for lab, c in runs if lab["method"] == "Deep SAD"
               and lab["ratio"] > 0)
    # the seeds' test-set protocol beside the label-free OC-SVM
    assert {c.selection for lab, c in runs if lab["method"].startswith("OC-SVM")} == {"heldout", "test10"}
    # overrides reach every section that reads them: epochs the tabular one too, tabular_epochs that one alone
    small = chapter_runs("laptop", classes=[3], epochs=2)
    assert {c.normal_class for lab, c in small if lab["section"] != "tabular"} == {3}
    assert {c.epochs for lab, c in small if c.method.startswith("deep")} == {2}
    own = chapter_runs("laptop", tabular_epochs=4)
    assert {c.epochs for lab, c in own if c.method.startswith("deep")} == {4, 10}
    assert {c.epochs for lab, c in own if lab["section"] == "tabular" and c.method.startswith("deep")} == {4}


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


def test_curves_paired_difference_and_tables():
    df = _frame()
    mean, std = sad_report.curves(df, "labelled")
    assert list(mean.columns) == ["Deep SVDD", "Deep SAD"] and mean.loc[0.05, "Deep SAD"] == pytest.approx(80.5)
    assert std.loc[0.0, "Deep SVDD"] == pytest.approx(0.5)
    h = sad_report.paired_difference(df, "labelled", "Deep SAD", "Deep SVDD", 0.05)  # the notebook's head to head
    assert h.n == 2 and int((h.values > 0).sum()) == 1 and h.mean == pytest.approx(0.0)
    assert sad_report.paired_difference(df, "labelled", "Deep SAD", "Deep SVDD", 0.2).n == 0
    assert sad_report.curve_table(df, "labelled").loc["0.05", "Deep SAD"] == "80.5 ± 0.0"
    assert np.isnan(sad_report.mean_at(df, "pollution", "Deep SAD"))
    assert sad_report.fmt(float("nan")) == "n/a"
    assert sad_report.best_per_dataset(df).startswith("SSAD (90.0) on Wine")
    assert sad_report.tabular_table(df).loc["Wine (scikit-learn, ODDS-style)", "KDE"] == "70.0"  # one seed: no ±


def _claims_frame(sad=90.0, svdd=85.0, hybrid=89.5, ssad=80.0, dgm=70.0, pol_sad=82.0, pol_svdd=79.0,
                  soft=84.5, shallow=80.0, classes=range(6), seed_ran=(1.0, 2.0)):
    """Six classes, one seed: (a) unsupervised, (b) at gamma_l 0.05 (both transfers, the rivals), (c) at 0 and 0.2;
    AUC = the method's mean + a class offset + a small deterministic wobble."""
    rows = []
    w = lambda c, k: ((c * 7 + k * 3) % 5 - 2) * 0.2  # noqa: E731 - in [-0.4, 0.4]
    for c in classes:
        for k, (method, auc) in enumerate((("Deep SAD", sad), ("Deep SVDD", svdd), ("SSAD (hybrid)", hybrid),
                                           ("SSAD", ssad), ("SemiDGM", dgm),
                                           ("Deep SAD (as the seed ran)", sad + seed_ran[0]),
                                           ("Deep SVDD (as the seed ran)", sad + seed_ran[1]))):
            rows.append(dict(section="labelled", method=method, ratio=0.05, normal_class=c, seed=0,
                             auc=auc + c + w(c, k)))
        for k, (method, auc) in enumerate((("Deep SAD", pol_sad), ("Deep SVDD", pol_svdd))):
            rows.append(dict(section="pollution", method=method, ratio=0.2, normal_class=c, seed=0, auc=auc + w(c, k)))
            rows.append(dict(section="pollution", method=method, ratio=0.0, normal_class=c, seed=0, auc=90.0))
        for k, (method, auc) in enumerate((("Deep SVDD", svdd), ("Deep SVDD (soft-boundary)", soft),
                                           ("OC-SVM (γ on test data)", shallow), ("KDE", shallow),
                                           ("Isolation Forest", shallow), ("Autoencoder", shallow))):
            rows.append(dict(section="unsupervised", method=method, ratio=0.0, normal_class=c, seed=0,
                             auc=auc + c + w(c, k + 2)))
    return pd.DataFrame(rows).assign(dataset="fmnist")


def test_claims_pass_fail_and_not_testable():
    from adcore.claims import VERDICTS

    t = sad_report.claims(_claims_frame())
    assert list(t.columns) == ["claim", "where", "paper", "this build", "rule", "verdict"] and len(t) == 6
    assert {v.split(" (")[0] for v in t["verdict"]} <= set(VERDICTS)
    assert list(t["verdict"]) == ["reproduced", "not reproduced", "reproduced", "reproduced", "reproduced",
                                  "reproduced"]  # (2): the seed's Deep SVDD is 1 point above its Deep SAD
    assert "+1.3 (secondary)" in t.loc[1, "paper"] and "at γ_l = 0.05" in t.loc[1, "this build"]
    assert "γ_p = 0.2" in t.loc[4, "this build"]
    # hybrid SSAD 5 points ahead: Deep SAD is on par with SSAD and SemiDGM only -> partly
    assert sad_report.claims(_claims_frame(hybrid=95.0))["verdict"].iloc[2] == "partly"
    # Deep SAD below Deep SVDD under pollution; soft-boundary 6 points apart; a baseline far ahead of Deep SVDD
    t = sad_report.claims(_claims_frame(pol_sad=75.0, soft=79.0, shallow=88.0))
    assert list(t["verdict"].iloc[3:]) == ["not reproduced", "not reproduced", "not reproduced"]
    # one class: no standard error; a section not run: not testable, saying what is missing
    one = sad_report.claims(_claims_frame(classes=[0]))
    assert all(v.startswith("not testable") for v in one["verdict"])
    no_pol = _claims_frame()
    no_pol = no_pol[no_pol["section"] != "pollution"]
    assert sad_report.claims(no_pol)["verdict"].iloc[3] == "not testable (the pollution section not run in this build)"
    no_dgm = _claims_frame()
    assert sad_report.claims(no_dgm[no_dgm["method"] != "SemiDGM"])["verdict"].iloc[2] == \
        "not testable (SemiDGM not run in this build)"


def test_paired_difference_pairs_class_and_seed_and_averages_ratios():
    rows = [dict(section="labelled", method=m, ratio=r, normal_class=c, seed=s, auc=a)
            for c in (0, 1) for s in (0, 1) for r in (0.05, 0.2)
            for m, a in (("A", 80.0 + c + s + 10 * r), ("B", 70.0))]
    rows.append(dict(section="labelled", method="A", ratio=0.05, normal_class=2, seed=0, auc=99.0))  # unpaired
    d = sad_report.paired_difference(pd.DataFrame(rows), "labelled", "A", "B")
    assert d.n == 4 and d.values.loc[(0, 0)] == pytest.approx(10 + 1.25)
    assert d.values.loc[(1, 1)] == pytest.approx(13.25)
    d = sad_report.paired_difference(pd.DataFrame(rows), "labelled", "A", "B", 0.05)
    assert d.values.loc[(0, 0)] == pytest.approx(10.5)


def test_paper_table_sets_table_1_beside_ours():
    t = sad_report.paper_table(_claims_frame()).loc["Fashion-MNIST"]
    assert t.loc["0.05", "Deep SAD, paper"] == "90.5" and t.loc["0.05", "SSAD (hybrid), paper"] == "90.5"
    assert t.loc["0", "SemiDGM, paper"] == "—" and t.loc["0.01", "Deep SAD, ours"] == "not run"
    assert t.loc["0.05", "Deep SAD, ours"] == sad_report.fmt(_claims_frame().query(
        "section == 'labelled' and method == 'Deep SAD'")["auc"].mean())
    # the datasets this build did not run: the paper's numbers, ours "not run"
    full = sad_report.paper_table(_claims_frame())
    assert full.loc[("MNIST", "0.05"), "Deep SAD, paper"] == "96.7" and full.loc[("CIFAR-10", "0.2"),
                                                                                  "SemiDGM, paper"] == "53.2"
    assert set(full.loc["CIFAR-10", "Deep SAD, ours"]) == {"not run"} and len(full) == 15


def test_deep_svdd_2018_per_class_beside_ours():
    f = _claims_frame()
    t = sad_report.svdd_paper_table(f)
    assert t.loc[("MNIST", "5"), "Deep SVDD, paper"] == "88.5" and t.loc[("CIFAR-10", "cat"), "OC-SVM, paper"] == \
        "55.9" and t.loc[("MNIST", "5"), "Deep SVDD, ours"] == "not run"
    ours = f.query("section == 'unsupervised' and normal_class == 2")
    row = t.loc[("Fashion-MNIST", "Pullover")]  # class 2; the 2018 paper has no Fashion-MNIST
    assert row["Deep SVDD, ours"] == sad_report.fmt(ours.loc[ours["method"] == "Deep SVDD", "auc"].mean())
    assert row["OC-SVM, ours"] == sad_report.fmt(ours.loc[ours["method"] == "OC-SVM (γ on test data)", "auc"].mean())
    assert row["Deep SVDD, paper"] == "not in the paper" and len(t) == 20 + 6


def test_transfer_and_ocsvm_tables_and_run_card():
    f = _claims_frame(sad=90.0, seed_ran=(1.0, 2.0))
    t = sad_report.transfer_table(f)
    mean = lambda m: sad_report.fmt(f[(f["section"] == "labelled") & (f["method"] == m)]["auc"].mean())  # noqa: E731
    assert t.loc["Deep SAD", "as intended (pretrained encoder)"] == mean("Deep SAD")
    assert t.loc["Deep SVDD", "as the seed ran (no transfer)"] == mean("Deep SVDD (as the seed ran)")
    rows = [dict(section="unsupervised", method=m, ratio=0.0, normal_class=c, seed=0, auc=a, selected=g)
            for c in (0, 1) for m, a, g in (("OC-SVM", 90.0, 2 ** -6.2), ("OC-SVM (γ on test data)", 93.0, 2 ** -5))]
    o = sad_report.ocsvm_table(pd.DataFrame(rows))
    assert o.loc["0: T-shirt/top", "median heuristic: γ"] == "2^-6.2"
    assert o.loc["1: Trouser", "seeds' protocol (test data): AUC"] == "93.0"
    s = chapters.open("deep_sad", "laptop").settings
    runs = sad_report.runs(s)
    df = pd.DataFrame([{**lab, **c.key(), "config_hash": str(c.key()), "seed": c.seed, "device": "cpu"}
                       for lab, c in runs])
    card = sad_report.card(s, df)
    assert {"Fashion-MNIST", "WDBC (scikit-learn, ODDS-style)", "Wine (scikit-learn, ODDS-style)"} <= \
        set(card.index)
    text = " ".join(card["value"])
    assert ".0 " not in text and "nan" not in text.lower()
    assert "normal classes (a) 0, 1, 2 / (b) 0, 1, 2 / (c) 0, 1; 500 normal training images" in \
        card.loc["Fashion-MNIST", "value"]
    assert card.loc["seeds (images / tabular)", "value"] == "1 / 2" and "seeds" not in card.index
