"""Every bad input gets one clear error before any work starts: the same message from the command line (one line,
``adcore: error: ...``, exit status 2), the Python API (:class:`adcore.config.ConfigError` on construction) and a
notebook under papermill (its first code cell). And the results store under faults: concurrent writers, SIGKILL,
corrupt records and ``--repair``."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from adcore import __main__ as cli
from adcore import chapters
from adcore.clad import CLADConfig, OCSVMConfig
from adcore.config import ConfigError, check_device, grid
from adcore.deepsad import SADConfig
from adcore.experiment import RunConfig
from adcore.runner import CorruptRecordError, ResultStore, config_hash, execute
from test_experiment import bars_mnist  # noqa: F401  (module fixture: a tiny MNIST-format dataset)

ROOT = Path(__file__).resolve().parents[1]
NO_CUDA = not torch.cuda.is_available()

# (case, command-line flags of `python -m adcore run`, the same as RunConfig fields, the message)
BAD_INPUTS = [
    ("unknown dataset", ["--dataset", "imagenet"], {"dataset": "imagenet"},
     "unknown dataset 'imagenet'; choose one of 'mnist', 'fmnist'"),
    ("unknown objective", ["--objective", "svm"], {"objective": "svm"}, "unknown objective 'svm'; choose one of"),
    ("unknown net", ["--net", "vgg"], {"net": "vgg"}, "unknown net 'vgg'; choose one of"),
    ("unknown OE source", ["--oe", "imagenet"], {"oe": "imagenet"}, "unknown oe 'imagenet'; choose one of 'natural'"),
    ("unknown norm", ["--hsc-norm", "l3"], {"hsc_norm": "l3"}, "unknown hsc_norm 'l3'; choose one of"),
    ("unknown recipe", ["--augment", "autoaugment"], {"augment": "autoaugment"},
     "unknown augment 'autoaugment'; choose one of 'none', 'cifar'"),
    ("epochs 0", ["--epochs", "0"], {"epochs": 0}, "epochs=0 must be >= 1"),
    ("epochs -2", ["--epochs", "-2"], {"epochs": -2}, "epochs=-2 must be >= 1"),
    ("epochs not a number", ["--epochs", "ten"], {"epochs": "ten"}, "epochs='ten' must be an integer"),
    ("epochs a float", ["--epochs", "2.5"], {"epochs": "2.5"}, "epochs='2.5' must be an integer"),
    ("blur -1", ["--blur", "-1"], {"blur": -1.0}, r"blur=-1(\.0)? must be >= 0"),
    ("rep-dim 0", ["--rep-dim", "0"], {"rep_dim": 0}, r"rep_dim=0 must be >= 1 \(or None\)"),
    ("repeated normal class", ["--normal-class", "1,1"], {"normal_class": (1, 1)},
     r"normal_class=\(1, 1\) repeats class 1; give each class once"),
    ("normal class out of range", ["--normal-class", "10"], {"normal_class": 10},
     "normal_class=10: class 10 out of range; the classes of fmnist are 0..9"),
    ("every class normal", ["--normal-class", "0,1,2,3,4,5,6,7,8,9"], {"normal_class": tuple(range(10))},
     "makes every class of fmnist normal"),
    ("batch-size 0", ["--batch-size", "0"], {"batch_size": 0}, "batch_size=0 must be >= 1"),
    ("lr 0", ["--lr", "0"], {"lr": 0.0}, r"lr=0(\.0)? must be > 0"),
    ("lr nan", ["--lr", "nan"], {"lr": float("nan")}, "lr=nan must be a finite number"),
    ("oe-size 0", ["--oe-size", "0"], {"oe_size": 0}, r"oe_size=0 must be >= 1 \(or None\)"),
    ("oe-classes without a labelled source", ["--oe-classes", "3"], {"oe_classes": 3},
     "oe_classes=3 needs a labelled OE source"),
    ("milestone 0", ["--milestones", "0,5"], {"milestones": (0, 5)}, r"milestones\[0\]=0 must be >= 1"),
    ("data-root missing", ["--data-root", "/nonexistent"], {"data_root": "/nonexistent"},
     "data_root='/nonexistent': no such file or folder"),
    ("oe-root missing", ["--oe-root", "/nonexistent/oe"], {"oe_root": "/nonexistent/oe"},
     "oe_root='/nonexistent/oe': no such file or folder"),
]
IDS = [case[0] for case in BAD_INPUTS]


def _one_line(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("adcore: error: "), err
    return err


@pytest.mark.parametrize("case, argv, fields, message", BAD_INPUTS, ids=IDS)
def test_cli_answers_bad_input_in_one_line(case, argv, fields, message, capsys):
    import re
    assert cli.main(["run", *argv]) == 2
    assert re.search(message, _one_line(capsys)), case


@pytest.mark.parametrize("case, argv, fields, message", BAD_INPUTS, ids=IDS)
def test_api_raises_on_construction(case, argv, fields, message):
    with pytest.raises(ConfigError, match=message):
        RunConfig(**fields)
    with pytest.raises(ConfigError, match=message):
        RunConfig().replace(**fields)  # replace validates again


@pytest.mark.skipif(not NO_CUDA, reason="this machine has CUDA")
def test_device_cuda_without_cuda(capsys):
    msg = "device='cuda' asked for, but this machine has no usable CUDA device"
    assert cli.main(["run", "--device", "cuda"]) == 2
    assert msg in _one_line(capsys)
    with pytest.raises(ConfigError, match=msg):
        check_device("cuda")
    with pytest.raises(ConfigError, match=msg):
        execute([RunConfig()], "unused-store", device="cuda", progress=False)
    assert not Path("unused-store").exists()


def test_device_names(capsys):
    with pytest.raises(ConfigError, match="device='gpu' is not a device; use cpu, cuda or cuda:N"):
        check_device("gpu")
    check_device("cpu"), check_device(None), check_device("auto")
    assert cli.main(["run", "--device", "gpu"]) == 2 and "is not a device" in _one_line(capsys)


def test_missing_adcore_data_fails(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("ADCORE_DATA", str(tmp_path / "typo"))
    with pytest.raises(ConfigError, match=r"\$ADCORE_DATA='.*typo': no such folder"):
        RunConfig()
    assert cli.main(["run"]) == 2 and "typo" in _one_line(capsys)


def test_given_data_root_is_used_or_fails(bars_mnist, tmp_path, capsys):
    """An existing data root without the dataset: no fallback to the system copy; one line, exit 2."""
    (tmp_path / "empty").mkdir()
    assert cli.main(["run", "--dataset", "fmnist", "--data-root", str(tmp_path / "empty"), "--quiet"]) == 2
    err = _one_line(capsys)
    assert "no copy of 'fmnist' (train split) in the given root=" in err and "only place searched" in err


def test_other_config_kinds_validate():
    for make, message in ((lambda: SADConfig(epochs=0), "epochs=0 must be >= 1"),
                          (lambda: SADConfig(ratio_pollution=1.5), r"ratio_pollution=1.5 must be in \[0, 1\]"),
                          (lambda: SADConfig(method="svm"), "unknown method 'svm'"),
                          (lambda: SADConfig(lr="fast"), "lr='fast' must be a number"),
                          (lambda: SADConfig(data_root="/nonexistent"), "data_root='/nonexistent': no such"),
                          (lambda: CLADConfig(clf_epochs=0), "clf_epochs=0 must be >= 1"),
                          (lambda: CLADConfig(normal_class=(0, 0)), r"normal_class=\(0, 0\) repeats class 0"),
                          (lambda: OCSVMConfig(nu=0.0), r"nu=0.0 must be in \(0, 1\]"),
                          (lambda: OCSVMConfig(normal_class=(0, 12)), "class 12 out of range")):
        with pytest.raises(ConfigError, match=message):
            make()


def test_types_are_normalised():
    import numpy as np
    c = RunConfig(normal_class=[np.int64(1), 2], milestones=[3], seed=np.int64(2), blur=np.float32(1.5))
    assert c.normal_class == (1, 2) and c.milestones == (3,) and type(c.seed) is int and type(c.blur) is float
    assert c == RunConfig(normal_class=(1, 2), milestones=(3,), seed=2, blur=1.5)


# ---- sweeps: every configuration validated before the first run; nothing written -------------------------------

@pytest.mark.parametrize("extra, message", [
    (["-p", "epochs", "0"], "epochs=0 must be >= 1"),
    (["-p", "classes", "[0, 12]"], "class 12 out of range"),  # the first configuration is fine, a later one not
    (["-p", "seeds", "x"], "seeds='x' must be an integer"),
    (["--data-root", "/nonexistent"], "data_root='/nonexistent': no such file or folder"),
    (["--profile", "huge"], "invalid choice: 'huge'"),
    (["--retries", "-1"], "--retries -1 must be >= 0"),
    (["-p", "epoch", "3"], "unknown setting"),
], ids=["epochs", "late bad class", "seeds", "data-root", "profile", "retries", "unknown setting"])
def test_sweep_validates_everything_first(extra, message, tmp_path, capsys):
    store = tmp_path / "results"
    assert cli.main(["sweep", "cifar10_table", "--profile", "smoke", "--results", str(store), *extra]) == 2
    assert message in _one_line(capsys)
    assert not store.exists()


@pytest.mark.skipif(not NO_CUDA, reason="this machine has CUDA")
def test_sweep_device_cuda_without_cuda(tmp_path, capsys):
    assert cli.main(["sweep", "cifar10_table", "--profile", "smoke", "--results", str(tmp_path / "r"),
                     "--device", "cuda"]) == 2
    assert "no usable CUDA device" in _one_line(capsys) and not (tmp_path / "r").exists()


def test_python_m_adcore_exit_status_and_traceback_flag():
    """The real command: one line and status 2; ``--traceback`` (anywhere) lets the exception through."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    p = subprocess.run([sys.executable, "-m", "adcore", "run", "--epochs", "0"], capture_output=True, text=True,
                       env=env, cwd=ROOT, timeout=120)
    assert p.returncode == 2 and p.stderr == "adcore: error: epochs=0 must be >= 1\n" and not p.stdout
    for argv in (["run", "--epochs", "0", "--traceback"], ["--traceback", "run", "--epochs", "0"]):
        with pytest.raises(ConfigError, match="epochs=0 must be >= 1"):
            cli.main(argv)


# ---- a non-finite loss: the run's key and epoch; a sweep records it as failed, the others go on -----------------

def test_non_finite_loss(bars_mnist, tmp_path, capsys):
    flags = ["--dataset", "mnist", "--data-root", bars_mnist, "--oe", "noise", "--oe-size", "64", "--epochs", "2",
             "--batch-size", "32", "--n-test", "90", "--quiet"]
    assert cli.main(["run", *flags, "--lr", "1e30"]) == 1
    err = _one_line(capsys)
    assert "FloatingPointError: run dataset=mnist" in err and "lr=1e+30" in err and "in epoch 0" in err
    good = RunConfig(dataset="mnist", data_root=bars_mnist, oe="noise", oe_size=64, epochs=1, batch_size=32,
                     n_test=90)
    configs = [good, good.replace(lr=1e30), good.replace(seed=1)]
    result = execute(configs, tmp_path / "store", progress=False, group_size=1)
    assert result.ran == 2 and result.failed == 1 and result.failures[0].attempts == 1
    assert "lr=1e+30" in result.failures[0].error and "epoch 0" in result.failures[0].error
    assert len(ResultStore(tmp_path / "store")) == 2


# ---- the results store under faults ---------------------------------------------------------------------------

SLOW_SPEC = '''
import os, time, random
from dataclasses import dataclass
from adcore.config import RunSpec

@dataclass(frozen=True)
class Slow(RunSpec):
    TAG = "slow"
    i: int = 0
    seconds: float = 0.05

    def run(self, device=None, progress=True, **kw):
        time.sleep(self.seconds * random.random())
        return {**self.key(), "pid": os.getpid(), "payload": "x" * 100_000}
'''


def _spec_module(tmp_path: Path) -> dict:
    (tmp_path / "slowspec.py").write_text(SLOW_SPEC)
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)]), "OMP_NUM_THREADS": "1"}


def test_two_concurrent_sweeps_one_record_each(tmp_path):
    """Two processes execute the same grid into one store at once: one valid record per configuration."""
    env = _spec_module(tmp_path)
    store = tmp_path / "store"
    code = ("import sys; from slowspec import Slow; from adcore.runner import execute; "
            f"r = execute([Slow(i=i) for i in range(20)], {str(store)!r}, progress=False, group_size=1); "
            "sys.exit(1 if r.failures else 0)")
    procs = [subprocess.Popen([sys.executable, "-c", code], env=env, stderr=subprocess.PIPE) for _ in range(2)]
    for p in procs:
        assert p.wait(timeout=300) == 0, p.stderr.read().decode()[-2000:]
    sys.path.insert(0, str(tmp_path))
    try:
        from slowspec import Slow
        expected = {config_hash(Slow(i=i)) for i in range(20)}
    finally:
        sys.path.remove(str(tmp_path))
    s = ResultStore(store)
    assert {f.stem for f in s.files()} == expected and len(s.files()) == 20
    assert {r["config_hash"] for r in s.records()} == expected and all(len(r["payload"]) == 100_000
                                                                      for r in s.records())
    assert not list(store.glob(".tmp-*"))  # every temporary file was renamed or removed


def test_sigkill_leaves_no_partial_record(tmp_path):
    """A writer killed at any moment leaves only whole records (its half-written file stays hidden)."""
    env = _spec_module(tmp_path)
    store = tmp_path / "store"
    code = (f"from slowspec import Slow; from adcore.runner import ResultStore; s = ResultStore({str(store)!r})\n"
            "import sys; i = int(sys.argv[1])\nwhile True:\n    c = Slow(i=i, seconds=0); s.write(c, c.run()); i += 1\n")
    for k, delay in enumerate((0.0, 0.023)):  # once the writer is writing, at two moments mid-stream
        n = len(ResultStore(store)) if store.exists() else 0
        p = subprocess.Popen([sys.executable, "-c", code, str(10**6 * k)], env=env)
        deadline = time.monotonic() + 120
        while (len(ResultStore(store)) if store.exists() else 0) <= n and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(delay)
        p.send_signal(signal.SIGKILL)
        p.wait(timeout=60)
        records = ResultStore(store).records()  # raises CorruptRecordError on a partial record
        assert records and all(len(r["payload"]) == 100_000 for r in records)
    s = ResultStore(store)
    s.STALE_TMP_S = -1  # repair() removes the hidden leftovers of killed writers (after an hour by default)
    s.repair()
    assert not list(store.glob(".tmp-*")) and len(s.files()) > 0


def test_corrupt_record_error_and_repair(bars_mnist, tmp_path, capsys):
    good = RunConfig(dataset="mnist", data_root=bars_mnist, oe="noise", oe_size=64, epochs=1, batch_size=32,
                     n_test=90)
    configs = [good, good.replace(seed=1)]
    store = ResultStore(tmp_path / "store")
    execute(configs, store, progress=False)
    before = store.read(store.file(configs[1]))
    store.file(configs[1]).write_text('{"auc": 0.9, "trunc')  # e.g. a broken copy
    with pytest.raises(CorruptRecordError, match=r"corrupt result record .*\.json.*--repair"):
        execute(configs, store, progress=False)
    with pytest.raises(CorruptRecordError, match="not valid JSON"):
        store.records()
    result = execute(configs, store, progress=False, repair=True)
    assert result.ran == 1 and len(store) == 2 and store.read(store.file(configs[1]))["auc"] == before["auc"]
    moved = list((tmp_path / "store" / "corrupt").glob("*.json"))
    assert [f.name for f in moved] == [store.file(configs[1]).name]
    # a record whose hash is not its name is corrupt too
    other = store.file(configs[0])
    other.write_text(json.dumps({**store.read(other), "config_hash": "0" * 16}))
    assert store.corrupt() == [other]


def test_sweep_repair_flag(tmp_path, capsys):
    configs = chapters.grid("cifar10_table", "smoke")
    store = tmp_path / "store"
    store.mkdir()
    bad = store / f"{config_hash(configs[0])}.json"
    bad.write_text("")
    args = ["sweep", "cifar10_table", "--profile", "smoke", "--results", str(store), "--dry-run"]
    assert cli.main(args) == 0 and f"1 already in {store}" in capsys.readouterr().out  # dry run: no reading
    assert cli.main(args[:-1] + ["--max-runs", "1", "--quiet"]) == 2  # a real sweep stops before its first run
    err = _one_line(capsys)
    assert "corrupt result record" in err and bad.name in err and "--repair" in err
    assert cli.main(args + ["--repair"]) == 0
    captured = capsys.readouterr()
    assert f"moved corrupt record {bad.name}" in captured.err and "0 already in" in captured.out
    assert not bad.exists() and (store / "corrupt" / bad.name).exists()


# ---- a notebook under papermill: the first code cell fails with the same message -------------------------------

def _first_cell_failure(tmp_path, notebook: str, where: str = "chapters.open(", **params) -> tuple[Exception, str]:
    """Executes ``notebook`` under papermill with ``params`` (smoke profile, a fresh store), which must fail in its
    first code cell after the parameters that holds ``where`` (before it only that cell), and nowhere else, with
    nothing written to the store: (error, that cell's source)."""
    pm = pytest.importorskip("papermill")
    results = tmp_path / "results"
    with pytest.raises(pm.PapermillExecutionError) as err:
        pm.execute_notebook(str(ROOT / "notebooks" / notebook), str(tmp_path / "out.ipynb"), cwd=str(ROOT),
                            parameters={"profile": "smoke", "results_dir": str(results), **params},
                            progress_bar=False, kernel_name="python3")
    nb = json.loads((tmp_path / "out.ipynb").read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    failed = [i for i, c in enumerate(code) if any(o.get("output_type") == "error" for o in c.get("outputs", []))]
    tags = [c["metadata"].get("tags", []) for c in code]
    first = next(i for i, t in enumerate(tags) if "parameters" not in t and "injected-parameters" not in t)
    assert failed == [next(i for i in range(first, len(code)) if where in "".join(code[i]["source"]))]
    assert failed[0] <= first + 1
    assert not results.exists()
    return err.value, "".join(code[failed[0]]["source"])


def test_notebook_parameter_of_wrong_type_fails_in_first_code_cell(tmp_path):
    err, source = _first_cell_failure(tmp_path, "cifar10_table.ipynb", epochs="ten")
    assert err.ename == "ConfigError" and err.evalue == "epochs='ten' must be an integer"
    assert "chapters.open(" in source


def test_notebook_unknown_executor_fails_in_first_code_cell(tmp_path):
    err, source = _first_cell_failure(tmp_path, "deep_sad.ipynb", "ch.collect(", executor="slurm")
    assert err.ename == "ConfigError" and err.evalue == "unknown executor 'slurm'; choose one of 'local', 'ray'"
    assert "ch.collect(" in source


def test_any_config_kind_failing_with_a_non_finite_loss_is_named(tmp_path):
    from dataclasses import dataclass
    from adcore.config import RunSpec

    @dataclass(frozen=True)
    class Blows(RunSpec):
        TAG = "blows"
        seed: int = 0

        def run(self, device=None, progress=True, **kw):
            if self.seed == 1:
                raise FloatingPointError("loss became nan in epoch 3")
            return self.key()

    result = execute(grid(Blows(), seed=[0, 1, 2]), tmp_path / "s", progress=False)
    assert result.ran == 2 and result.failed == 1 and result.failures[0].attempts == 1
    assert result.failures[0].error == "FloatingPointError: run seed=1: loss became nan in epoch 3"


def test_atomic_write_keeps_the_old_file_when_the_block_fails(tmp_path):
    """The one temp-file-and-rename (store records, model files, score CSVs): a failing writer leaves the old file
    whole and no temporary; a finished one replaces it; ``fsync`` and a custom prefix change nothing visible."""
    from adcore.config import atomic_write
    target = tmp_path / "model.bin"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError, match="killed"):
        with atomic_write(target) as f:
            f.write(b"half of the new")
            raise RuntimeError("killed mid-write")
    assert target.read_bytes() == b"old" and sorted(p.name for p in tmp_path.iterdir()) == ["model.bin"]
    with atomic_write(target, "w", prefix=".tmp-", fsync=True) as f:
        f.write("new")
    assert target.read_text() == "new" and sorted(p.name for p in tmp_path.iterdir()) == ["model.bin"]
