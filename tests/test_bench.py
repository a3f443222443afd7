"""bench/gpu.py --smoke: the GPU benchmark's code, run on a CPU at tiny sizes, so that it never rots between the
rare runs on a GPU. Its figures are not asserted (no timing asserts); its checks and its bookkeeping are."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_gpu_bench_smoke_runs_every_section_and_its_checks_pass(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "gpu.py"), "--smoke", "--out", str(tmp_path)],
                          capture_output=True, text=True, env=env, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    res = json.loads((tmp_path / "gpu_results.json").read_text())
    assert {"meta", "sizes", "correctness", "launches", "throughput", "slice", "projection", "elapsed_s"} <= set(res)
    meta = res["meta"]
    assert meta["smoke"] is True and meta["device"] == "cpu" and meta["torch"] and meta["date"]

    corr = res["correctness"]
    assert set(corr) == {"device_vs_cpu_auc", "vmap_vs_loop", "batchnorm_per_model"}
    assert all(c["passed"] is True for c in corr.values()), corr
    assert corr["batchnorm_per_model"]["statistics"] == 6 and corr["batchnorm_per_model"]["differ_between_models"]

    # the K-model step costs fewer dispatched ops per model than K lone steps (counts, not times)
    per_model = {(r["k"], r["mode"]): r["per_step_per_model"] for r in res["launches"]}
    assert per_model[(2, "vmap")] < per_model[(2, "loop")]

    rows = res["throughput"]
    assert rows and all("error" not in r and "skipped" not in r for r in rows), rows
    assert all(r["images_per_s"] > 0 and r["est_mb_per_model"] > 0 for r in rows)
    kinds = {(r["k"], r["mode"], r["channels_last"], r["fused"], r["cudnn_benchmark"], r["procs"]) for r in rows}
    assert {(1, "loop", False, True, False, 1), (2, "vmap", False, True, False, 1), (2, "vmap", True, True, False, 1),
            (2, "vmap", False, False, False, 1), (2, "loop", False, True, False, 1)} <= kinds
    assert any(r["procs"] == 2 for r in rows)  # the several-process figure: worker processes ran and reported

    sl = res["slice"]
    assert sl["configs"] == 8 and sl["ran"] == 8 and sl["failed"] == 0, sl
    assert sl["models_in_step"] == [4]  # two heads -> two jobs of four (CPU group size 10)
    assert set(sl["auc_by_objective"]) == {"deepsad", "hsc", "focal", "bce"}
    assert sl["train_s_per_run_epoch"] > 0 and sl["test_s_per_run"] >= 0

    proj = res["projection"]
    assert proj["target_s"] == 1800 and {"from_slice", "best_fp32"} <= set(proj)
    assert proj["from_slice"]["oe_grid_s"] == pytest.approx(11 * proj["from_slice"]["table_s"])

    md = (tmp_path / "RESULTS.md").read_text()
    assert md.startswith("# bench/gpu.py results") and "smoke run" in md
    for heading in ("Correctness on the device", "Training throughput", "A slice of the CIFAR-10 table", "Projection"):
        assert heading in md


def test_budget_bench_grid():
    """bench/budget.py: per class and seed, HSC without OE once and each OE method at every OE size, all at the
    candidate budget (so its effects and spread compare like with like)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("budget", Path(__file__).resolve().parents[1] / "bench" / "budget.py")
    budget = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(budget)
    runs = budget.runs(256, 4, 32, classes=[1, 3], seeds=3, sizes=[4, 4096], n_test=500)
    assert len(runs) == 2 * 3 * (1 + 2 * 2)
    assert {(c.n_train, c.epochs, c.batch_size, c.n_test) for _, c in runs} == {(256, 4, 32, 500)}
    no_oe = [c for lab, c in runs if lab["method"] == "HSC (no OE)"]
    assert len(no_oe) == 6 and all(c.oe is None and c.objective == "hsc" for c in no_oe)
    assert {(lab["method"], c.oe_size) for lab, c in runs if c.oe} == \
        {(m, n) for m in ("HSC + OE", "BCE + OE") for n in (4, 4096)}


def test_geo_bench_runs_the_tables_geo_configurations():
    """bench/geo.py: GEO-8 exactly as the laptop table runs it (so a laptop store is read back), and the full 72
    transformations with every other setting the same."""
    import importlib.util

    from adcore import chapters

    spec = importlib.util.spec_from_file_location("geo_bench", Path(__file__).resolve().parents[1] / "bench" / "geo.py")
    geo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(geo)
    got = geo.runs([1, 3], 1)
    table = {c for lab, c in chapters.open("cifar10_table", "laptop").runs if lab["method"] == "GEO-8 (no OE)"}
    assert [lab["method"] for lab, _ in got] == ["GEO-8 (no OE)", "GEO (no OE)"] * 2
    eight, full = [c for _, c in got[::2]], [c for _, c in got[1::2]]
    assert set(eight) <= table and [c.normal_class for c in eight] == [1, 3]
    assert [c.replace(objective="geo8", epochs=1) for c in full] == eight and {c.epochs for c in full} == {1}


def test_clad_bench_pairs_the_laptop_stages_with_the_seeds():
    """bench/clad_seed.py: per seed, the laptop profile's CLAD run exactly (so a laptop store is read back) and the
    seed's stage budgets, on the same images; only the stages' settings differ."""
    import dataclasses
    import importlib.util

    from adcore import chapters

    spec = importlib.util.spec_from_file_location("clad_bench", Path(__file__).resolve().parents[1] / "bench" /
                                                  "clad_seed.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    got = bench.runs("SHOE", 2, 1500, 8)
    laptop = {c for lab, c in chapters.open("clad", "laptop").runs if lab["method"] == "CLAD"}
    assert [lab["setting"] for lab, _ in got] == ["laptop", "seed's stages"] * 2
    lap, seed = [c for _, c in got[::2]], [c for _, c in got[1::2]]
    assert lap[0] in laptop and lap[1] == lap[0].replace(seed=1) and lap[0].normal_class == (5, 7, 9)
    assert {(c.ae_epochs, c.dec_max_rounds, c.clf_epochs, c.clf_lr, c.clf_width) for c in seed} == {
        (100, 100, 100, 1e-4, 8)}
    stages = ("ae_epochs", "dec_max_rounds", "clf_epochs", "clf_lr")
    assert [dataclasses.replace(s, **{k: getattr(a, k) for k in stages}) for s, a in zip(seed, lap)] == lap
