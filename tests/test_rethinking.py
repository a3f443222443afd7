import pytest

from adcore import chapters, paper
from adcore.chapters.rethinking import EXPERIMENTS, METHODS, NOTEBOOKS, runs, settings


def grid(notebook, s):
    return [c for _, c in runs(notebook, s)]


def test_paper_grid_sizes():
    assert len(grid("cifar10_table", settings("cifar10_table", "paper"))) == 400
    assert len(grid("oe_size_curves", settings("oe_size_curves", "paper"))) == 4400
    cfgs = grid("cifar10_table", settings("cifar10_table", "paper"))
    assert {c.epochs for c in cfgs} == {200} and {c.milestones for c in cfgs} == {(100, 150)}
    assert {c.net for c in cfgs} == {"cifar10_lenet"} and {c.rep_dim for c in cfgs} == {256}


def test_overrides_apply_everywhere():
    s = settings("cifar10_table", "laptop", epochs=1, seeds=2)
    cfgs = grid("cifar10_table", s)
    assert {c.epochs for c in cfgs} == {1}
    assert {c.seed for c in cfgs} == {0, 1}
    assert {c.dataset for c in cfgs} == {"fmnist", "cifar10"}
    assert settings("cifar10_table", "laptop")["epochs"] == EXPERIMENTS["cifar10_table"].profiles["laptop"]["epochs"]
    assert settings("cifar10_table", "laptop", oe=None)["oe"] is None  # an override may set None


def test_labels_match_configs():
    for labels, cfg in runs("cifar10_table", settings("cifar10_table", "smoke")):
        assert cfg.objective == METHODS[labels["method"]]["objective"]
    for labels, cfg in runs("oe_size_curves", settings("oe_size_curves", "smoke")):
        assert cfg.oe_size == labels["oe_size"] or (cfg.oe is None and labels["oe_size"] == 0)
    for labels, cfg in runs("imagenet_blurring", settings("imagenet_blurring", "smoke")):
        assert cfg.blur == labels["sigma"]


def test_every_profile_covers_every_notebook_and_errors():
    for nb in chapters.NOTEBOOKS:
        for p in chapters.PROFILES:
            assert chapters.settings(nb, p)["profile"] == p
    assert set(chapters.NOTEBOOKS) == {*NOTEBOOKS, "deep_sad", "clad"}
    with pytest.raises(ValueError, match="unknown profile"):
        settings("cifar10_table", "cluster")
    with pytest.raises(ValueError, match="unknown notebook"):
        chapters.settings("table", "smoke")
    with pytest.raises(ValueError, match="unknown setting"):
        settings("cifar10_table", "smoke", epochz=3)


def test_paper_reference_table():
    t = paper.cifar10_table()
    assert t.shape == (11, 11)
    assert t.loc["mean", "HSC"] == 95.9 and t.loc["mean", "BCE"] == 96.1 and t.loc["mean", "Deep SAD"] == 94.5
    # the published means are the means of the class rows (to rounding)
    assert (t.drop("mean").mean() - t.loc["mean"]).abs().max() < 0.1
    assert set(paper.METHOD_COLUMN) == set(METHODS)
