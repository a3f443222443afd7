"""ImageNet-30 and ImageNet-22K OE on tiny generated trees (30 classes of a few 64-300 px JPEGs, in the seed's layout
and the plain one): decoding as the seed's torchvision transforms, counts and labels, the memory-mapped cache
reused, the file index of the OE tree, the paper's blur grid at a small crop size through the runner, K-model
grouping, the paper profile's probe for the data."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from adcore import augment, chapters, data, experiment, oe, runner, train
from adcore import __main__ as cli
from adcore.chapters import rethinking
from adcore.experiment import RunConfig

SMALL = 36  # decoded size in these tests (the real one is 256); crops of 32 (the real one: 224)
N_TRAIN, N_TEST = 4, 2  # images per class
OE_WNIDS = [f"n0000000{i}" for i in range(6)]


@pytest.fixture(autouse=True)
def isolated(monkeypatch, tmp_path):
    monkeypatch.setenv("ADCORE_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("ADCORE_DATA", raising=False)
    monkeypatch.setattr(data, "IMAGENET30_SIZE", SMALL)
    monkeypatch.setattr(data, "DECODE_WORKERS", 1)
    monkeypatch.setitem(augment.RECIPES, "imagenet_small", augment.Augment(
        jitter=0.01, flip=True, crop=32, noise=0.001, mean=augment.IMAGENET_MEAN, std=augment.IMAGENET_STD))
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    clear()
    yield
    clear()
    torch.set_num_threads(n)


def clear() -> None:
    data._images.cache_clear()
    data._split.cache_clear()
    experiment._oe_pool.cache_clear()
    oe.folder_index.cache_clear()


def jpeg(path, rng, colour) -> None:
    w, h = (int(v) for v in rng.integers(64, 301, 2))
    px = np.clip(np.array(colour)[None, None] + rng.normal(0, 20, (h, w, 3)), 0, 255).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(px).save(path, quality=90)


def shares_memory(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.untyped_storage().data_ptr() == b.untyped_storage().data_ptr()


def colour(k: int) -> tuple[int, int, int]:
    return (8 * k, 255 - 8 * k, (97 * k) % 256)


@pytest.fixture(scope="module")
def trees(tmp_path_factory):
    """seed: <root>/imagenet1k/one_class_train|one_class_test/<class>/*.JPEG; plain: <root>/train|test/<class>/;
    OE: <root>/fall11_whole_extracted/<wnid>/ with 6 kept synsets of 12 images and ImageNet-30's stingray."""
    base = tmp_path_factory.mktemp("inet")
    rng = np.random.default_rng(0)
    layouts = (("seed", ("imagenet1k/one_class_train", "imagenet1k/one_class_test")), ("plain", ("train", "test")))
    for layout, dirs in layouts:
        for d, n in zip(dirs, (N_TRAIN, N_TEST)):
            for k, name in enumerate(data.IMAGENET30_CLASSES):
                for i in range(n):
                    jpeg(base / layout / d / name / f"{name}_{i}.JPEG", rng, colour(k))
    (base / "seed" / "imagenet1k" / "one_class_train" / "acorn" / "README.txt").write_text("not an image")
    tree = base / "oe" / oe.IMAGENET22K_DIR
    for j, wnid in enumerate([*OE_WNIDS, "n01498041"]):
        for i in range(12):
            jpeg(tree / wnid / f"{wnid}_{i}.JPEG", rng, (40 * j % 256, 128, 200))
    return {"seed": base / "seed", "plain": base / "plain", "oe": base / "oe"}


def test_decoding_is_the_seeds_resize_and_centre_crop():
    from torchvision import transforms as T

    rng = np.random.default_rng(1)
    for w, h in [(300, 200), (201, 257), (64, 300), (500, 375)]:
        img = Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
        square = np.array(data.resize_center(img, 256))
        assert np.array_equal(square, np.asarray(T.CenterCrop(256)(T.Resize(256)(img))))
        # the test image: CenterCrop(224) of the square is the seed's Resize(256) + CenterCrop(224)
        test = augment.center_crop(torch.from_numpy(square).permute(2, 0, 1), 224).permute(1, 2, 0).numpy()
        assert np.array_equal(test, np.asarray(T.CenterCrop(224)(T.Resize(256)(img))))


@pytest.mark.parametrize("layout", ["seed", "plain"])
def test_both_layouts_counts_labels_and_classes(trees, layout):
    for split, n in (("train", N_TRAIN), ("test", N_TEST)):
        s = data.load_images("imagenet30", split, root=trees[layout], download=False)
        assert s.x.shape == (30 * n, 3, SMALL, SMALL) and s.x.dtype == torch.uint8
        assert s.y.tolist() == [k for k in range(30) for _ in range(n)]
        assert s.classes == list(data.IMAGENET30_CLASSES) and s.source == str(trees[layout])
        # class k's images carry its colour (green falls with k): labels and pixels belong together
        green = s.x[:, 1].float().mean((1, 2)).view(30, n).mean(1)
        assert (green.diff() < 0).all()
    assert data.find_imagenet30(trees[layout]) == trees[layout]


def test_cache_is_memory_mapped_and_reused(trees, monkeypatch):
    first = data.load_images("imagenet30", "train", root=trees["seed"], download=False)
    data.load_images("imagenet30", "test", root=trees["seed"], download=False)
    cached = list((data.cache_dir() / "decoded").glob("imagenet30-train-*/x.npy"))
    assert len(cached) == 1 and cached[0].stat().st_size >= first.x.numel()

    def no_decoding(*a, **k):
        raise AssertionError("decoded again")

    monkeypatch.setattr(data, "decode_resized", no_decoding)
    again = data.load_images("imagenet30", "train", root=trees["seed"], download=False)
    assert torch.equal(again.x, first.x)
    # a one-vs-rest split takes the class as a view of the memory-mapped array: nothing copied yet
    split = data.ad_split("imagenet30", 3, root=trees["seed"], download=False)
    assert len(split.train_x) == N_TRAIN and split.train_classes.tolist() == [3] * N_TRAIN
    assert shares_memory(split.train_x, data.cached_images("imagenet30", "train", trees["seed"], False).x)
    assert int(split.test_y.sum()) == 29 * N_TEST and split.test_y[3 * N_TEST:4 * N_TEST].sum() == 0


def test_a_changed_tree_rebuilds_the_cache(trees, tmp_path):
    import shutil

    root = tmp_path / "copy"
    shutil.copytree(trees["plain"], root)
    before = data.load_images("imagenet30", "test", root=root, download=False)
    jpeg(root / "test" / "volcano" / "extra.JPEG", np.random.default_rng(5), colour(29))
    after = data.load_images("imagenet30", "test", root=root, download=False)
    assert len(after.y) == len(before.y) + 1 and after.y[-1] == 29
    assert len(list((data.cache_dir() / "decoded").glob("imagenet30-test-*"))) == 2


def test_bad_trees_fail_clearly(tmp_path):
    with pytest.raises(data.DataNotFoundError, match="ss-ood"):
        data.load_images("imagenet30", "train", root=tmp_path, download=False)
    for name in data.IMAGENET30_CLASSES[:29]:
        (tmp_path / "imagenet1k" / "one_class_train" / name).mkdir(parents=True)
    (tmp_path / "imagenet1k" / "one_class_train" / "zebra").mkdir()
    with pytest.raises(ValueError, match="missing: volcano; unexpected: zebra"):
        data.load_images("imagenet30", "train", root=tmp_path, download=False)
    train_dir = tmp_path / "imagenet1k" / "one_class_train"
    (train_dir / "zebra").rename(train_dir / "volcano")
    with pytest.raises(ValueError, match="acorn: no images"):
        data.load_images("imagenet30", "train", root=tmp_path, download=False)
    # plain train/ folders of another dataset are not ImageNet-30: not found rather than an error
    other = tmp_path / "other"
    for c in ("cat", "dog"):
        (other / "train" / c).mkdir(parents=True)
    with pytest.raises(data.DataNotFoundError):
        data.load_images("imagenet30", "train", root=other, download=False)
    assert data.find_imagenet30(other) is None


def test_imagenet22k_seed_layout_index_and_exclusion(trees, monkeypatch):
    src = oe.make_oe("imagenet22k", (3, SMALL, SMALL), root=trees["oe"])
    assert src.size == 6 * 12  # ImageNet-30's stingray (n01498041) is left out
    index = src.index
    assert index.folder == trees["oe"] / oe.IMAGENET22K_DIR and len(index) == 7 * 12
    files = [src.file(k) for k in range(src.size)]
    assert files == sorted(files) and not any("n01498041" in f for f in files)  # ImageFolder's order
    ds = src.sample(64, seed=3)
    x = torch.stack([ds[i] for i in range(len(ds))])
    assert x.shape == (64, 3, SMALL, SMALL) and x.dtype == torch.uint8
    sub = src.sample(16, seed=3)
    assert [sub.files[i] for i in range(16)] == [ds.files[i] for i in range(16)]  # nested subsets
    # the index is read from the cache by the next process (here: after clearing the per-process cache)
    oe.folder_index.cache_clear()
    monkeypatch.setattr(oe.FolderIndex, "_build", lambda self, progress: pytest.fail("listed the tree again"))
    assert oe.make_oe("imagenet22k", (3, SMALL, SMALL), root=trees["oe"]).file(5) == files[5]


def small(cfg: RunConfig, trees, **kw) -> RunConfig:
    return cfg.replace(augment="imagenet_small", data_root=str(trees["seed"]), oe_root=str(trees["oe"]), **kw)


def test_the_paper_blur_grid_runs_at_a_small_crop_through_the_runner(trees, tmp_path):
    paper = chapters.grid("imagenet30_blur", "paper")
    assert {(c.dataset, c.net, c.oe, c.oe_size, c.augment) for c in paper} == {
        ("imagenet30", "resnet18_cbam", "imagenet22k", 64, None)}  # None: the seed's 224-px recipe (below)
    configs = [small(c, trees) for c in chapters.grid("imagenet30_blur", "smoke")]
    assert {(c.objective, c.blur, c.epochs) for c in configs} == {("hsc", 2.0, 1), ("bce", 2.0, 1)}
    result = runner.execute(configs, tmp_path, progress=False, retries=0)
    assert not result.failures and result.ran == 2
    df = result.frame
    assert set(df["n_oe"]) == {64} and set(df["n_train"]) == {N_TRAIN} and set(df["n_test"]) == {30 * N_TEST}
    assert df["auc"].between(0, 1).all() and np.isfinite(df["final_loss"]).all()
    assert set(df["data_source"]) == {str(trees["seed"])}


def test_k_models_of_a_small_oe_subset_train_together_as_they_would_alone(trees):
    base = small(RunConfig(dataset="imagenet30", net="resnet18_cbam", objective="hsc", oe="imagenet22k", oe_size=64,
                           epochs=1, batch_size=N_TRAIN), trees)
    configs = [base.replace(blur=1.0), base.replace(blur=2.0, seed=1)]
    assert configs[0].group_key() == configs[1].group_key() is not None
    assert [len(j) for j in runner.plan(configs, 10)] == [2]
    assert base.replace(oe_size=None).group_key() is None  # the whole streamed source trains alone
    grouped = {}
    RunConfig.run_group(configs, device="cpu", on_record=lambda c, r: grouped.setdefault(c, r))
    for cfg in configs:
        alone = cfg.run(device="cpu", progress=False)
        assert grouped[cfg]["auc"] == alone["auc"] and grouped[cfg]["losses"] == alone["losses"]
        assert grouped[cfg]["models_in_step"] == 2


def test_the_default_path_is_the_seeds_224_pixels(trees, monkeypatch):
    monkeypatch.setattr(data, "IMAGENET30_SIZE", 256)
    p = experiment.prepare(RunConfig(dataset="imagenet30", normal_class=0, oe=None, data_root=str(trees["plain"])),
                           "cpu")
    assert tuple(p.train_x.shape[1:]) == (3, 256, 256) and p.augment == "imagenet"
    recipe = augment.make_augment(p.augment)
    assert recipe.crop == 224 and recipe.mean == augment.IMAGENET_MEAN
    assert recipe(p.train_x[:2]).shape == (2, 3, 224, 224) and recipe(p.test_x[:2], train=False).shape[-1] == 224
    assert shares_memory(p.test_x, data.cached_images("imagenet30", "test", str(trees["plain"])).x)  # not copied
    assert train.eval_batch_size(p.test_x) == 85  # scored 85 images at a time, not 1024
    scores = train.score(p.net, p.objective, p.test_x[:3], p.augment, "cpu")
    assert scores.shape == (3,) and np.isfinite(scores).all()


def test_the_paper_profile_runs_imagenet30_when_its_data_are_found(trees, monkeypatch, tmp_path):
    found = dict(data_root=str(trees["seed"]), oe_root=str(trees["oe"]))
    for nb, cifar, inet in (("imagenet_blurring", "cifar10_blur", "imagenet30_blur"),
                            ("oe_size_curves", "cifar10_oe_sizes", "imagenet30_oe_sizes")):
        s = chapters.open(nb, "paper").settings
        assert s.run.dataset == "cifar10" and "ImageNet-30 and ImageNet-22K not found" in s.data_choice
        ch = chapters.open(nb, "paper", **found)
        s = ch.settings
        assert s.run.dataset == "imagenet30" and s.run.net == "resnet18_cbam" and "found in" in s.data_choice
        assert {c for _, c in ch.runs} >= set(chapters.grid(inet, "paper", **found))
        assert chapters.open(nb, "paper", dataset="imagenet30").settings.run.net == "resnet18_cbam"
        assert chapters.open(nb, "laptop", **found).settings.run.dataset == "cifar10"  # only the paper profile switches
    # ImageNet-30 without ImageNet-22K is not enough
    s = chapters.chapter("imagenet_blurring").profile("paper", data_root=str(trees["seed"]), oe_root=str(tmp_path / "x"))
    assert s.run.dataset == "cifar10" and "ImageNet-22K not found" in s.data_choice
    blur = [c for _, c in chapters.open("imagenet_blurring", "paper", **found).runs]
    assert sorted({c.blur for c in blur}) == [0, 1, 2, 4, 8, 16, 32]  # blur 0: the OE-size grid's 64 point
    # $ADCORE_DATA holding both is found as well
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "imagenet1k").symlink_to(trees["seed"] / "imagenet1k")
    (tmp_path / "d" / "imagenet22k").symlink_to(trees["oe"])
    monkeypatch.setenv("ADCORE_DATA", str(tmp_path / "d"))
    assert chapters.open("imagenet_blurring", "paper").settings.run.dataset == "imagenet30"
    df = __import__("pandas").DataFrame({"data": ["ImageNet-30"]})
    assert rethinking.data_sentence(s, df).startswith("This build used ImageNet-30: ImageNet-22K not found")


def test_the_sweep_lists_1800_validated_runs(capsys, tmp_path):
    assert cli.main(["sweep", "imagenet30_blur", "--profile", "paper", "--dry-run", "--results", str(tmp_path)]) == 0
    assert "imagenet30_blur (profile paper): 1800 runs" in capsys.readouterr().out
    configs = chapters.grid("imagenet30_blur", "paper")
    assert len(configs) == 1800 and all(isinstance(c, RunConfig) and c.dataset == "imagenet30" for c in configs)
    assert sorted({c.blur for c in configs}) == [1, 2, 4, 8, 16, 32]


@pytest.mark.slow
def test_the_bench_script_runs_at_smoke_size(tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    out = tmp_path / "results.md"
    subprocess.run([sys.executable, str(root / "bench" / "imagenet30.py"), "--smoke", "--results", str(out)],
                   check=True, cwd=tmp_path, timeout=900, env={**os.environ, "PYTHONPATH": str(root)})
    text = out.read_text()
    assert "(smoke)" in text and text.count("| on |") >= 2 and "memory-mapped cache" in text
