import json
from dataclasses import dataclass

import numpy as np
import pytest
import torch

from adcore import __main__ as cli
from adcore.config import ConfigError, RunSpec, grid
from adcore.experiment import RunConfig
from adcore.runner import CorruptRecordError, ResultStore, config_hash, execute
from conftest import bars
from test_data import write_idx


@pytest.fixture(scope="module")
def bars_mnist(tmp_path_factory):
    """An MNIST-format dataset (IDX .gz) whose class 0 is horizontal bars and classes 1, 2 vertical bars."""
    root = tmp_path_factory.mktemp("bars")
    for split, prefix, n, seed in (("train", "train", 120, 1), ("test", "t10k", 60, 2)):
        x = torch.cat([bars(n, False, seed), bars(n, True, seed + 10), bars(n, True, seed + 20)])[:, 0].numpy()
        y = np.repeat([0, 1, 2], n)
        write_idx(root / f"{prefix}-images-idx3-ubyte.gz", x)
        write_idx(root / f"{prefix}-labels-idx1-ubyte.gz", y)
    return str(root)


def _cfg(root, **kw):
    base = dict(dataset="mnist", normal_class=0, objective="hsc", oe="noise", oe_size=256, epochs=2,
                batch_size=32, data_root=root, seed=0)
    return RunConfig(**{**base, **kw})


def run(cfg, **kw):
    return cfg.run(**kw)


CALLS: list = []


@dataclass(frozen=True)
class Counted(RunSpec):
    """A config kind of the test's own: the runner needs nothing but the protocol."""

    TAG = "counted"
    seed: int = 0
    crash: bool = False

    def run(self, device=None, progress=True):
        CALLS.append(self)
        if self.crash:
            raise KeyboardInterrupt
        return {**self.key(), "auc": 0.5 + self.seed / 10}


def test_run_returns_plain_record(bars_mnist):
    rec = run(_cfg(bars_mnist), progress=False)
    assert 0 <= rec["auc"] <= 1
    assert rec["n_train"] == 120 and rec["n_test"] == 180 and rec["n_oe"] == 256
    assert rec["n_params"] == 115968 and len(rec["losses"]) == 2
    assert rec["train_time"] > 0 and rec["images_per_s"] > 0
    json.dumps(rec)  # plain types only


def test_run_subsamples_and_seed_determinism(bars_mnist):
    cfg = _cfg(bars_mnist, n_train=64, n_test=30, oe=None, objective="deepsvdd")
    a, b = run(cfg, progress=False), run(cfg, progress=False)
    assert a["n_train"] == 64 and a["n_oe"] == 0
    assert 25 <= a["n_test"] <= 35
    assert a["auc"] == b["auc"] and a["losses"] == b["losses"]


def test_super_category_and_blur(bars_mnist):
    rec = run(_cfg(bars_mnist, normal_class=(1, 2), blur=2.0, objective="bce"), progress=False)
    assert rec["normal_class"] == [1, 2] and rec["n_train"] == 240 and rec["blur"] == 2.0


def test_unknown_names_fail_clearly(bars_mnist):
    with pytest.raises(ValueError, match="unknown objective"):
        run(_cfg(bars_mnist, objective="svm"), progress=False)
    with pytest.raises(ValueError, match="unknown net"):
        run(_cfg(bars_mnist, net="vgg"), progress=False)
    with pytest.raises(ValueError):
        run(_cfg(bars_mnist, dataset="imagenet"), progress=False)
    with pytest.raises(ValueError):
        run(_cfg(bars_mnist, oe_size=0), progress=False)


def test_grid_product():
    g = grid(RunConfig(epochs=1), objective=["hsc", "bce"], seed=range(3))
    assert len(g) == 6 and {c.objective for c in g} == {"hsc", "bce"} and all(c.epochs == 1 for c in g)


def test_store_resumes_and_is_atomic(tmp_path):
    CALLS.clear()
    configs = grid(Counted(), seed=range(3))
    df = execute(configs, tmp_path / "res", progress=False).frame
    assert len(CALLS) == 3 and sorted(df["auc"]) == pytest.approx([0.5, 0.6, 0.7])
    assert set(df["model"]) == {"counted"}  # the kind's tag is part of the key
    df2 = execute(configs + [configs[0]], tmp_path / "res", progress=False).frame
    assert len(CALLS) == 3 and len(df2) == 3  # nothing new ran
    assert not list((tmp_path / "res").glob(".tmp-*"))


def test_interrupted_run_leaves_no_record(tmp_path):
    store = ResultStore(tmp_path / "res")
    with pytest.raises(KeyboardInterrupt):
        execute([Counted(crash=True)], store, progress=False)
    assert len(store) == 0 and not store.has(Counted(crash=True))


def test_corrupt_record_reported(tmp_path):
    store = ResultStore(tmp_path)
    store.write(RunConfig(), {"auc": 0.9})
    bad = tmp_path / "deadbeef.json"
    bad.write_text('{"auc": 0.9')
    with pytest.raises(CorruptRecordError, match="deadbeef.json"):
        store.frame()


def test_hash_ignores_paths_but_not_settings(tmp_path):
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    assert config_hash(RunConfig(data_root=str(tmp_path / "a"))) == config_hash(RunConfig(data_root=str(tmp_path / "b")))
    assert config_hash(RunConfig(seed=1)) != config_hash(RunConfig(seed=2))


def test_key_version_separates_old_computations():
    @dataclass(frozen=True)
    class V2(Counted):
        KEY_VERSION = 2

    assert "key_version" not in Counted().key() and V2().key()["key_version"] == 2
    assert config_hash(V2()) != config_hash(Counted())


def test_cli_prints_auc_and_timings(bars_mnist, capsys):
    assert cli.main(["run", "--dataset", "mnist", "--data-root", bars_mnist, "--normal-class", "0", "--objective",
                     "focal", "--oe", "noise", "--oe-size", "64", "--epochs", "1", "--batch-size", "32",
                     "--quiet"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("AUC ") and "train" in out and "img/s" in out
    assert cli.main(["run", "--dataset", "mnist", "--data-root", bars_mnist, "--no-oe", "--objective", "deepsvdd",
                     "--epochs", "1", "--quiet", "--json"]) == 0
    rec = json.loads(capsys.readouterr().out)
    assert rec["oe"] is None and rec["objective"] == "deepsvdd"


def test_geo_run_trains_on_transformed_copies_and_finds_the_turned_bars(bars_mnist):
    """GEO as a run: normal = horizontal bars; a vertical bar is a normal one turned by 90 degrees, so the
    transformation classifier calls its identity copy 'turned' and the Dirichlet score flags it."""
    cfg = _cfg(bars_mnist, objective="geo8", oe=None, oe_size=None, epochs=2)
    assert cfg.group_key() is None  # its own training set and scoring: never grouped with other runs
    rec = run(cfg, progress=False)
    assert rec["n_train"] == 120 and rec["n_oe"] == 0 and rec["n_params"] == 115968 - (64 * 32 + 32) + (64 * 8 + 8)  # 8 logits, not 32 features
    assert rec["auc"] > 0.9


@pytest.mark.parametrize("fields, bad", [({"oe": "noise"}, "oe='noise'"), ({"oe": None, "rep_dim": 8}, "rep_dim=8"),
                                          ({"oe": None, "blur": 2.0}, "blur=2.0")])
def test_geo_config_refuses_what_it_cannot_use(fields, bad):
    with pytest.raises(ConfigError, match=f"objective='geo' learns from the normal images alone.*got {bad}"):
        RunConfig(objective="geo", **fields)
