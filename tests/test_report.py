import pandas as pd
import pytest

from adcore import report


def _frame():
    rows = []
    for cls in (0, 1):
        for seed in (0, 1):
            for method, base in (("HSC + OE", 90.0), ("BCE + OE", 80.0)):
                rows.append({"dataset": "cifar10", "normal_class": cls, "seed": seed, "method": method,
                             "auc": base + cls + 2 * seed})
    return pd.DataFrame(rows)


def test_auc_table_mean_std_and_mean_row():
    t = report.auc_table(_frame(), "normal_class", "method", dataset="cifar10")
    assert list(t.columns) == ["HSC + OE", "BCE + OE"]
    assert t.loc["0: airplane", "HSC + OE"] == "91.0 ± 1.0"  # seeds 0, 1 -> 90, 92
    assert t.loc["mean", "BCE + OE"] == "81.5 ± 1.0"  # per-seed class means 80.5, 82.5
    single = report.auc_table(_frame().query("seed == 0"), "normal_class", "method")
    assert single.loc[1, "HSC + OE"] == "91.0" and single.loc["mean", "HSC + OE"] == "90.5"


def test_with_paper_uses_same_classes():
    df = _frame()
    t = report.with_paper(df)
    assert t.loc["HSC + OE", "paper, same classes"] == pytest.approx((96.3 + 98.7) / 2, abs=0.05)
    assert t.loc["BCE + OE", "paper, all 10 classes"] == 96.1
    assert t.loc["HSC + OE", "ours (mean AUC %)"] == pytest.approx(91.5)


def test_labels():
    assert report.dataset_label("cifar10", "/x/shared/data/cifar10-jpeg.tar.gz") == "CIFAR-10 (JPEG copy)"
    assert report.dataset_label("cifar10", "/data/cifar-10-batches-py") == "CIFAR-10"
    assert report.dataset_label("fmnist") == "Fashion-MNIST"
    assert report.class_label("fmnist", 9) == "9: Ankle boot" and report.class_label("fmnist", (5, 7)) == "5: Sandal+7: Sneaker"
