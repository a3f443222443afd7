import pandas as pd
import pytest

from adcore import report
from adcore.chapters.rethinking import with_paper


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
    # an extra seed on one class only: a ± on that cell alone, a plain mean of the class means below
    uneven = report.auc_table(_frame().query("seed == 0 or normal_class == 1"), "normal_class", "method")
    assert uneven.loc[1, "HSC + OE"] == "92.0 ± 1.0" and uneven.loc[0, "HSC + OE"] == "90.0"
    assert uneven.loc["mean", "HSC + OE"] == "91.0"


def test_with_paper_uses_same_classes_and_leaves_no_holes():
    with_oe = _frame().assign(oe="natural", n_oe=4096)
    no_oe = _frame().query("method == 'HSC + OE'").assign(method="HSC (no OE)", oe=None, n_oe=0)
    t = with_paper(pd.concat([with_oe, no_oe]).assign(data="CIFAR-10 (JPEG copy)"))
    assert t.loc["HSC + OE", "paper, our 2 classes"] == f"{(96.3 + 98.7) / 2:.1f}"
    assert t.loc["BCE + OE", "paper, all 10 classes"] == "96.1"
    assert t.loc["HSC + OE", "ours"] == "91.5"
    assert t.loc["HSC (no OE)", "paper, our 2 classes"] == "not in the paper's table"
    assert "natural OE (4,096 images) / CIFAR-10, 80 Million Tiny Images OE" in t.loc["HSC + OE", "data (ours / paper)"]
    assert not t.isna().any().any() and "nan" not in t.to_string()


def test_labels():
    assert report.dataset_label("cifar10", "/x/shared/data/cifar10-jpeg.tar.gz") == "CIFAR-10 (JPEG copy)"
    assert report.dataset_label("cifar10", "/data/cifar-10-batches-py") == "CIFAR-10"
    assert report.dataset_label("fmnist") == "Fashion-MNIST"
    assert report.class_label("fmnist", 9) == "9: Ankle boot" and report.class_label("fmnist", (5, 7)) == "5: Sandal+7: Sneaker"


def test_cells_and_values():
    mean = pd.DataFrame({"a": [1.25, float("nan")]})
    std = pd.DataFrame({"a": [0.5, 0.1]})
    assert report.cells(mean, std, n=3)["a"].tolist() == ["1.2 ± 0.5", "—"]
    assert report.cells(mean, std, n=1)["a"].tolist() == ["1.2", "—"]
    assert report.values([128.0, 3.0, None, 3]) == "3, 128, all"
    assert report.values([None], none="none") == "none"
    assert report.counted([1.0, 1], "epochs") == "1 epoch" and report.counted([3, 5], "epochs") == "3, 5 epochs"
    assert report.counted([1, 4], "images") == "1, 4 images"
    spread = pd.DataFrame({"normal_class": [0, 1, 1, 1, 2, 3, 3, 3], "seed": [0, 0, 1, 2, 0, 0, 1, 2]})
    assert report.seed_text(spread) == "1; 3 at 2 of 4 points"
    assert report.seed_text(spread[spread.seed == 0]) == "1"
    assert report.seed_text(spread.drop(columns="normal_class")) == "3"
    blur = pd.DataFrame({"normal_class": [1] * 5, "blur": [0, 0, 0, 8, 32], "seed": [0, 1, 2, 0, 0]})
    assert report.seed_text(blur) == "1; 3 at 1 of 3 points"  # the same class, three seeds at sigma 0 only
    mixed = blur.assign(blur=[0, 0, 0, None, None], method=[None, None, None, "Deep SVDD", "Deep SVDD"])
    assert report.seed_text(mixed) == "1; 3 at 1 of 2 points"  # records of two kinds: missing columns count too
    assert report.slug("normal classes (a) / (b)") == "normal_classes_a_b"


def test_run_card_counts_runs_trained_and_stored():
    df = _frame().assign(config_hash=lambda d: [f"h{i}" for i in range(len(d))], device="cpu (x, 1 threads)")
    df.attrs.update(ran=3, stored=5)
    card = report.run_card("laptop", df, {"dataset": "CIFAR-10 (JPEG copy)"})
    assert list(card.index) == ["profile", "dataset", "seeds", "runs", "device", "torch"]
    assert card.loc["runs", "value"] == "8 (3 trained now, 5 read from the store)"
    assert card.loc["seeds", "value"] == "2"
