"""adcore.oe: nested subsets, every OE source on tiny files written here, conversions, errors."""
from __future__ import annotations

import gzip
import pickle
import struct

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from adcore import data, oe


def write_idx(path, arr: np.ndarray) -> None:
    header = bytes([0, 0, 8, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    path.write_bytes(gzip.compress(header + arr.astype(np.uint8).tobytes()))


@pytest.fixture(autouse=True)
def isolated(monkeypatch, tmp_path):
    monkeypatch.setenv("ADCORE_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("ADCORE_DATA", raising=False)


def assert_nested(sample, sizes, seed=0):
    """sample(n) is a prefix of sample(max n); same seed -> same result; another seed -> another result."""
    full = sample(max(sizes), seed)
    for n in sizes:
        assert torch.equal(torch.as_tensor(sample(n, seed)), torch.as_tensor(full[:n]))
    assert torch.equal(torch.as_tensor(sample(max(sizes), seed)), torch.as_tensor(full))
    assert not torch.equal(torch.as_tensor(sample(max(sizes), seed + 1)), torch.as_tensor(full))


def items(ds) -> torch.Tensor:
    return torch.stack([ds[i] for i in range(len(ds))])


# -------------------------------------------------------------------------------------------- nested_indices


@pytest.mark.parametrize("N", [1, 2, 7, 1000])
def test_nested_indices_prefix_and_permutation(N):
    full = oe.nested_indices(N, N, seed=3)
    assert sorted(full.tolist()) == list(range(N))
    for n in {1, N // 3 or 1, N // 2 or 1, N}:
        assert np.array_equal(oe.nested_indices(N, n, seed=3), full[:n])


def test_nested_indices_seeds_differ():
    assert not np.array_equal(oe.nested_indices(1000, 50, 0), oe.nested_indices(1000, 50, 1))
    assert np.array_equal(oe.nested_indices(1000, 50, 0), oe.nested_indices(1000, 50, 0))


@pytest.mark.parametrize("N", [2, 5, 1000, 4097])
def test_keyed_bijection_for_large_pools(monkeypatch, N):
    monkeypatch.setattr(oe, "_PERMUTE_MAX", 0)  # the path used above 2**24, on pools small enough to check fully
    full = oe.nested_indices(N, N, seed=5)
    assert sorted(full.tolist()) == list(range(N))
    for n in (1, N // 2 or 1, N - 1 or 1):
        assert np.array_equal(oe.nested_indices(N, n, seed=5), full[:n])
    assert not np.array_equal(oe.nested_indices(N, N, seed=6), full) or N == 2


def test_keyed_bijection_real_size():
    N = oe.TINY_IMAGES_RECORDS
    idx = oe.nested_indices(N, 20000, seed=0)
    assert np.array_equal(oe.nested_indices(N, 5000, seed=0), idx[:5000])
    assert len(np.unique(idx)) == 20000 and 0 <= idx.min() and idx.max() < N
    assert abs(idx.mean() / N - 0.5) < 0.01  # roughly uniform


@pytest.mark.parametrize("n", [0, -1, 11])
def test_nested_indices_range(n):
    with pytest.raises(ValueError, match="1..10"):
        oe.nested_indices(10, n, 0)


# ------------------------------------------------------------------------------------------- natural, noise


@pytest.mark.parametrize("shape", [(3, 32, 32), (1, 28, 28), (3, 24, 40)])
def test_natural_crops(shape):
    src = oe.make_oe("natural", shape)
    assert src.size == oe.NATURAL_SIZE
    x = src.sample(24, seed=0)
    assert x.dtype == torch.uint8 and x.shape == (24, *shape)
    assert x.float().std(dim=(1, 2, 3)).min() > 0  # no blank crops
    if shape[0] == 3:
        assert (x[:, 0] != x[:, 1]).any()  # colour photos
    assert_nested(src.sample, [1, 5, 24])


def test_natural_crop_is_pure_function_of_index():
    src = oe.NaturalCrops((3, 32, 32))
    idx = oe.nested_indices(src.size, 4, seed=9)
    assert torch.equal(src.sample(4, seed=9), torch.from_numpy(np.stack([src.crop(int(i)) for i in idx])))


@pytest.mark.parametrize("dist", ["uniform", "gaussian"])
def test_noise(dist):
    src = oe.make_oe("noise", (1, 28, 28), dist=dist)
    x = src.sample(300, seed=0)
    assert x.dtype == torch.uint8 and x.shape == (300, 1, 28, 28)
    assert abs(x.float().mean().item() - 127.5) < 2
    assert_nested(src.sample, [1, 256, 257, 300])


def test_noise_bad_dist():
    with pytest.raises(ValueError, match="gaussian"):
        oe.make_oe("noise", (3, 32, 32), dist="pink")


# ----------------------------------------------------------------------------------------- labelled datasets


def write_cifar100(root):
    """Two images per class; image of class c is filled with (c, 2c, 255 - c) so its class is readable."""
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    y = np.repeat(np.arange(100), 2)
    x = np.stack([np.broadcast_to(np.array([c, 2 * c, 255 - c], np.uint8)[:, None, None], (3, 32, 32)) for c in y])
    for split in ("train", "test"):
        with open(folder / split, "wb") as f:
            pickle.dump({"data": x.reshape(len(y), -1), "fine_labels": y.tolist()}, f)
    with open(folder / "meta", "wb") as f:
        pickle.dump({"fine_label_names": [f"c{i}" for i in range(100)]}, f)


def test_cifar100_all_classes(tmp_path):
    write_cifar100(tmp_path)
    src = oe.make_oe("cifar100", (3, 32, 32), root=tmp_path, download=False)
    assert src.size == 200
    x = src.sample(200, seed=0)
    assert sorted(x[:, 0, 0, 0].tolist()) == sorted(np.repeat(np.arange(100), 2).tolist())  # each image once
    assert_nested(src.sample, [1, 3, 100, 200])


def test_cifar100_class_subset_grey_resized(tmp_path):
    write_cifar100(tmp_path)
    src = oe.make_oe("cifar100", (1, 28, 28), root=tmp_path, download=False, classes=3)
    assert src.size == 6
    chosen = src.classes_for(seed=4)
    x = src.sample(6, seed=4)
    assert x.shape == (6, 1, 28, 28) and x.dtype == torch.uint8
    luma = {round(0.299 * c + 0.587 * 2 * c + 0.114 * (255 - c)) for c in chosen}
    assert set(x[:, 0, 14, 14].tolist()) == luma  # only the chosen classes, grey by ITU-R 601 luma
    assert set(src.classes_for(seed=4)) <= set(oe.make_oe("cifar100", (1, 28, 28), root=tmp_path, download=False,
                                                          classes=5).classes_for(seed=4))  # nested in k
    assert_nested(src.sample, [1, 2, 6], seed=4)
    with pytest.raises(ValueError, match="1..100"):
        oe.make_oe("cifar100", (3, 32, 32), root=tmp_path, download=False, classes=101)


def test_emnist_letters_class_subset(tmp_path):
    y = np.arange(26 * 3) % 26 + 1
    x = np.stack([np.full((28, 28), v, np.uint8) for v in y])
    write_idx(tmp_path / "emnist-letters-train-images-idx3-ubyte.gz", x)
    write_idx(tmp_path / "emnist-letters-train-labels-idx1-ubyte.gz", y)
    src = oe.make_oe("emnist-letters", (3, 32, 32), root=tmp_path, download=False, classes=2)
    assert src.size == 6
    out = src.sample(6, seed=1)
    assert out.shape == (6, 3, 32, 32)
    assert set(out[:, 1, 5, 5].tolist()) == {c + 1 for c in src.classes_for(seed=1)}  # grey -> RGB copies


def test_missing_labelled_source(tmp_path):
    with pytest.raises(data.DataNotFoundError):
        oe.make_oe("cifar100", (3, 32, 32), root=tmp_path, download=False)


# ------------------------------------------------------------------------------------------------ tinyimages


def tiny_records(n: int) -> np.ndarray:
    """n distinct HWC images; pixel (i, j, c) of record r is (r + 3 i + 5 j + 7 c) mod 256."""
    i, j, c = np.meshgrid(np.arange(32), np.arange(32), np.arange(3), indexing="ij")
    return np.stack([(r + 3 * i + 5 * j + 7 * c) % 256 for r in range(n)]).astype(np.uint8)


def write_tiny_bin(path, records: np.ndarray) -> None:
    path.write_bytes(b"".join(r.flatten(order="F").tobytes() for r in records))  # column-major, as MATLAB wrote it


def test_tinyimages_bin_column_major(tmp_path):
    recs = tiny_records(10)
    write_tiny_bin(tmp_path / "tiny_images.bin", recs)
    with pytest.warns(UserWarning, match="80mn_cifar_idxs"):
        src = oe.make_oe("tinyimages", (3, 32, 32), root=tmp_path)
    assert src.size == 10
    ds = src.sample(10, seed=0)
    order = oe.nested_indices(10, 10, seed=0)
    assert torch.equal(items(ds), torch.from_numpy(recs[order].transpose(0, 3, 1, 2).copy()))
    assert_nested(lambda n, s: items(src.sample(n, s)), [1, 4, 10])


def test_tinyimages_exclusion_list(tmp_path):
    recs = tiny_records(10)
    write_tiny_bin(tmp_path / "tiny_images.bin", recs)
    (tmp_path / "80mn_cifar_idxs.txt").write_text("2\n5\n5\n10\n")  # 1-based, duplicates allowed
    src = oe.make_oe("tinyimages", (1, 16, 16), root=tmp_path / "tiny_images.bin",
                     exclude=tmp_path / "80mn_cifar_idxs.txt")
    assert src.size == 7
    ds = src.sample(7, seed=2)
    assert sorted(ds.records(np.arange(7)).tolist()) == [0, 2, 3, 5, 6, 7, 8]
    assert items(ds).shape == (7, 1, 16, 16)
    assert_nested(lambda n, s: items(src.sample(n, s)), [1, 3, 7], seed=2)
    # by default the seed's list is used when it lies beside tiny_images.bin, and the source says so
    auto = oe.make_oe("tinyimages", (1, 16, 16), root=tmp_path)
    assert auto.size == 7 and "excluding the CIFAR images" in auto.note


def test_tinyimages_without_exclusion_list_warns(tmp_path):
    write_tiny_bin(tmp_path / "tiny_images.bin", tiny_records(4))
    with pytest.warns(UserWarning, match="80mn_cifar_idxs.txt.*lukasruff/Classification-AD"):
        src = oe.make_oe("tinyimages", (3, 32, 32), root=tmp_path)
    assert src.size == 4 and "may contain CIFAR-10" in src.note


def test_a_view_of_all_80m_tiny_images_builds_no_index(tmp_path):
    """The full file (a sparse file of 79,302,016 zero records here): the view of every record is a keyed
    bijection, computed per drawn position; nothing of the file's size is built or read up front."""
    path = tmp_path / "tiny_images.bin"
    with open(path, "wb") as f:
        f.truncate(oe.TINY_IMAGES_RECORDS * 3072)
    (tmp_path / "80mn_cifar_idxs.txt").write_text("1\n79302016\n")
    src = oe.make_oe("tinyimages", (3, 32, 32), root=tmp_path)
    assert src.size == oe.TINY_IMAGES_RECORDS - 2
    ds = src.sample(src.size, seed=0)
    assert len(ds) == src.size and ds.index.perm is None  # no 79M-entry array
    recs = ds.records(np.array([0, 1, src.size - 1]))
    assert len(set(recs.tolist())) == 3 and 0 not in recs and oe.TINY_IMAGES_RECORDS - 1 not in recs
    assert ds.fetch([0, 5]).shape == (2, 3, 32, 32)
    # nested: the first positions of a smaller subset are the same records
    assert np.array_equal(src.sample(10, seed=0).records(np.arange(3)), ds.records(np.arange(3)))


def test_tinyimages_dataset_pickles_without_data(tmp_path):
    write_tiny_bin(tmp_path / "tiny_images.bin", tiny_records(40))
    ds = oe.make_oe("tinyimages", (3, 32, 32), root=tmp_path).sample(40, seed=0)
    first = ds[0]
    assert len(pickle.dumps(ds)) < 4000  # the memmap is reopened in each worker, never copied
    assert torch.equal(pickle.loads(pickle.dumps(ds))[0], first)
    batch = next(iter(DataLoader(ds, batch_size=8)))
    assert batch.shape == (8, 3, 32, 32) and batch.dtype == torch.uint8


def test_300k_random_images_npy(tmp_path):
    recs = tiny_records(6)
    np.save(tmp_path / "300K_random_images.npy", recs)
    src = oe.make_oe("tinyimages", (3, 32, 32), root=tmp_path)
    assert src.size == 6
    ds = src.sample(6, seed=1)
    assert torch.equal(items(ds), torch.from_numpy(recs[oe.nested_indices(6, 6, 1)].transpose(0, 3, 1, 2).copy()))
    with pytest.raises(ValueError, match="exclude"):
        oe.make_oe("tinyimages", (3, 32, 32), root=tmp_path, exclude=tmp_path / "x.txt")


def test_tinyimages_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="withdrawn"):
        oe.make_oe("tinyimages", (3, 32, 32), root=tmp_path)
    (tmp_path / "tiny_images.bin").write_bytes(bytes(3072 * 2 + 100))
    with pytest.raises(ValueError, match="truncated"):
        oe.make_oe("tinyimages", (3, 32, 32), root=tmp_path)
    (tmp_path / "tiny_images.bin").write_bytes(bytes(3072 * 2))
    with pytest.raises(FileNotFoundError, match="missing.txt"):
        oe.make_oe("tinyimages", (3, 32, 32), root=tmp_path, exclude=tmp_path / "missing.txt")
    (tmp_path / "idx.txt").write_text("3\n")
    with pytest.raises(ValueError, match="1..2"):
        oe.make_oe("tinyimages", (3, 32, 32), root=tmp_path, exclude=tmp_path / "idx.txt")


# ----------------------------------------------------------------------------------------------- imagenet22k


def write_imagenet(root) -> None:
    """Classes n0, n1 (kept) and n2 (excluded); images of class k are filled with 100 k, sizes vary."""
    for k in range(3):
        (root / f"n{k}").mkdir(parents=True)
        for i in range(4):
            Image.new("RGB", (40 + 10 * i, 30 + 7 * i), (100 * k,) * 3).save(root / f"n{k}" / f"{i}.png")
    (root / "n0" / "notes.txt").write_text("not an image")


def test_imagenet22k_stream(tmp_path):
    write_imagenet(tmp_path)
    src = oe.make_oe("imagenet22k", (3, 24, 24), root=tmp_path, exclude=["n2"])
    assert src.size == 8
    ds = src.sample(8, seed=0)
    x = items(ds)
    assert x.shape == (8, 3, 24, 24) and x.dtype == torch.uint8
    assert set(x[:, 0, 12, 12].tolist()) == {0, 100}  # class n2 (200) excluded
    assert_nested(lambda n, s: items(src.sample(n, s)), [1, 5, 8])
    assert len(oe.make_oe("imagenet22k", (1, 8, 8), root=tmp_path).sample(12, 0)) == 12  # default excludes wnids


def test_imagenet22k_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        oe.make_oe("imagenet22k", (3, 32, 32), root=tmp_path / "nowhere")
    (tmp_path / "only").mkdir()
    with pytest.raises(FileNotFoundError, match="no images"):
        oe.make_oe("imagenet22k", (3, 32, 32), root=tmp_path)


# ------------------------------------------------------------------------------------------ common behaviour


def test_unknown_source_and_bad_shape():
    with pytest.raises(ValueError, match="natural, cifar100"):
        oe.make_oe("svhn", (3, 32, 32))
    with pytest.raises(ValueError, match="C in"):
        oe.make_oe("natural", (2, 32, 32))


@pytest.mark.parametrize("name", ["natural", "noise"])
def test_sample_size_out_of_range(name):
    src = oe.make_oe(name, (1, 28, 28))
    for n in (0, src.size + 1):
        with pytest.raises(ValueError, match="out of range"):
            src.sample(n, seed=0)


def test_fit_grey_and_resize():
    rgb = torch.tensor([10, 200, 30], dtype=torch.uint8).view(1, 3, 1, 1).expand(2, 3, 32, 32)
    grey = oe.fit(rgb, (1, 28, 28))
    assert grey.shape == (2, 1, 28, 28) and grey.dtype == torch.uint8
    pil = Image.fromarray(rgb[0].permute(1, 2, 0).numpy().copy()).convert("L")
    assert abs(int(grey[0, 0, 0, 0]) - np.asarray(pil)[0, 0]) <= 1  # PIL's 'L' weights
    assert oe.fit(grey, (3, 64, 64)).shape == (2, 3, 64, 64)
