"""Side-by-side parity with the Rethinking seed (lukasruff/Classification-AD): its own ``main.py`` and adcore on the
same data, the same settings, chosen classes / seeds / objectives, and the paired table of AUCs.

Why a harness: one HSC run on one CIFAR-10 class moves by 3-6 AUC from one seed to the next in *either* code
(class 0: 76.1 with seed 1, 70.1 with seed 2 in the seed's code), so "adcore matches the seed" is a statement about
means over classes x seeds, as paired differences with their standard error, never about one run.

Inputs (never committed):

* ``--seed-src``: the ``src/`` folder of the seed's repository at its HEAD (``fetch`` it, unpack, point here);
* ``--data``: the parity data, made by ``../shared/parity/make_parity_data.py OUT``: the CIFAR-10 JPEG copy
  re-packed as CIFAR pickles (``cifar-10-batches-py``) and 5,000 natural-image crops as a stand-in CIFAR-100
  (``cifar-100-python``), the OE set of both codes.

Settings (both codes): CIFAR-10 LeNet (rep 256, bias terms), OE from the stand-in CIFAR-100, ``--epochs`` (10),
Adam lr 1e-3 without a drop, weight decay 5e-7, batch 128 normal + 128 OE, augmentation and normalisation on. The
seed runs as ``main.py cifar10 cifar10_LeNet XP DATA --objective OBJ --outlier_exposure True --oe_dataset_name
cifar100 ...`` unchanged: only torchvision's md5 check and download are stubbed (the data are re-packed).

Every run is one process with ``--threads`` threads and leaves ``OUT/<code>/<obj>_c<class>_s<seed>.json`` (AUC, the
per-epoch training losses, the wall time); a run whose file exists is not run again, so a killed sweep resumes.
``--adcore-args`` / ``--tag`` run an adcore variant beside the plain one (``OUT/adcore-<tag>/``).

Usage::

    python bench/parity.py --seed-src SEED/src --data DATA --out OUT [--classes 0-9] [--seeds 1,2]
        [--objectives hsc,bce] [--codes seed,adcore] [--jobs 2] [--threads 1] [--table]

``--table`` prints the paired table of what ``OUT`` holds and runs nothing.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import re
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

# Run the seed's main.py offline: its CIFAR classes verify md5 sums and try to download; nothing else is touched.
SHIM = """
import os, runpy, sys
import torchvision.datasets as tvd, torchvision.datasets.cifar as tvc
tvc.check_integrity = lambda *a, **k: True
for cls in (tvd.CIFAR10, tvd.CIFAR100):
    cls._check_integrity = lambda self: True
    cls.download = lambda self: None
sys.argv = sys.argv[1:]
sys.path.insert(0, os.getcwd())
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def ranges(text: str) -> list[int]:
    """'0-9' or '1,3,5' or '0-2,7' -> the integers."""
    out: list[int] = []
    for part in text.split(","):
        a, _, b = part.partition("-")
        out += list(range(int(a), int(b) + 1)) if b else [int(a)]
    return out


def seed_cmd(a: argparse.Namespace, obj: str, c: int, s: int, xp: Path) -> list[str]:
    return [sys.executable, "-c", SHIM, "main.py", "cifar10", "cifar10_LeNet", str(xp), str(a.data),
            "--rep_dim", "256", "--objective", obj, "--outlier_exposure", "True", "--oe_dataset_name", "cifar100",
            "--device", "cpu", "--seed", str(s), "--lr", "0.001", "--n_epochs", str(a.epochs), "--lr_milestone",
            "100000", "--batch_size", "128", "--data_augmentation", "True", "--data_normalization", "True",
            "--normal_class", str(c), "--num_threads", str(a.threads)]


def adcore_cmd(a: argparse.Namespace, obj: str, c: int, s: int) -> list[str]:
    return [sys.executable, "-m", "adcore", "run", "--dataset", "cifar10", "--data-root", str(a.data),
            "--normal-class", str(c), "--objective", obj, "--oe", "cifar100", "--oe-root", str(a.data),
            "--epochs", str(a.epochs), "--seed", str(s), "--lr", "0.001", "--batch-size", "128", "--quiet",
            "--json", *a.adcore_args.split()]


def one(a: argparse.Namespace, code: str, obj: str, c: int, s: int) -> str:
    """Run one (code, objective, class, seed) unless its result file exists; returns a line for the log."""
    folder = a.out / (code if code == "seed" or not a.tag else f"{code}-{a.tag}")
    dest = folder / f"{obj}_c{c}_s{s}.json"
    if dest.exists():
        return f"{dest.name}: kept"
    folder.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": str(a.threads), "MKL_NUM_THREADS": str(a.threads)}
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        if code == "seed":
            p = subprocess.run(seed_cmd(a, obj, c, s, Path(tmp)), cwd=a.seed_src, env=env, capture_output=True,
                               text=True)
            log = Path(tmp, "log.txt").read_text() if Path(tmp, "log.txt").exists() else ""
            found = re.findall(r"Test AUC: ([0-9.]+)", log)
            if p.returncode or not found:
                return f"{dest.name}: seed's code failed (exit {p.returncode}): {(p.stderr or log)[-400:]}"
            losses = [float(v) for v in re.findall(r"Train Loss: ([0-9.]+) \|", log)][:a.epochs]
            rec = {"auc": float(found[-1]) / 100, "losses": losses}
        else:
            p = subprocess.run(adcore_cmd(a, obj, c, s), env=env, capture_output=True, text=True)
            if p.returncode:
                return f"{dest.name}: adcore failed (exit {p.returncode}): {p.stderr[-400:]}"
            r = json.loads(p.stdout)
            rec = {"auc": r["auc"], "losses": r["losses"], "layout": r.get("layout"), "commit": r.get("commit")}
    rec.update(code=code, tag=a.tag, objective=obj, normal_class=c, seed=s, epochs=a.epochs, threads=a.threads,
               wall_s=round(time.perf_counter() - t0, 1))
    part = dest.with_suffix(".part")
    part.write_text(json.dumps(rec))
    part.replace(dest)  # whole or absent: a killed run leaves nothing half-written
    return f"{dest.name}: {code} AUC {100 * rec['auc']:.2f} in {rec['wall_s']:.0f} s"


def load(out: Path) -> dict[tuple[str, str, int, int], dict]:
    runs = {}
    for f in sorted(out.glob("*/*.json")):
        r = json.loads(f.read_text())
        runs[(f.parent.name, r["objective"], r["normal_class"], r["seed"])] = r
    return runs


def paired(diffs: list[float]) -> str:
    n = len(diffs)
    if n < 2:
        return f"n {n}: too few pairs for a standard error"
    m = sum(diffs) / n
    sd = math.sqrt(sum((d - m) ** 2 for d in diffs) / (n - 1))
    se = sd / math.sqrt(n)
    return f"mean {m:+.2f}, SD {sd:.2f}, SE {se:.2f}, n {n} (t = {m / se if se else float('nan'):+.2f})"


def table(out: Path) -> str:
    """The paired table per objective: rows = classes, a column per (code, seed); then each adcore variant's paired
    difference to the seed's code over the (class, seed) pairs both have, and the mean last-epoch training loss."""
    runs = load(out)
    lines = []
    for obj in sorted({k[1] for k in runs}):
        codes = sorted({k[0] for k in runs if k[1] == obj}, key=lambda v: (v != "seed", v))
        seeds = sorted({k[3] for k in runs if k[1] == obj})
        classes = sorted({k[2] for k in runs if k[1] == obj})
        cols = [(code, s) for code in codes for s in seeds if any(k[0] == code and k[1] == obj and k[3] == s
                                                                  for k in runs)]
        lines += [f"\n{obj.upper()} (AUC %, {runs[next(k for k in runs if k[1] == obj)]['epochs']} epochs)",
                  "| class | " + " | ".join(f"{code} s{s}" for code, s in cols) + " |",
                  "|---" * (len(cols) + 1) + "|"]
        for c in classes:
            cells = [f"{100 * runs[(code, obj, c, s)]['auc']:.1f}" if (code, obj, c, s) in runs else "–"
                     for code, s in cols]
            lines.append(f"| {c} | " + " | ".join(cells) + " |")
        for code in codes:
            have = [k for k in runs if k[0] == code and k[1] == obj]
            loss = [runs[k]["losses"][-1] for k in have if runs[k].get("losses")]
            tail = f"mean last-epoch loss {sum(loss) / len(loss):.4f} over {len(loss)} runs" if loss else ""
            if code == "seed":
                lines.append(f"- seed's code: {len(have)} runs; {tail}")
                continue
            pairs = [(c, s) for (cd, o, c, s) in have if ("seed", obj, c, s) in runs]
            diffs = [100 * (runs[(code, obj, c, s)]["auc"] - runs[("seed", obj, c, s)]["auc"]) for c, s in pairs]
            lines.append(f"- {code} − seed's code: {paired(diffs)}; {tail}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--seed-src", type=Path, help="the seed repository's src/ folder (holds main.py)")
    ap.add_argument("--data", type=Path, help="parity data (cifar-10-batches-py, cifar-100-python)")
    ap.add_argument("--out", type=Path, required=True, help="results folder (resumable)")
    ap.add_argument("--classes", default="0-9")
    ap.add_argument("--seeds", default="1,2")
    ap.add_argument("--objectives", default="hsc,bce")
    ap.add_argument("--codes", default="seed,adcore")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--jobs", type=int, default=1, help="runs at once (each one process)")
    ap.add_argument("--threads", type=int, default=1, help="threads per run")
    ap.add_argument("--adcore-args", default="", help="extra arguments for `adcore run` (a variant)")
    ap.add_argument("--tag", default="", help="name of the adcore variant: results in OUT/adcore-TAG/")
    ap.add_argument("--table", action="store_true", help="print the table of OUT and run nothing")
    a = ap.parse_args(argv)
    codes = a.codes.split(",")
    if not a.table:
        bad = [c for c in codes if c not in ("seed", "adcore")]
        if bad:
            ap.error(f"--codes {','.join(bad)}: choose seed and/or adcore")
        if "seed" in codes and not (a.seed_src and (a.seed_src / "main.py").is_file()):
            ap.error(f"--seed-src {a.seed_src}: no main.py there (the seed repository's src/ folder)")
        if not (a.data and (a.data / "cifar-10-batches-py").is_dir() and (a.data / "cifar-100-python").is_dir()):
            ap.error(f"--data {a.data}: needs cifar-10-batches-py/ and cifar-100-python/ "
                     "(make them with make_parity_data.py)")
        todo = [(code, obj, c, s) for s in ranges(a.seeds) for obj in a.objectives.split(",")
                for c in ranges(a.classes) for code in codes]
        with ThreadPoolExecutor(max(1, a.jobs)) as pool:
            for line in pool.map(lambda job: one(a, *job), todo):
                print(line, flush=True)
    print(table(a.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
