"""adcore.metrics against scikit-learn and hand-computed values (ties and the swapped convention included), and
the stamp that records carry."""
import json

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve

from adcore import metrics
from adcore.metrics import detection_metrics

Y = np.array([0, 0, 1, 1])
S = np.array([0.1, 0.4, 0.35, 0.8])


def test_hand_computed_values():
    m = detection_metrics(Y, S)
    assert m["auc"] == pytest.approx(0.75)  # 3 of the 4 (anomaly, normal) pairs ordered right
    # anomaly positive, ranked 0.8 (a), 0.4 (n), 0.35 (a), 0.1 (n): precision 1 at recall 1/2, 2/3 at recall 1
    assert m["aupr_out"] == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)
    # normal positive, ranked by -score: 0.1 (n), 0.35 (a), 0.4 (n), 0.8 (a): 1 at recall 1/2, 2/3 at recall 1
    assert m["aupr_in"] == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)
    # catching both anomalies needs threshold 0.35, which flags the normal at 0.4: FPR 1/2
    assert m["fpr95"] == 0.5
    # best threshold 0.8: TPR 1/2, FPR 0 -> 0.25
    assert m["detection_error"] == pytest.approx(0.25)
    assert tuple(m) == metrics.KEYS


def test_ties_are_flagged_as_a_whole():
    y = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    s = np.array([0.0, 1.0, 2.0, 2.0, 2.0, 2.0, 3.0, 3.0])  # two normals tie with two anomalies at 2.0
    m = detection_metrics(y, s)
    assert m["fpr95"] == 0.5  # threshold 2.0 catches all anomalies and flags both normals at 2.0
    assert m["auc"] == pytest.approx(roc_auc_score(y, s))
    assert m["auc"] == pytest.approx((8 + 4 + 4 * 0.5) / 16)  # 3.0s beat all 4 normals, 2.0s beat 2 and tie 2
    assert m["aupr_out"] == pytest.approx(average_precision_score(y, s))
    assert m["aupr_in"] == pytest.approx(average_precision_score(1 - y, -s))
    # all tied: chance everywhere, every normal flagged at the only threshold
    m = detection_metrics(y, np.ones(8))
    assert (m["auc"], m["fpr95"], m["detection_error"]) == (0.5, 1.0, 0.5)


@pytest.mark.parametrize("seed", range(5))
def test_against_sklearn_random(seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, 300)
    y[:2] = [0, 1]
    s = np.round(rng.normal(size=300) + y, 1)  # rounded: many ties
    m = detection_metrics(y, s)
    assert m["auc"] == pytest.approx(roc_auc_score(y, s))
    assert m["aupr_out"] == pytest.approx(average_precision_score(y, s))
    assert m["aupr_in"] == pytest.approx(average_precision_score(1 - y, -s))
    fpr, tpr, thr = roc_curve(y, s, drop_intermediate=False)
    t95 = max(t for t in np.unique(s) if np.mean(s[y == 1] >= t) >= 0.95)  # brute force over thresholds
    assert m["fpr95"] == pytest.approx(np.mean(s[y == 0] >= t95))
    brute = min(0.5 * (1 - np.mean(s[y == 1] >= t)) + 0.5 * np.mean(s[y == 0] >= t)
                for t in [*np.unique(s), np.inf])
    assert m["detection_error"] == pytest.approx(brute)


def test_swapped_convention():
    """Normal as positive with the scores negated: AUROC unchanged, AUPR-in and AUPR-out swap (OpenOOD #211)."""
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 200)
    s = rng.normal(size=200) + 0.8 * y
    a, b = detection_metrics(y, s), detection_metrics(1 - y, -s)
    assert b["auc"] == pytest.approx(a["auc"])
    assert (b["aupr_in"], b["aupr_out"]) == pytest.approx((a["aupr_out"], a["aupr_in"]))
    # scores the wrong way round (higher = more normal): AUROC is 1 - AUROC, never flipped back
    assert detection_metrics(y, -s)["auc"] == pytest.approx(1 - a["auc"])


def test_bad_inputs():
    with pytest.raises(FloatingPointError):
        detection_metrics(Y, [0.1, np.nan, 0.2, 0.3])
    with pytest.raises(ValueError, match="both normal"):
        detection_metrics([0, 0], [0.1, 0.2])
    with pytest.raises(ValueError, match="3 labels for 2"):
        detection_metrics([0, 1, 1], [0.1, 0.2])


def test_old_records_without_the_metrics_still_load(tmp_path):
    from adcore.runner import ResultStore
    rec = {"config_hash": "0123456789abcdef", "auc": 0.9, "dataset": "fmnist"}
    (tmp_path / "0123456789abcdef.json").write_text(json.dumps(rec))
    df = ResultStore(tmp_path).frame()
    assert df["auc"].tolist() == [0.9] and "fpr95" not in df


def test_one_record_type_has_the_stamp_and_keys_are_unchanged():
    import torch
    from adcore.config import RunRecord
    from adcore.experiment import RunConfig
    from adcore.runner import config_hash
    y, s = np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8])
    cfg = RunConfig(dataset="fmnist", normal_class=3)
    tail = RunRecord(cfg, detection_metrics(y, s), 2.0, 0.5, 3.0, 40, 4, "here", torch.device("cpu"),
                     {"n_oe": 7, "auc_seed": 0.9}).flat()
    assert {"versions", "commit", "threads", "device", "adcore", "finished"} <= set(tail)
    assert "torch " in tail["versions"] and tail["threads"] == torch.get_num_threads()
    assert tail["auc"] == 0.75 and tail["normal_class"] == 3 and tail["n_oe"] == 7  # 3 of 4 pairs ordered
    assert (tail["train_time"], tail["test_time"], tail["wall_time"], tail["n_train"], tail["n_test"]) == (
        2.0, 0.5, 3.0, 40, 4) and tail["data_source"] == "here"
    # the key's fields, but n_train / n_test: what the run used (the config's None means "all")
    assert all(tail[k] == v for k, v in cfg.key().items() if k not in ("n_train", "n_test"))
    assert not {"versions", "commit", "threads"} & set(RunConfig().key())
    # the store key of a fixed configuration (as before the stamp and the metrics were added)
    # store keys of fixed configurations, computed before the stamp and the metrics were added
    from adcore.deepsad import SADConfig
    assert config_hash(RunConfig(dataset="fmnist", normal_class=0, epochs=1)) == "2fc0507c1d83042f"
    assert config_hash(SADConfig()) == "c99bcbb5a2cbf9bb"


def test_tables_show_another_metric_and_a_95_interval():
    import pandas as pd
    from adcore import report
    df = pd.DataFrame({"cls": [0, 0, 0, 1, 1, 1], "method": ["a"] * 6, "seed": [0, 1, 2] * 2,
                       "auc": [90.0, 92.0, 94.0, 80.0, 80.0, 80.0], "fpr95": [10.0, 20.0, 30.0, 5.0, 5.0, 5.0]})
    # 3 seeds: mean 20, std (ddof 0) 8.165, sample std 10, t(0.975, 2) = 4.303 -> half-width 24.84
    t = report.auc_table(df, "cls", "method", metric="fpr95", interval=True, mean_row=False)
    assert t.loc[0, "a"] == "20.0 ± 8.2 [-4.8, 44.8]"
    assert t.loc[1, "a"] == "5.0 ± 0.0 [5.0, 5.0]"
    assert report.auc_table(df, "cls", "method", mean_row=False).loc[0, "a"] == "92.0 ± 1.6"  # unchanged default
    with pytest.raises(KeyError, match="aupr_in"):
        report.auc_table(df, "cls", "method", metric="aupr_in")


def test_run_card_prints_the_stamp_and_old_records_without_it():
    import pandas as pd
    from adcore import report
    df = pd.DataFrame({"config_hash": ["a", "b"], "seed": [0, 0], "device": ["cpu", "cpu"],
                       "commit": ["abc123", None], "versions": ["adcore 0.1.0, torch 2.14.1", None],
                       "threads": [2, None]})
    card = report.run_card("smoke", df, {})["value"]
    assert card["threads"] == "2 (and records without a stamp)"
    assert card["adcore commit"] == "abc123 (and records without a stamp)"
    assert card["package versions"].startswith("adcore 0.1.0, torch 2.14.1")
    old = report.run_card("smoke", df[["config_hash", "seed", "device"]], {})
    assert "adcore commit" not in old.index
