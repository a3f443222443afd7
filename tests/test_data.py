"""adcore.data: native-format readers on tiny files written here, lookup order, errors, AD splits."""
from __future__ import annotations

import gzip
import pickle
import struct
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from adcore import data


@pytest.fixture(autouse=True)
def isolated(monkeypatch, tmp_path):
    """No real data, cache or network: every lookup sees only what a test writes."""
    monkeypatch.setenv("ADCORE_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("ADCORE_DATA", raising=False)
    monkeypatch.setattr(data, "FMNIST_SYSTEM_DIR", tmp_path / "no-system-copy")
    monkeypatch.setattr(data, "_REPO_ROOT", tmp_path / "repo")
    monkeypatch.chdir(tmp_path)

    def offline(*args):
        raise RuntimeError("offline in tests")

    monkeypatch.setattr(data, "_torchvision_download", offline)


def write_idx(path: Path, arr: np.ndarray) -> None:
    raw = bytes([0, 0, 8, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape) + arr.astype(np.uint8).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(raw) if path.suffix == ".gz" else raw)


def mnist_like(n: int, n_classes: int = 10, seed: int = 0, hw: int = 28) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, hw, hw), dtype=np.uint8), np.arange(n) % n_classes


def write_mnist(root: Path, gz: bool = True, n: int = 30) -> dict:
    written = {}
    for split, prefix in (("train", "train"), ("test", "t10k")):
        x, y = mnist_like(n, seed=len(split))
        ext = ".gz" if gz else ""
        write_idx(root / f"{prefix}-images-idx3-ubyte{ext}", x)
        write_idx(root / f"{prefix}-labels-idx1-ubyte{ext}", y)
        written[split] = (x, y)
    return written


def test_idx_gz_layout(tmp_path):
    written = write_mnist(tmp_path / "m")
    for split in ("train", "test"):
        s = data.load_images("mnist", split, root=tmp_path / "m", download=False)
        x, y = written[split]
        assert s.x.dtype == torch.uint8 and s.x.shape == (30, 1, 28, 28)
        assert s.y.dtype == torch.int64
        assert np.array_equal(s.x[:, 0].numpy(), x) and np.array_equal(s.y.numpy(), y)
    assert s.classes == [str(i) for i in range(10)]


def test_idx_torchvision_raw_layout_via_env(tmp_path, monkeypatch):
    written = write_mnist(tmp_path / "store" / "fmnist" / "FashionMNIST" / "raw", gz=False)
    monkeypatch.setenv("ADCORE_DATA", str(tmp_path / "store"))  # found in $ADCORE_DATA/<name>
    s = data.load_images("fmnist", "test", download=False)
    assert np.array_equal(s.x[:, 0].numpy(), written["test"][0])
    assert s.classes[0] == "T-shirt/top" and len(s.classes) == 10


def test_emnist_letters_in_the_seeds_orientation_and_relabelled(tmp_path):
    rng = np.random.default_rng(0)
    upright = rng.integers(0, 256, (52, 28, 28), dtype=np.uint8)
    letters = np.arange(52) % 26 + 1  # EMNIST letters are labelled 1..26
    raw = tmp_path / "EMNIST" / "raw"
    for split in ("train", "test"):  # stored transposed, as in the EMNIST files
        write_idx(raw / f"emnist-letters-{split}-images-idx3-ubyte.gz", upright.transpose(0, 2, 1))
        write_idx(raw / f"emnist-letters-{split}-labels-idx1-ubyte.gz", letters)
    s = data.load_images("emnist-letters", "train", root=tmp_path, download=False)
    # as stored, i.e. as torchvision reads them and the Rethinking seed trains on them (not turned upright)
    assert np.array_equal(s.x[:, 0].numpy(), upright.transpose(0, 2, 1))
    assert np.array_equal(s.y.numpy(), letters - 1)
    assert s.classes[0] == "a" and len(s.classes) == 26


def test_truncated_gz_raises(tmp_path):
    write_mnist(tmp_path)
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-20])
    with pytest.raises(ValueError, match="train-images-idx3-ubyte.gz"):
        data.load_images("mnist", root=tmp_path, download=False)


def test_truncated_idx_raises(tmp_path):
    write_mnist(tmp_path, gz=False)
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-5])
    with pytest.raises(ValueError, match="header says"):
        data.load_images("mnist", root=tmp_path, download=False)


def test_not_idx_raises(tmp_path):
    write_mnist(tmp_path, gz=False)
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(b"<html>not found</html>")
    with pytest.raises(ValueError, match="not an unsigned-byte IDX"):
        data.load_images("mnist", "test", root=tmp_path, download=False)


def write_cifar(root: Path, name: str, n_train: int = 4, n_test: int = 3) -> dict:
    """CIFAR python batches; image i is filled with value i so order can be checked."""
    rng = np.random.default_rng(1)
    n_classes = 10 if name == "cifar10" else 100
    label_key = "labels" if name == "cifar10" else "fine_labels"
    folder = root / ("cifar-10-batches-py" if name == "cifar10" else "cifar-100-python")
    folder.mkdir(parents=True)
    batches = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"] if name == "cifar10" else ["train", "test"]
    written = {}
    for b in batches:
        n = n_test if "test" in b else n_train
        x = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
        y = rng.integers(0, n_classes, n).tolist()
        with open(folder / b, "wb") as f:
            pickle.dump({"data": x, label_key: y}, f)
        written[b] = (x.reshape(n, 3, 32, 32), y)
    meta, key = ("batches.meta", "label_names") if name == "cifar10" else ("meta", "fine_label_names")
    with open(folder / meta, "wb") as f:
        pickle.dump({key: [f"class{i}" for i in range(n_classes)]}, f)
    return written


def test_cifar10_pickle(tmp_path):
    written = write_cifar(tmp_path, "cifar10")
    train = data.load_images("cifar10", "train", root=tmp_path, download=False)
    assert train.x.shape == (20, 3, 32, 32) and train.x.dtype == torch.uint8
    expected = np.concatenate([written[f"data_batch_{i}"][0] for i in range(1, 6)])
    assert np.array_equal(train.x.numpy(), expected)
    test = data.load_images("cifar10", "test", root=tmp_path, download=False)
    assert test.y.tolist() == written["test_batch"][1] and test.classes[3] == "class3"


def test_cifar100_pickle_fine_labels(tmp_path):
    written = write_cifar(tmp_path, "cifar100")
    s = data.load_images("cifar100", "train", root=tmp_path / "cifar-100-python", download=False)
    assert np.array_equal(s.x.numpy(), written["train"][0]) and s.y.tolist() == written["train"][1]
    assert len(s.classes) == 100


def test_corrupt_pickle_raises(tmp_path):
    write_cifar(tmp_path, "cifar10")
    (tmp_path / "cifar-10-batches-py" / "test_batch").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="test_batch"):
        data.load_images("cifar10", "test", root=tmp_path, download=False)


def write_folder(root: Path, classes: list[str], per_class: int, mode: str, ext: str, size: int = 8) -> dict:
    """``root/<split>/<class>/<i>.<ext>``; returns the arrays written, in sorted (class, file) order."""
    rng = np.random.default_rng(2)
    written = {}
    for split in ("train", "test"):
        arrays = []
        for c in sorted(classes):
            (root / split / c).mkdir(parents=True)
            for i in range(per_class):
                shape = (size, size, 3) if mode == "RGB" else (size, size)
                arr = rng.integers(0, 256, shape, dtype=np.uint8)
                Image.fromarray(arr, mode).save(root / split / c / f"{i:04d}{ext}")
                arrays.append(arr)
        written[split] = np.stack(arrays)
    return written


def test_png_folder_grey_exact_and_cached(tmp_path, monkeypatch):
    classes = [str(i) for i in range(10)]
    written = write_folder(tmp_path / "f", classes, 2, "L", ".png", size=28)
    s = data.load_images("mnist", "train", root=tmp_path / "f", download=False)
    assert s.x.shape == (20, 1, 28, 28)
    assert np.array_equal(s.x[:, 0].numpy(), written["train"])
    assert s.y.tolist() == [i // 2 for i in range(20)] and s.classes == classes
    assert list((tmp_path / "cache" / "decoded").glob("*.npz"))

    def no_decoding(*args):
        raise AssertionError("decoded again instead of using the cache")

    monkeypatch.setattr(data, "_decode", no_decoding)
    again = data.load_images("mnist", "train", root=tmp_path / "f", download=False)
    assert torch.equal(again.x, s.x) and again.classes == classes


def test_jpg_folder_rgb_label_order(tmp_path):
    classes = ["truck", "airplane", "cat", "bird", "deer", "dog", "frog", "horse", "ship", "automobile"]
    write_folder(tmp_path, classes, 1, "RGB", ".jpg", size=32)
    s = data.load_images("cifar10", "test", root=tmp_path, download=False)
    assert s.x.shape == (10, 3, 32, 32) and s.classes == sorted(classes)
    assert s.classes[:2] == ["airplane", "automobile"] and s.y.tolist() == list(range(10))


def test_folder_with_wrong_class_count_is_not_taken(tmp_path):
    write_folder(tmp_path, ["a", "b", "c"], 1, "RGB", ".png")
    with pytest.raises(data.DataNotFoundError, match="10 classes"):
        data.load_images("cifar10", root=tmp_path, download=False)


def test_cifar10_tarball_found_in_shared_data(tmp_path, monkeypatch):
    """The JPEG-copy tarball is found in ../shared/data of the cwd and decoded without extraction."""
    src = tmp_path / "src"
    written = write_folder(src / "top", [f"c{i}" for i in range(10)], 2, "RGB", ".png", size=32)
    shared = tmp_path / "shared" / "data"
    shared.mkdir(parents=True)
    with tarfile.open(shared / data.CIFAR10_TARBALL, "w:gz") as tar:
        tar.add(src / "top", arcname="top")
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    s = data.load_images("cifar10", "train")
    assert np.array_equal(s.x.numpy(), written["train"].transpose(0, 3, 1, 2))
    assert len(list((tmp_path / "cache" / "decoded").glob("*.npz"))) == 2  # both splits in one pass
    assert not any((tmp_path / "cache").glob("*jpeg*"))  # nothing extracted
    t = data.load_images("cifar10", "test")
    assert np.array_equal(t.x.numpy(), written["test"].transpose(0, 3, 1, 2))


def test_not_found_lists_places_and_hints(tmp_path):
    with pytest.raises(data.DataNotFoundError) as err:
        data.load_images("fmnist")
    msg = str(err.value)
    assert isinstance(err.value, FileNotFoundError)
    for expected in ("ADCORE_DATA", "no-system-copy", "offline in tests", "apt-get install"):
        assert expected in msg


def test_a_given_path_is_used_or_fails(tmp_path, monkeypatch):
    """root= (or $ADCORE_DATA) is the only place searched: no fallback to the system copy or a download."""
    write_mnist(tmp_path / "system")
    monkeypatch.setattr(data, "FMNIST_SYSTEM_DIR", tmp_path / "system")
    (tmp_path / "empty").mkdir()
    for given in ({"root": tmp_path / "empty"}, {}):
        if not given:
            monkeypatch.setenv("ADCORE_DATA", str(tmp_path / "empty"))
        with pytest.raises(data.DataNotFoundError, match="only place searched") as err:
            data.load_images("fmnist", **given)
        assert "empty" in str(err.value) and "system" not in str(err.value).split("How to get")[0]
        assert "offline in tests" not in str(err.value)  # no download attempted


def test_cifar10_not_found_names_tarball(tmp_path):
    with pytest.raises(data.DataNotFoundError, match=data.CIFAR10_TARBALL) as err:
        data.load_images("cifar10", download=False)
    assert "download=False" in str(err.value)


def test_bad_names():
    with pytest.raises(ValueError, match="mnist, fmnist, cifar10"):
        data.load_images("svhn")
    with pytest.raises(ValueError, match="split"):
        data.load_images("mnist", "val")


def test_ad_split_one_class(tmp_path):
    write_mnist(tmp_path)
    s = data.ad_split("mnist", 3, root=tmp_path, download=False)
    train = data.load_images("mnist", "train", root=tmp_path)
    assert torch.equal(s.train_x, train.x[train.y == 3]) and len(s.train_x) == 3
    assert s.test_x.shape == (30, 1, 28, 28) and s.test_y.dtype == torch.int64
    assert torch.equal(s.test_y, (s.test_classes != 3).long())
    assert s.normal_classes == (3,) and s.dataset == "mnist"


def test_ad_split_super_category(tmp_path):
    write_mnist(tmp_path)
    s = data.ad_split("mnist", [7, 1, 1], root=tmp_path, download=False)
    assert s.normal_classes == (1, 7) and len(s.train_x) == 6
    assert torch.equal(s.test_y, (~torch.isin(s.test_classes, torch.tensor([1, 7]))).long())


def test_ad_split_errors(tmp_path):
    with pytest.raises(ValueError, match="valid names"):
        data.ad_split("imagenet", 0)
    with pytest.raises(ValueError, match="out of range"):
        data.ad_split("cifar10", 10)
    with pytest.raises(ValueError, match="out of range"):
        data.ad_split("mnist", [-1, 2])
    with pytest.raises(ValueError, match="at least one"):
        data.ad_split("mnist", [])
    with pytest.raises(ValueError, match="no anomalies"):
        data.ad_split("mnist", range(10))


# ------------------------------------------------------------------- the machine's real copies, where present


def test_real_fmnist(monkeypatch):
    monkeypatch.undo()  # the machine's own data and cache
    if not (data.FMNIST_SYSTEM_DIR / "train-images-idx3-ubyte.gz").is_file():
        pytest.skip("no system Fashion-MNIST (apt-get install dataset-fashion-mnist)")
    train, test = data.load_images("fmnist", "train"), data.load_images("fmnist", "test")
    assert train.x.shape == (60000, 1, 28, 28) and test.x.shape == (10000, 1, 28, 28)
    assert train.y.bincount().tolist() == [6000] * 10


@pytest.mark.slow
def test_real_cifar10_jpeg_copy(monkeypatch):
    monkeypatch.undo()
    if not any((d / data.CIFAR10_TARBALL).is_file() for d in data._tarball_dirs()):
        pytest.skip(f"no {data.CIFAR10_TARBALL} in shared/data")
    train, test = data.load_images("cifar10", "train"), data.load_images("cifar10", "test")
    assert train.x.shape == (50000, 3, 32, 32) and test.x.shape == (10000, 3, 32, 32)
    assert train.classes[:2] == ["airplane", "automobile"] and test.y.bincount().tolist() == [1000] * 10
