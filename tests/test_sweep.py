"""Named grids, the runner (local and Ray), failures, resume after a killed driver, the CLI."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from adcore import __main__ as cli
from adcore import chapters, runner
from adcore.config import grid, parse_value
from adcore.experiment import RunConfig
from adcore.runner import ResultStore, config_hash
from test_experiment import bars_mnist  # noqa: F401  (module fixture: a tiny MNIST-format dataset)

ROOT = Path(__file__).resolve().parents[1]

# The issue's run counts (the seed's scripts, src/experiments/*.sh in lukasruff/Classification-AD).
# The seed's counts, plus the book's references: GEO (72 transformations) beside the table (100) and the OE-size
# curves (the same 100 runs), HSC without OE beside the OE-size curves (100 on CIFAR-10, 150 on ImageNet-30).
PAPER_COUNTS = {"cifar10_table": 400 + 100, "cifar10_oe_sizes": 4400 + 200, "cifar10_blur": 1200, "cifar100_oe_classes": 1600,
                "cifar10_hsc_sensitivity": 800, "focal_sensitivity": 800, "imagenet30_table": 1200,
                "imagenet30_oe_sizes": 5700 + 150, "imagenet30_blur": 1800, "mnist_emnist_classes": 1600,
                "mnist_blur": 600}


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: tiny models, one thread


def _tiny(root, **kw):
    base = dict(dataset="mnist", normal_class=0, objective="hsc", oe="noise", oe_size=64, epochs=1, batch_size=32,
                n_test=90, data_root=root)
    return RunConfig(**{**base, **kw})


# ---- grids -----------------------------------------------------------------------------------------------------

def test_every_paper_grid_has_the_issues_count():
    for name, n in PAPER_COUNTS.items():
        assert len(chapters.grid(name, "paper")) == n == chapters.GRIDS[name].paper_runs, name
    assert set(PAPER_COUNTS) | {"book", "all"} == set(chapters.GRIDS)
    # the composites run each configuration once: sigma 0 is shared by the blur notebook and the OE-size grid,
    # the sensitivity grids share 300 runs with the tables
    per_notebook = {nb: {c for _, c in chapters.open(nb, "paper").runs} for nb in chapters.NOTEBOOKS}
    rethinking = per_notebook["cifar10_table"] | per_notebook["oe_size_curves"] | per_notebook["imagenet_blurring"]
    assert len(rethinking) == 500 + 4600 + 1200 - 100  # GEO's runs are the table's and the curves' reference
    assert len(chapters.grid("book", "paper")) == len(set().union(*per_notebook.values())) == \
        chapters.GRIDS["book"].paper_runs
    assert len(chapters.grid("all", "paper")) == sum(PAPER_COUNTS.values()) - 300 - 100 == \
        chapters.GRIDS["all"].paper_runs


def test_paper_settings_are_the_seeds():
    c10 = [c for c in chapters.grid("cifar10_table", "paper") if c.objective != "geo"]
    assert {(c.net, c.rep_dim, c.epochs, c.milestones, c.oe) for c in c10} == {
        ("cifar10_lenet", 256, 200, (100, 150), "tinyimages")}
    assert {c.objective for c in c10} == {"deepsad", "hsc", "focal", "bce"} and {c.seed for c in c10} == set(range(10))
    sizes = chapters.grid("cifar10_oe_sizes", "paper")
    assert sorted({c.oe_size for c in sizes if c.oe}) == [2 ** k for k in range(22)]
    assert {(c.objective, c.oe_size) for c in sizes if not c.oe} == {("hsc", None), ("geo", None)}
    blur = chapters.grid("cifar10_blur", "paper")
    assert sorted({c.blur for c in blur}) == [1, 2, 4, 8, 16, 32] and {c.oe_size for c in blur} == {128}
    notebook = [c for _, c in chapters.open("imagenet_blurring", "paper").runs]
    assert set(notebook) <= set(blur) | set(sizes)  # sigma 0 at OE size 128 is a point of the OE-size grid
    hsc = chapters.grid("cifar10_hsc_sensitivity", "paper")
    assert {(c.hsc_norm, c.augment) for c in hsc} == {(n, a) for n in ("l1", "l2", "l2_squared", "l2_squared_linear")
                                                      for a in (None, "cifar_normalize")}
    focal = chapters.grid("focal_sensitivity", "paper")
    assert {c.focal_gamma for c in focal} == {0, 0.5, 2, 4}
    assert {c.normal_class for c in focal if c.dataset == "imagenet30"} == set(range(10))
    inet = chapters.grid("imagenet30_oe_sizes", "paper")
    assert {c.seed for c in inet} == set(range(5)) and max(c.oe_size or 0 for c in inet) == 2 ** 18
    assert {(c.net, c.epochs, c.milestones) for c in inet} == {("resnet18_cbam", 150, (100, 125))}
    assert {c.oe_classes for c in chapters.grid("mnist_emnist_classes", "paper")} == {1, 2, 3, 5, 10, 15, 20, 26}
    assert {c.oe_classes for c in chapters.grid("cifar100_oe_classes", "paper")} == {1, 2, 4, 8, 16, 32, 64, 100}
    mb = chapters.grid("mnist_blur", "paper")
    assert {(c.oe, c.oe_classes, c.net, c.rep_dim) for c in mb} == {("emnist-letters", 26, "mnist_lenet", 32)}


def test_book_grids_come_from_profiles_and_take_overrides():
    def notebook(nb, profile, **params):
        return list(dict.fromkeys(c for _, c in chapters.open(nb, profile, **params).runs))
    for profile in ("smoke", "laptop", "paper"):
        assert chapters.grid("cifar10_table", profile, epochs=1, seeds=2) == notebook("cifar10_table", profile,
                                                                                      epochs=1, seeds=2)
        assert chapters.grid("cifar10_oe_sizes", profile) == notebook("oe_size_curves", profile)
    # the composite "book" grid is every notebook's runs, each once: Rethinking, Deep SAD and CLAD configs
    book = chapters.grid("book", "smoke")
    every = [c for nb in chapters.NOTEBOOKS for _, c in chapters.open(nb, "smoke").runs]
    assert set(book) == set(every) and len(book) == len(set(every))
    assert {type(c).__name__ for c in book} == {"RunConfig", "SADConfig", "CLADConfig", "OCSVMConfig"}
    small = chapters.grid("mnist_blur", "smoke", seeds=2, blur=[1, 3], epochs=2)
    assert len(small) == 1 * 2 * 2 * 2 and {c.epochs for c in small} == {2} and {c.blur for c in small} == {1.0, 3.0}
    assert {c.oe for c in chapters.grid("cifar10_table", "paper", oe=None)} == {None}
    assert {c.oe for c in chapters.grid("book", "smoke", oe=None) if hasattr(c, "oe")} == {None}  # None is a value
    assert len(chapters.grid("focal_sensitivity", "laptop", epochs=1)) < len(chapters.grid("focal_sensitivity", "paper"))
    with pytest.raises(ValueError, match="unknown setting"):
        chapters.grid("mnist_blur", "smoke", seedz=3)
    with pytest.raises(ValueError, match="unknown grid"):
        chapters.grid("cifar11_table", "paper")
    with pytest.raises(ValueError, match="unknown setting"):
        chapters.grid("book", "smoke", seedz=3)
    assert parse_value("[0, 1]") == [0, 1] and parse_value("None") is None
    assert parse_value("0.5") == 0.5 and parse_value("natural") == "natural"


def test_dry_run_prints_counts(capsys, tmp_path):
    assert cli.main(["sweep", "cifar10_table", "--profile", "paper", "--dry-run", "--results", str(tmp_path)]) == 0
    assert "500 runs" in capsys.readouterr().out  # the seed's 400 and GEO's 100
    assert cli.main(["sweep", "cifar10_oe_sizes", "--profile", "paper", "--dry-run", "--results", str(tmp_path)]) == 0
    assert "4600 runs" in capsys.readouterr().out  # the seed's 4400, HSC and GEO without OE
    assert cli.main(["sweep", "imagenet30_table", "--profile", "paper", "--dry-run", "-p", "seeds", "5"]) == 0
    assert "600 runs" in capsys.readouterr().out
    assert cli.main(["sweep", "--list"]) == 0
    assert "5,850" in capsys.readouterr().out  # imagenet30_oe_sizes: the seed's 5,700 and HSC without OE


def test_imagenet30_without_its_data_fails_clearly(tmp_path, monkeypatch):
    monkeypatch.delenv("ADCORE_DATA", raising=False)
    result = runner.execute(chapters.grid("imagenet30_table", "smoke")[:2], tmp_path, retries=0, progress=False)
    assert result.failed == 2 and all("no copy of 'imagenet30'" in f.error for f in result.failures)
    assert not list(tmp_path.glob("*.json"))


# ---- runner ------------------------------------------------------------------------------------------------------

def test_failing_run_is_retried_then_reported_while_others_complete(bars_mnist, tmp_path, monkeypatch):
    calls = []
    real = RunConfig.run
    bad = _tiny(bars_mnist, seed=7)

    def flaky(cfg, **kw):
        calls.append(cfg)
        if cfg == bad:
            raise OSError("disk full")
        return real(cfg, **kw)

    monkeypatch.setattr(RunConfig, "run", flaky)
    good = grid(_tiny(bars_mnist), seed=[0, 1])
    result = runner.execute(good + [bad], tmp_path, retries=2, progress=False, group_size=1)
    assert result.ran == 2 and result.failed == 1 and result.failures[0].attempts == 3
    assert sum(c == bad for c in calls) == 3 and sum(c in good for c in calls) == 2
    assert "OSError: disk full" in result.summary() and config_hash(bad) in result.summary()
    assert len(ResultStore(tmp_path)) == 2 and len(result.frame) == 2
    with pytest.raises(runner.SweepError, match="1 failed"):
        runner.execute(good + [bad], tmp_path, retries=0, progress=False).raise_for_failures()
    assert len(calls) == 3 + 2 + 1  # the finished runs were not run again


def test_diverging_run_fails_at_once_with_its_key(bars_mnist, tmp_path, monkeypatch):
    """A non-finite loss is deterministic: reported without retries, naming the run; the others finish."""
    real = RunConfig.run
    calls = []

    def diverge(cfg, **kw):
        calls.append(cfg)
        if cfg.seed == 1:
            raise FloatingPointError(f"run {cfg.describe()}: loss became nan in epoch 0")
        return real(cfg, **kw)

    monkeypatch.setattr(RunConfig, "run", diverge)
    result = runner.execute(grid(_tiny(bars_mnist), seed=[0, 1]), tmp_path, retries=2, progress=False,
                            group_size=1)
    assert result.ran == 1 and result.failed == 1 and len(calls) == 2
    assert "seed=1" in result.failures[0].error and "nan" in result.failures[0].error


def test_failure_summary_names_any_config_kind():
    """Every config kind describes itself (Deep SAD's SADConfig has ``method``, not ``objective``)."""
    from adcore.deepsad import SADConfig

    cfg = SADConfig(method="ssad", seed=3)
    text = runner.Result(total=1, already=0, failures=[runner.Failure([cfg], "boom", 1)]).summary()
    assert "ssad" in text and "boom" in text and config_hash(cfg) in text and "1 failed" in text


def test_max_runs_and_resume(bars_mnist, tmp_path):
    configs = grid(_tiny(bars_mnist), seed=[0, 1, 2])
    r1 = runner.execute(configs, tmp_path, max_runs=2, progress=False)
    assert (r1.ran, r1.skipped) == (2, 1)
    r2 = runner.execute(configs, tmp_path, progress=False)
    assert (r2.already, r2.ran) == (2, 1) and len(r2.frame) == 3


def test_a_failing_k_model_job_is_split_into_single_runs(bars_mnist, tmp_path, monkeypatch):
    calls = []
    real = RunConfig.run_group.__func__

    def run_group(cls, configs, **kw):
        calls.append(len(configs))
        if any(c.seed == 3 for c in configs):
            raise RuntimeError("out of memory")
        return real(cls, configs, **kw)

    monkeypatch.setattr(RunConfig, "run_group", classmethod(run_group))
    ok = grid(_tiny(bars_mnist), seed=[0, 1])
    result = runner.execute(ok + [_tiny(bars_mnist, seed=3), _tiny(bars_mnist, objective="bce")], tmp_path,
                            progress=False)
    # hsc seeds 0, 1, 3 form one job (it fails, so its runs go again one by one); bce is a job of one
    assert calls == [3] and result.ran == 4 and not result.failures
    assert len(ResultStore(tmp_path)) == 4
    calls.clear()
    runner.execute(grid(_tiny(bars_mnist, epochs=2), seed=[0, 1]), tmp_path / "b", group_size=1, progress=False)
    assert calls == []


def test_sweep_trains_compatible_runs_together_with_the_same_results(bars_mnist, tmp_path):
    """Classes, seeds and objectives of one schedule share steps, and the records equal lone runs."""
    configs = grid(_tiny(bars_mnist), objective=["hsc", "deepsad"], seed=[0, 1])  # same net (no head)
    result = runner.execute(configs, tmp_path / "k", progress=False)
    assert result.ran == 4 and not result.failures
    df = result.frame.set_index("config_hash")
    assert set(df["models_in_step"]) == {4}
    alone = runner.execute(configs, tmp_path / "one", group_size=1, progress=False).frame.set_index("config_hash")
    assert set(alone["models_in_step"]) == {1}
    assert df["auc"].sort_index().tolist() == alone["auc"].sort_index().tolist()  # CPU loop mode is bit-exact


def test_store_ignores_temporary_files(tmp_path):
    store = ResultStore(tmp_path)
    store.write(RunConfig(), {"auc": 0.5})
    (tmp_path / ".tmp-abc.json").write_text('{"auc": 0.')  # a writer killed mid-write (old naming)
    (tmp_path / ".tmp-def.part").write_text('{"auc": 0.')
    assert len(store) == 1 and len(store.frame()) == 1


def test_killed_driver_resumes_with_one_record_per_point(bars_mnist, tmp_path):
    results = tmp_path / "res"
    args = ["sweep", "cifar10_table", "--profile", "smoke", "-p", "dataset", "mnist", "-p", "oe", "noise",
            "-p", "classes", "[0]", "-p", "seeds", "3", "-p", "oe_size", "64", "--data-root", bars_mnist,
            "--results", str(results), "--quiet"]
    expected = {config_hash(c) for c in chapters.grid("cifar10_table", "smoke", dataset="mnist", oe="noise",
                                                   classes=[0], seeds=3, oe_size=64)}
    assert len(expected) == 7 * 3  # seven methods (GEO-8 included) x three seeds
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "adcore", *args], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while not list(results.glob("*.json")) and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
    at_kill = len(ResultStore(results))
    assert 1 <= at_kill < len(expected), proc.stderr.read().decode()[-2000:]
    assert cli.main(args) == 0
    files = ResultStore(results).files()
    assert {f.stem for f in files} == expected and len(files) == len(expected)
    assert {json.loads(f.read_text())["config_hash"] for f in files} == expected


# ---- Ray ---------------------------------------------------------------------------------------------------------

def test_ray_executor_matches_local(bars_mnist, tmp_path):
    ray = pytest.importorskip("ray")
    configs = grid(_tiny(bars_mnist), objective=["hsc", "deepsad"], seed=[0, 1])  # same net (no head)
    bad = _tiny(bars_mnist, dataset="cifar10")  # valid, but the given data root holds no CIFAR-10: fails when run
    local = runner.execute(configs, tmp_path / "local", progress=False).frame  # one thread, as a one-CPU Ray task
    assert runner.init_ray(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        result = runner.execute(configs + [bad], tmp_path / "ray", executor="ray", retries=1, progress=False)
    finally:
        ray.shutdown()
    assert result.ran == 4 and result.failed == 1 and result.failures[0].attempts == 2
    assert "no copy of 'cifar10'" in result.failures[0].error
    remote = result.frame
    key = ["objective", "seed"]
    a = local.sort_values(key).reset_index(drop=True)
    b = remote.sort_values(key).reset_index(drop=True)
    assert list(a["config_hash"]) == list(b["config_hash"])
    assert list(a["auc"]) == list(b["auc"])
    assert list(a["n_oe"]) == list(b["n_oe"]) and list(a["n_params"]) == list(b["n_params"])
