"""bench/parity.py: the side-by-side harness, run end to end on a stand-in of the seed's main.py (it writes the
seed's log lines) and on tiny CIFAR pickles for adcore; its paired statistics on hand-computed values; its errors."""
import importlib.util
import json
import pickle
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("parity_bench", ROOT / "bench" / "parity.py")
parity = importlib.util.module_from_spec(spec)
spec.loader.exec_module(parity)

FAKE_MAIN = """
import sys
from pathlib import Path
args = sys.argv[1:]
xp = Path(args[2])
opt = dict(zip(args[4::2], args[5::2]))
if opt["--normal_class"] == "9":
    sys.exit("boom")
auc = 60 + int(opt["--normal_class"]) + int(opt["--seed"]) / 10
lines = [f"| Epoch: {e:03}/{int(opt['--n_epochs']):03} | Train Time: 1.0s | Train Loss: {1 / (e + 1):.6f} |"
         for e in range(int(opt["--n_epochs"]) + 1)]
(xp / "log.txt").write_text("\\n".join(lines + [f"Test AUC: {auc:.2f}"]) + "\\n")
"""


def parity_data(root: Path) -> Path:
    """CIFAR-10 and CIFAR-100 pickles in the parity layout: 2 images of each CIFAR-10 class per batch."""
    rng = np.random.default_rng(0)
    c10 = root / "cifar-10-batches-py"
    c10.mkdir(parents=True)
    for b in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        y = list(range(10)) * 2
        with open(c10 / b, "wb") as f:
            pickle.dump({"data": rng.integers(0, 256, (20, 3072), dtype=np.uint8), "labels": y}, f)
    with open(c10 / "batches.meta", "wb") as f:
        pickle.dump({"label_names": [f"c{i}" for i in range(10)]}, f)
    c100 = root / "cifar-100-python"
    c100.mkdir()
    for b in ("train", "test"):
        with open(c100 / b, "wb") as f:
            pickle.dump({"data": rng.integers(0, 256, (16, 3072), dtype=np.uint8), "fine_labels": [0] * 16}, f)
    with open(c100 / "meta", "wb") as f:
        pickle.dump({"fine_label_names": [f"f{i}" for i in range(100)]}, f)
    return root


def test_both_codes_run_resume_and_pair(tmp_path, capsys):
    src = tmp_path / "seed" / "src"
    src.mkdir(parents=True)
    (src / "main.py").write_text(textwrap.dedent(FAKE_MAIN))
    data = parity_data(tmp_path / "data")
    out = tmp_path / "out"
    args = ["--seed-src", str(src), "--data", str(data), "--out", str(out), "--classes", "0-1", "--seeds", "1",
            "--objectives", "hsc", "--epochs", "1", "--jobs", "2"]
    assert parity.main(args) == 0
    seed = json.loads((out / "seed" / "hsc_c1_s1.json").read_text())
    assert seed["auc"] == pytest.approx(0.611) and seed["losses"] == [1.0]  # the evaluation epoch's loss left out
    ad = json.loads((out / "adcore" / "hsc_c0_s1.json").read_text())
    assert 0 <= ad["auc"] <= 1 and len(ad["losses"]) == 1 and ad["code"] == "adcore" and ad["threads"] == 1
    printed = capsys.readouterr().out
    assert "| seed s1 | adcore s1 |" in printed and "| 1 | 61.1 | " in printed
    assert "adcore − seed's code: mean" in printed and "n 2" in printed

    assert parity.main(args) == 0  # nothing runs again
    assert capsys.readouterr().out.count(": kept") == 4

    assert parity.main([*args, "--classes", "9", "--codes", "seed"]) == 0  # a failing run is reported, not stored
    assert "seed's code failed (exit 1): boom" in capsys.readouterr().out
    assert not (out / "seed" / "hsc_c9_s1.json").exists() and not list(out.glob("*/*.part"))


def test_paired_statistics_hand_computed():
    assert parity.paired([1.0, 2.0, 3.0]) == "mean +2.00, SD 1.00, SE 0.58, n 3 (t = +3.46)"
    assert parity.paired([1.0]).startswith("n 1: too few pairs")
    assert parity.ranges("0-2,7") == [0, 1, 2, 7]


@pytest.mark.parametrize("bad, message", [
    (["--seed-src", "nowhere"], "--seed-src nowhere: no main.py there"),
    (["--codes", "adcore,orig"], "--codes orig: choose seed and/or adcore"),
    (["--codes", "adcore", "--data", "nowhere"], "--data nowhere: needs cifar-10-batches-py/"),
])
def test_bad_arguments_one_line_exit_2(tmp_path, capsys, bad, message):
    with pytest.raises(SystemExit) as e:
        parity.main(["--out", str(tmp_path), *bad])
    assert e.value.code == 2 and message in capsys.readouterr().err
    assert not list(tmp_path.iterdir())
