"""Image datasets as in-memory uint8 tensors, found offline first.

The seed reads every dataset through torchvision with ``download=True``; machines without internet then fail.
Here the native files are read directly (IDX, CIFAR pickle batches, image folders), wherever a copy already
lies, and torchvision's download is only the last resort. Images stay uint8 N x C x H x W, so a whole split fits
in memory (CIFAR-10 train: 150 MB) and goes to the training device in one piece.

Where to put data (searched in this order): ``root=``; ``$ADCORE_DATA`` or ``$ADCORE_DATA/<name>``; known system
copies (Debian's ``dataset-fashion-mnist`` package, the CIFAR-10 JPEG tarball in ``shared/data``); torchvision's
download into ``$ADCORE_CACHE`` (default ``~/.cache/adcore``). Decoded image folders and tarballs are cached there
as ``.npz`` arrays, so JPEGs are decoded once per machine.

ImageNet-30 is the exception to "in memory": its 39,000 training images at 256 x 256 take 7.7 GB, so they are decoded
once into a uint8 memory-mapped ``.npy`` file in the cache and read from there; a one-vs-rest run takes one class
(1,300 images, 255 MB) into memory and scores the test set (3,000 images) in batches straight from the file.
"""
from __future__ import annotations

import contextlib
import csv
import functools
import json
import multiprocessing
import gzip
import hashlib
import io
import os
import pickle
import struct
import tarfile
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np
import torch
from PIL import Image
from tqdm.auto import tqdm

from .environment import data_env, env

DATASETS = ("mnist", "fmnist", "cifar10", "cifar100", "emnist-letters", "gtsrb", "tiny-imagenet", "imagenet30")
N_CLASSES = {"mnist": 10, "fmnist": 10, "cifar10": 10, "cifar100": 100, "emnist-letters": 26, "gtsrb": 43,
              "tiny-imagenet": 200, "imagenet30": 30}
CHANNELS = {"mnist": 1, "fmnist": 1, "cifar10": 3, "cifar100": 3, "emnist-letters": 1, "gtsrb": 3,
             "tiny-imagenet": 3, "imagenet30": 3}
# GTSRB images range from 15 to 250 px; they are resized to 32 x 32 (bilinear) when decoded, as is usual.
# Tiny-ImageNet stays at its native 64 x 64.
_RESIZE = {"gtsrb": 32}
_IDX_CLASSES = {
    "mnist": [str(i) for i in range(10)],
    "fmnist": ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
               "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"],
    "emnist-letters": [chr(ord("a") + i) for i in range(26)],
}
_IDX_PREFIX = {  # (train, test) file-name prefixes of the IDX files
    "mnist": ("train", "t10k"), "fmnist": ("train", "t10k"),
    "emnist-letters": ("emnist-letters-train", "emnist-letters-test"),
}
_IDX_SUBDIRS = {"mnist": ("MNIST/raw",), "fmnist": ("FashionMNIST/raw",), "emnist-letters": ("EMNIST/raw", "gzip")}
_CIFAR_DIR = {"cifar10": "cifar-10-batches-py", "cifar100": "cifar-100-python"}
_IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".ppm")
# torchvision ImageFolder's extensions: the seed reads ImageNet-30 and ImageNet-22K through it.
IMAGEFOLDER_EXTS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")

# ImageNet-30 (Hendrycks et al.'s one-class benchmark, the Rethinking seed's imagenet1k.py): the class folders'
# names; labels follow this (alphabetical) order, as the seed's ImageFolder gives them.
IMAGENET30_CLASSES = (
    "acorn", "airliner", "ambulance", "american_alligator", "banjo", "barn", "bikini", "digital_clock", "dragonfly",
    "dumbbell", "forklift", "goblet", "grand_piano", "hotdog", "hourglass", "manhole_cover", "mosque", "nail",
    "parking_meter", "pillow", "revolver", "rotary_dial_telephone", "schooner", "snowmobile", "soccer_ball",
    "stingray", "strawberry", "tank", "toaster", "volcano")
IMAGENET30_SIZE = 256  # the seed's Resize(256); images are kept as their centre 256 x 256 (see _read_imagenet30)
DECODE_WORKERS: int | None = None  # processes that build the ImageNet-30 cache; None: min(8, cores)

FMNIST_SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")  # Debian package dataset-fashion-mnist
CIFAR10_TARBALL = "cifar10-jpeg.tar.gz"  # CIFAR-10 as JPEGs (lossy, q~75): train|test/<class>/NNNN.jpg
_REPO_ROOT = Path(__file__).resolve().parent.parent


class DataNotFoundError(FileNotFoundError):
    """No copy of a dataset anywhere; the message lists every place tried and how to get the data."""


@dataclass
class ImageSet:
    """One split of a dataset."""

    x: torch.Tensor  # uint8, N x C x H x W
    y: torch.Tensor  # int64, N
    classes: list[str]
    source: str = ""  # where it was read from: results on the CIFAR-10 JPEG copy must say so


@dataclass
class ADSplit:
    """One-vs-rest anomaly detection split: train on the normal classes, test on everything."""

    train_x: torch.Tensor  # uint8 normal training images
    train_classes: torch.Tensor  # their original class labels (super-category splits hold several)
    test_x: torch.Tensor  # uint8 full test set
    test_y: torch.Tensor  # int64, 0 = normal, 1 = anomaly
    test_classes: torch.Tensor  # original class labels of the test set
    normal_classes: tuple[int, ...]
    dataset: str
    source: str = ""


def cache_dir() -> Path:
    """Where downloads and decoded arrays go: ``$ADCORE_CACHE`` or ``~/.cache/adcore``."""
    return Path(env("ADCORE_CACHE") or Path.home() / ".cache" / "adcore")


def _check_name(name: str) -> None:
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; valid names: {', '.join(DATASETS)}")


def load_images(name: str, split: str = "train", root: str | os.PathLike | None = None,
                download: bool = True) -> ImageSet:
    """Load one split (``'train'`` or ``'test'``) of a dataset from the first place that holds it."""
    _check_name(name)
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', not {split!r}")
    tried: list[str] = []

    def attempt(loc: Path) -> ImageSet | None:
        found = _read_native(name, split, loc)
        if found is None:
            tried.append(f"{loc}: {_expected_layout(name, loc)}")
        else:
            found.source = str(loc)
        return found

    for loc in _locations(name, root, tried):
        if (found := attempt(loc)) is not None:
            return found
    if root is not None or data_env():  # a given place is used or fails: no fallback to other data
        given = f"root={str(root)!r}" if root is not None else f"$ADCORE_DATA={data_env()!r}"
        raise DataNotFoundError(f"no copy of {name!r} ({split} split) in the given {given} (a given path is the "
                                "only place searched). Tried:\n  - " + "\n  - ".join(tried) + "\n" + _how_to_get(name))
    tv_root = cache_dir() / "torchvision"
    if (found := attempt(tv_root)) is not None:
        return found
    if download:
        try:
            _torchvision_download(name, split, tv_root)
        except Exception as e:  # offline machines end here; the error goes into the final message
            tried.append(f"torchvision download into {tv_root}: {type(e).__name__}: {e}")
        else:
            if (found := attempt(tv_root)) is not None:
                return found
    else:
        tried.append("torchvision download: skipped (download=False)")
    raise DataNotFoundError(
        f"no copy of {name!r} ({split} split) found. Tried:\n  - " + "\n  - ".join(tried) + "\n" + _how_to_get(name))


def ad_split(name: str, normal: int | Sequence[int], root: str | os.PathLike | None = None,
             download: bool = True) -> ADSplit:
    """One-vs-rest split as in the seed: train = all training images of the normal class(es), test = the full
    test set labelled 0 (normal class) or 1 (any other class). ``normal`` may be a set of classes for
    super-category splits."""
    _check_name(name)
    normal_classes = _normal_classes(normal, N_CLASSES[name])
    train, test = cached_images(name, "train", root, download), cached_images(name, "test", root, download)
    normal_t = torch.tensor(normal_classes)
    is_normal = torch.isin(train.y, normal_t)
    return ADSplit(train_x=_rows(train.x, is_normal),
                   train_classes=train.y[is_normal],
                   test_x=test.x,
                   test_y=(~torch.isin(test.y, normal_t)).long(),
                   test_classes=test.y,
                   normal_classes=normal_classes,
                   dataset=name,
                   source=train.source)


def _rows(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``x[mask]``, as a view when the selected rows are one contiguous run (classes stored in order, as image
    folders are): a memory-mapped ImageNet-30 class then stays on disk until a run copies it to its device."""
    idx = mask.nonzero().squeeze(1)
    if len(idx) and int(idx[-1]) - int(idx[0]) + 1 == len(idx):
        return x[int(idx[0]):int(idx[-1]) + 1]
    return x[idx]


@functools.lru_cache(maxsize=8)
def _split(name: str, normal: int | tuple[int, ...], root: str | None, env: str | None) -> ADSplit:
    return ad_split(name, normal, root)


def cached_split(name: str, normal: int | Sequence[int], root: str | os.PathLike | None = None) -> ADSplit:
    """:func:`ad_split`, kept per process (keyed by the arguments and ``$ADCORE_DATA``): runs of one class
    share it."""
    normal = int(normal) if isinstance(normal, (int, np.integer)) else tuple(int(c) for c in normal)
    return _split(name, normal, None if root is None else str(root), data_env())


@functools.lru_cache(maxsize=6)
def _images(name: str, split: str, root: str | None, download: bool, env: str | None) -> ImageSet:
    return load_images(name, split, root, download)


def cached_images(name: str, split: str = "train", root: str | os.PathLike | None = None,
                  download: bool = True) -> ImageSet:
    """:func:`load_images`, kept per process (keyed by the arguments and ``$ADCORE_DATA``)."""
    return _images(name, split, None if root is None else str(root), download, data_env())


def subsample(n: int, k: int | None, seed: int, strata: np.ndarray | None = None) -> np.ndarray:
    """Sorted indices of a seeded subsample of size k out of n (all when k is None or >= n); stratified over
    ``strata`` (e.g. normal / anomaly test labels) so that every stratum stays present in its proportion."""
    if k is None or k >= n:
        return np.arange(n)
    rng = np.random.default_rng(seed)
    if strata is None:
        return np.sort(rng.choice(n, k, replace=False))
    out = []
    for s in np.unique(strata):
        members = np.flatnonzero(strata == s)
        take = max(1, round(k * len(members) / n))
        out.append(rng.choice(members, min(take, len(members)), replace=False))
    return np.sort(np.concatenate(out))


def _normal_classes(normal: int | Sequence[int], n_classes: int) -> tuple[int, ...]:
    classes = (normal,) if isinstance(normal, (int, np.integer)) else tuple(normal)
    if not classes:
        raise ValueError("normal must name at least one class")
    bad = [c for c in classes if not 0 <= c < n_classes]
    if bad:
        raise ValueError(f"normal classes {bad} out of range 0..{n_classes - 1}")
    if len(set(classes)) == n_classes:
        raise ValueError("every class is normal: the test set would have no anomalies")
    return tuple(sorted({int(c) for c in classes}))


# ---------------------------------------------------------------------------------------------------- locations


def _locations(name: str, root: str | os.PathLike | None, tried: list[str]) -> Iterator[Path]:
    """Folders (or a CIFAR-10 tarball) to search, in order. A given ``root``, else a set ``$ADCORE_DATA``, is the
    only place searched (a given path is used or fails); the system copies only when neither is given."""
    env = data_env()
    given = [Path(root)] if root is not None else [Path(env), Path(env) / name] if env else []
    if given:
        yield from given
        if name == "cifar10" and (given[0] / CIFAR10_TARBALL).is_file():
            yield given[0] / CIFAR10_TARBALL
        return
    tried.append("$ADCORE_DATA: not set")
    if name == "fmnist":
        yield FMNIST_SYSTEM_DIR
    if name == "cifar10":
        dirs = _tarball_dirs()
        tarballs = [d / CIFAR10_TARBALL for d in dirs if (d / CIFAR10_TARBALL).is_file()]
        if tarballs:
            yield tarballs[0]
        else:
            tried.append(f"{CIFAR10_TARBALL} in: " + ", ".join(str(d) for d in dirs))


def _tarball_dirs() -> list[Path]:
    """The default places of the CIFAR-10 JPEG tarball (a given root or $ADCORE_DATA is searched instead)."""
    dirs = [base / up / "shared" / "data" for base in (Path.cwd(), _REPO_ROOT) for up in ("..", "../..")]
    return list(dict.fromkeys(d.resolve() for d in dirs))


def _expected_layout(name: str, loc: Path) -> str:
    folder = f"train|test/<class>/*.png|jpg image folders ({N_CLASSES[name]} classes)"
    if loc.is_file():
        return f"archive without {folder}"
    if not loc.is_dir():
        return "no such folder"
    if name in _IDX_PREFIX:
        tr, te = _IDX_PREFIX[name]
        subdirs = ", ".join(f"{s}/" for s in _IDX_SUBDIRS[name])
        return f"no {tr}|{te}-images-idx3-ubyte[.gz] + labels-idx1 (also under {subdirs}), no {folder}"
    if name == "gtsrb":
        return (f"no [gtsrb/]GTSRB/Training/<class>/*.ppm | GTSRB/Final_Test/Images/*.ppm + GT-final_test.csv "
                f"(torchvision's layout), no {folder}")
    if name == "tiny-imagenet":
        return (f"no [tiny-imagenet-200/]train/<wnid>/images/*.JPEG | val/images/*.JPEG + "
                f"val/val_annotations.txt, no {folder}")
    if name == "imagenet30":
        return ("no imagenet1k/one_class_train|one_class_test/<class>/* (the seed's layout), one_class_train|test/ "
                "or train|test/<class>/* folders with the 30 ImageNet-30 class names")
    return f"no {_CIFAR_DIR[name]}/ (python pickle batches), no {folder}"


def _how_to_get(name: str) -> str:
    ways = {"fmnist": ["`apt-get install dataset-fashion-mnist` (IDX files in /usr/share/datasets/fashion-mnist)"],
            "cifar10": [f"put {CIFAR10_TARBALL} (CIFAR-10 as JPEGs) in ../shared/data or $ADCORE_DATA, or pass "
                        "root= to it or to its extracted train/ test/ folders"],
            "tiny-imagenet": ["unzip tiny-imagenet-200.zip (http://cs231n.stanford.edu/tiny-imagenet-200.zip; "
                              "torchvision has no downloader for it) into root= or $ADCORE_DATA; its val/ split "
                              "serves as the test split"],
            "imagenet30": ["get ImageNet-30 (Hendrycks et al.'s one-class benchmark: the one_class_train and "
                           "one_class_test archives linked from github.com/hendrycks/ss-ood; there is no downloader) "
                           "and extract both into <root>/imagenet1k/, then pass root= or set ADCORE_DATA to <root>"],
            }.get(name, [])
    ways += ["put the native files in a folder and pass root= or set ADCORE_DATA to it",
             "run once with internet access and download=True (torchvision fetches the files into the cache)"]
    return "How to get it: " + "; or ".join(ways) + "."


def _torchvision_download(name: str, split: str, root: Path) -> None:
    """The seed's path: let torchvision fetch the files; they are then read by the native readers."""
    from torchvision import datasets

    if name in ("tiny-imagenet", "imagenet30"):
        raise RuntimeError(f"torchvision has no {name} downloader")
    root.mkdir(parents=True, exist_ok=True)
    train = split == "train"
    kwargs = ({"split": split} if name == "gtsrb" else {"split": "letters", "train": train} if name == "emnist-letters"
              else {"train": train})
    cls = {"mnist": datasets.MNIST, "fmnist": datasets.FashionMNIST, "cifar10": datasets.CIFAR10,
           "cifar100": datasets.CIFAR100, "gtsrb": datasets.GTSRB, "emnist-letters": datasets.EMNIST}[name]
    cls(str(root), download=True, **kwargs)


# ------------------------------------------------------------------------------------------------------ readers


def _read_native(name: str, split: str, loc: Path) -> ImageSet | None:
    """Read ``split`` of ``name`` from any native layout in ``loc`` (a folder, or a tarball of image folders);
    None if no layout is there. A file that is there but broken raises ValueError rather than being skipped."""
    if name == "imagenet30":  # its own layouts and cache only: the generic folder reader would squash the images
        return _read_imagenet30(split, loc) if loc.is_dir() else None
    size = _RESIZE.get(name)
    if loc.is_file() and loc.name.endswith((".tar", ".tar.gz", ".tgz")):
        return _read_tarball(loc, split, CHANNELS[name], N_CLASSES[name], size)
    if not loc.is_dir():
        return None
    if name in _IDX_PREFIX:
        found = _read_idx_pair(name, split, loc)
    elif name == "gtsrb":
        found = _read_gtsrb(split, loc)
    elif name == "tiny-imagenet":
        found = _read_tiny_imagenet(split, loc)
    else:
        found = _read_cifar(name, split, loc)
    if found is None and (loc / split).is_dir():
        found = _read_folder(loc / split, CHANNELS[name], N_CLASSES[name], size)
    return found


def _read_idx_pair(name: str, split: str, loc: Path) -> ImageSet | None:
    prefix = _IDX_PREFIX[name][split == "test"]
    for folder in (loc, *(loc / s for s in _IDX_SUBDIRS[name])):
        images = _first_file(folder, f"{prefix}-images-idx3-ubyte")
        labels = _first_file(folder, f"{prefix}-labels-idx1-ubyte")
        if images is None or labels is None:
            continue
        x, y = _read_idx(images), _read_idx(labels).astype(np.int64)
        if x.ndim != 3 or y.ndim != 1 or len(x) != len(y):
            raise ValueError(f"{images} / {labels}: shapes {x.shape} and {y.shape} don't match")
        if name == "emnist-letters":
            # Letters are stored 1..26. The images are stored transposed (the letters lie on their side); the
            # Rethinking seed trains on them as torchvision reads them, so they are kept that way here too.
            y = y - 1
        _check_labels(y, N_CLASSES[name], labels)
        return ImageSet(torch.from_numpy(np.ascontiguousarray(x)[:, None]), torch.from_numpy(y),
                        list(_IDX_CLASSES[name]))
    return None


def _first_file(folder: Path, stem: str) -> Path | None:
    return next((p for p in (folder / stem, folder / f"{stem}.gz") if p.is_file()), None)


def _read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an unsigned-byte IDX file (``.gz`` or raw), checking that its size matches its header."""
    path = Path(path)
    try:
        with (gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")) as f:
            raw = f.read()
    except (OSError, EOFError) as e:  # truncated or not-really-gzip files end here
        raise ValueError(f"{path}: unreadable ({type(e).__name__}: {e})") from e
    if len(raw) < 4 or raw[:3] != b"\x00\x00\x08":
        raise ValueError(f"{path}: not an unsigned-byte IDX file (header {raw[:4].hex()})")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{path}: truncated IDX header")
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    expected = int(np.prod(dims))
    if len(raw) - header != expected:
        raise ValueError(f"{path}: IDX header says {dims} = {expected} bytes, file has {len(raw) - header}")
    return np.frombuffer(raw, np.uint8, offset=header).reshape(dims).copy()


def _read_cifar(name: str, split: str, loc: Path) -> ImageSet | None:
    folder = loc / _CIFAR_DIR[name]
    if not folder.is_dir():
        folder = loc  # the batches may lie directly in loc
    if name == "cifar10":
        files = [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]
        meta, label_key, names_key = "batches.meta", "labels", "label_names"
    else:
        files, meta, label_key, names_key = [split], "meta", "fine_labels", "fine_label_names"
    paths = [folder / f for f in [*files, meta]]
    if not all(p.is_file() for p in paths):
        return None
    batches = [_unpickle(p) for p in paths[:-1]]
    try:
        x = np.concatenate([np.asarray(b["data"], np.uint8).reshape(-1, 3, 32, 32) for b in batches])
        y = np.concatenate([np.asarray(b[label_key], np.int64) for b in batches])
        classes = list(_unpickle(paths[-1])[names_key])
    except (KeyError, ValueError) as e:
        raise ValueError(f"{folder}: malformed CIFAR batch ({type(e).__name__}: {e})") from e
    if len(x) != len(y):
        raise ValueError(f"{folder}: {len(x)} images but {len(y)} labels")
    _check_labels(y, N_CLASSES[name], folder)
    return ImageSet(torch.from_numpy(x), torch.from_numpy(y), classes)


def _unpickle(path: Path) -> dict:
    # The CIFAR python batches are pickles (as torchvision reads them): only load files you trust.
    try:
        with open(path, "rb") as f:
            return pickle.load(f, encoding="latin1")
    except Exception as e:
        raise ValueError(f"{path}: not a readable CIFAR pickle batch ({type(e).__name__}: {e})") from e


def _check_labels(y: np.ndarray, n_classes: int, source: Path) -> None:
    if len(y) and not (0 <= y.min() and y.max() < n_classes):
        raise ValueError(f"{source}: labels span {y.min()}..{y.max()}, expected 0..{n_classes - 1}")


def _read_folder(folder: Path, channels: int, n_classes: int, size: int | None = None) -> ImageSet | None:
    """Decode ``folder/<class>/*.png|jpg|ppm``; sorted class names give the label order."""
    tag = _size_tag(size)
    if (cached := _load_cached(folder, channels, tag)) is not None:
        return cached
    files = {(d.name, p.name): p for d in folder.iterdir() if d.is_dir()
             for p in d.iterdir() if p.suffix.lower() in _IMAGE_EXTS}
    return _save_cached(folder, channels, _assemble(files, channels, n_classes, size), tag)


def _size_tag(size: int | None, split: str = "") -> str:
    """Cache-key suffix: images resized on decoding are cached apart from native-size ones."""
    return split if size is None else f"{split}@{size}"


def _read_tarball(tarball: Path, split: str, channels: int, n_classes: int,
                  size: int | None = None) -> ImageSet | None:
    """Decode the ``[top/]train|test/<class>/*.jpg`` members of a tarball in one pass, both splits at once.
    Reading the members straight from the archive takes half the time of extracting 60,000 files first."""
    if (cached := _load_cached(tarball, channels, _size_tag(size, split))) is not None:
        return cached
    blobs: dict[str, dict[tuple[str, str], bytes]] = {"train": {}, "test": {}}
    try:
        with tarfile.open(tarball) as tar:
            for member in tar:
                parts = PurePosixPath(member.name).parts
                if (member.isfile() and len(parts) >= 3 and parts[-3] in blobs
                        and PurePosixPath(parts[-1]).suffix.lower() in _IMAGE_EXTS):
                    blobs[parts[-3]][parts[-2:]] = tar.extractfile(member).read()
    except (tarfile.TarError, OSError, EOFError) as e:
        raise ValueError(f"{tarball}: unreadable archive ({type(e).__name__}: {e})") from e
    sets = {s: _save_cached(tarball, channels, _assemble(b, channels, n_classes, size), _size_tag(size, s))
            for s, b in blobs.items()}
    return sets[split]


def _assemble(sources: dict[tuple[str, str], Path | bytes], channels: int, n_classes: int,
              size: int | None = None, classes: list[str] | None = None) -> ImageSet | None:
    """Decode images keyed by (class name, file name) in sorted order; None unless exactly n_classes classes
    (``classes``, when given, fixes the label order and may include classes without images)."""
    classes = classes or sorted({c for c, _ in sources})
    if len(classes) != n_classes:
        return None
    keys = sorted(sources)
    images = [_decode(sources[k], "RGB" if channels == 3 else "L", "/".join(k), size) for k in keys]
    if len({im.shape for im in images}) != 1:
        raise ValueError(f"images differ in size: {sorted({im.shape for im in images})[:4]}")
    x = np.stack(images)
    x = x[:, None] if channels == 1 else x.transpose(0, 3, 1, 2)
    label = {c: i for i, c in enumerate(classes)}
    y = np.array([label[c] for c, _ in keys], np.int64)
    return ImageSet(torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(y), classes)


def _decode(source: Path | bytes, mode: str, name: str, size: int | None = None) -> np.ndarray:
    try:
        with Image.open(source if isinstance(source, Path) else io.BytesIO(source)) as im:
            im = im if im.mode == mode else im.convert(mode)
            if size is not None and im.size != (size, size):
                im = im.resize((size, size), Image.BILINEAR)
            return np.asarray(im)
    except OSError as e:
        raise ValueError(f"{source if isinstance(source, Path) else name}: cannot decode image ({e})") from e


def _cache_file(source: Path, channels: int, split: str) -> Path:
    """Decoded arrays are keyed by source path, modification time, split and channels."""
    source = source.resolve()
    key = f"{source}|{source.stat().st_mtime_ns}|{split}|{channels}"
    return cache_dir() / "decoded" / f"{source.name}-{split}-{hashlib.sha1(key.encode()).hexdigest()[:16]}.npz"


def _load_cached(source: Path, channels: int, split: str = "") -> ImageSet | None:
    path = _cache_file(source, channels, split)
    if not path.is_file():
        return None
    with np.load(path) as z:
        return ImageSet(torch.from_numpy(z["x"]), torch.from_numpy(z["y"]), [str(c) for c in z["classes"]])


def _save_cached(source: Path, channels: int, images: ImageSet | None, split: str = "") -> ImageSet | None:
    if images is None:
        return None
    path = _cache_file(source, channels, split)
    tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as f:
            np.savez(f, x=images.x.numpy(), y=images.y.numpy(), classes=np.asarray(images.classes))
        os.replace(tmp, path)
    except OSError as e:  # a read-only cache costs time, not correctness
        warnings.warn(f"could not cache decoded images in {path}: {e}", stacklevel=3)
    return images


def _read_gtsrb(split: str, loc: Path) -> ImageSet | None:
    """torchvision's GTSRB layout: ``[gtsrb/]GTSRB/Training/<00000..00042>/*.ppm`` (train) and
    ``GTSRB/Final_Test/Images/*.ppm`` labelled by ``GT-final_test.csv`` (test); images resized to 32 x 32."""
    base = next((b for b in (loc / "gtsrb", loc) if (b / "GTSRB").is_dir()), None)
    if base is None:
        return None
    size, n = _RESIZE["gtsrb"], N_CLASSES["gtsrb"]
    if split == "train":
        folder = base / "GTSRB" / "Training"
        return _read_folder(folder, 3, n, size) if folder.is_dir() else None
    images = base / "GTSRB" / "Final_Test" / "Images"
    csv_path = next((p for p in (base / "GT-final_test.csv", base / "GTSRB" / "GT-final_test.csv",
                                 images / "GT-final_test.csv") if p.is_file()), None)
    if not images.is_dir() or csv_path is None:
        return None
    tag = _size_tag(size, "test")
    if (cached := _load_cached(images, 3, tag)) is not None:
        return cached
    with open(csv_path, newline="") as f:
        try:
            rows = [(r["Filename"], int(r["ClassId"])) for r in csv.DictReader(f, delimiter=";", skipinitialspace=True)]
        except (KeyError, ValueError, TypeError) as e:
            raise ValueError(f"{csv_path}: expected ';'-separated Filename and ClassId columns ({e})") from e
    _check_labels(np.array([c for _, c in rows], np.int64), n, csv_path)
    classes = [f"{i:05d}" for i in range(n)]
    files = {(classes[c], name): images / name for name, c in rows}
    missing = [p for p in files.values() if not p.is_file()]
    if missing:
        raise ValueError(f"{csv_path} lists {len(missing)} images missing from {images}, e.g. {missing[0].name}")
    return _save_cached(images, 3, _assemble(files, 3, n, size, classes), tag)


def _read_tiny_imagenet(split: str, loc: Path) -> ImageSet | None:
    """The Tiny-ImageNet zip's layout: ``[tiny-imagenet-200/]wnids.txt``, ``train/<wnid>/images/*.JPEG`` and
    ``val/images/*.JPEG`` labelled by ``val/val_annotations.txt``; the labelled val split is the test split
    (the official test split has no labels). Labels follow the sorted WordNet ids."""
    root = next((r for r in (loc / "tiny-imagenet-200", loc) if (r / "wnids.txt").is_file()), None)
    if root is None:
        return None
    classes = sorted({w.strip() for w in (root / "wnids.txt").read_text().split() if w.strip()})
    source = root / ("train" if split == "train" else "val")
    if not source.is_dir():
        return None
    if (cached := _load_cached(source, 3, split)) is not None:
        return cached
    if split == "train":
        files = {(w, p.name): p for w in classes if (source / w / "images").is_dir()
                 for p in (source / w / "images").iterdir() if p.suffix.lower() in _IMAGE_EXTS}
    else:
        annotations = source / "val_annotations.txt"
        if not annotations.is_file():
            return None
        rows = [p[:2] for p in (line.split("\t") for line in annotations.read_text().splitlines()) if len(p) >= 2]
        if (bad := next((c for _, c in rows if c not in classes), None)) is not None:
            raise ValueError(f"{annotations}: class {bad!r} is not in wnids.txt")
        files = {(c, f): source / "images" / f for f, c in rows}
    return _save_cached(source, 3, _assemble(files, 3, N_CLASSES["tiny-imagenet"], None, classes), split)


# ------------------------------------------------------------------------------------------------ ImageNet-30


def resize_center(img: Image.Image, size: int) -> Image.Image:
    """torchvision's ``Resize(size)`` then ``CenterCrop(size)`` on a PIL image, pixel for pixel: the shorter side
    becomes ``size`` and the longer ``int(size * long / short)`` (PIL's antialiased bilinear), then the centred
    ``size`` x ``size`` square (offsets rounded half to even, as torchvision rounds them). A later ``CenterCrop(224)``
    of this square is exactly the seed's test image: ``Resize(256)`` + ``CenterCrop(224)``."""
    w, h = img.size
    nw, nh = (size, int(size * h / w)) if w <= h else (int(size * w / h), size)
    if (nw, nh) != (w, h):
        img = img.resize((nw, nh), Image.BILINEAR)
    top, left = int(round((nh - size) / 2.0)), int(round((nw - size) / 2.0))
    return img.crop((left, top, left + size, top + size))


def decode_resized(path: str | os.PathLike, size: int, mode: str = "RGB") -> np.ndarray:
    """One image file as uint8 C x size x size (:func:`resize_center`), converted to ``mode`` first as the seed's
    ImageFolder loader converts to RGB."""
    try:
        with Image.open(path) as im:
            out = np.asarray(resize_center(im.convert(mode), size))
    except OSError as e:
        raise ValueError(f"{path}: cannot decode image ({e})") from e
    return np.array(out[None]) if out.ndim == 2 else np.ascontiguousarray(out.transpose(2, 0, 1))  # own, writable


def imagenet30_folder(loc: Path, split: str) -> Path | None:
    """The folder of one ImageNet-30 split under ``loc``: the seed's ``imagenet1k/one_class_{split}``, then
    ``one_class_{split}`` and the plain ``{split}``, each holding one folder per class; None if none is there."""
    return next((f for f in (loc / "imagenet1k" / f"one_class_{split}", loc / f"one_class_{split}", loc / split)
                 if f.is_dir()), None)


def find_imagenet30(root: str | os.PathLike | None = None) -> Path | None:
    """Where :func:`load_images` would read ImageNet-30 from (both splits present and named as the 30 classes),
    without decoding anything; None when no place holds it. The chapters probe with it."""
    for loc in _locations("imagenet30", root, []):
        if loc.is_dir() and all(imagenet30_folder(loc, s) is not None and _imagenet30_files(
                imagenet30_folder(loc, s), strict=False) is not None for s in ("train", "test")):
            return loc
    return None


def _imagenet30_files(folder: Path, strict: bool) -> list[tuple[int, str]] | None:
    """(label, file name) of every image of ``folder/<class>/``, classes in the seed's order, files sorted. A folder
    whose class folders are not ImageNet-30's raises (naming what is missing or extra), unless none of them is an
    ImageNet-30 class and not ``strict``: then it holds another dataset and None is returned."""
    present = {e.name for e in os.scandir(folder) if e.is_dir()}
    known = set(IMAGENET30_CLASSES)
    if not strict and not present & known:
        return None
    missing, extra = sorted(known - present), sorted(present - known)
    if missing or extra:
        raise ValueError(f"{folder}: ImageNet-30 needs exactly its 30 class folders ({', '.join(IMAGENET30_CLASSES)})"
                         + (f"; missing: {', '.join(missing)}" if missing else "")
                         + (f"; unexpected: {', '.join(extra)}" if extra else ""))
    files = []
    for label, name in enumerate(IMAGENET30_CLASSES):
        names = image_files(folder / name)
        if not names:
            raise ValueError(f"{folder / name}: no images ({'|'.join(IMAGEFOLDER_EXTS)})")
        files += [(label, f"{name}/{n}") for n in names]
    return files


def _read_imagenet30(split: str, loc: Path) -> ImageSet | None:
    """ImageNet-30 from ``loc`` (see :func:`imagenet30_folder`), decoded once into a uint8 memory-mapped cache.

    Each image is resized as the seed's ``Resize(256)`` and kept as its centre 256 x 256 square
    (:func:`resize_center`), so that every image has one shape and the whole set is one array. Test images are then
    exactly the seed's (``CenterCrop(224)`` of the square); training crops (``RandomCrop(224)``) are drawn from the
    centre square instead of the whole 256 x W image, i.e. from the middle 256 px of a 4:3 image's 341 (a
    deliberate difference). The cache (``$ADCORE_CACHE/decoded/imagenet30-...``) is keyed by the folder, the
    size, the file names and the class folders' modification times: adding, removing or renaming a file
    rebuilds it."""
    folder = imagenet30_folder(loc, split)
    if folder is None:
        return None
    files = _imagenet30_files(folder, strict=folder.name.startswith("one_class_"))
    if files is None:
        return None
    size = IMAGENET30_SIZE
    mtimes = [(folder / c).stat().st_mtime_ns for c in IMAGENET30_CLASSES]
    key = hashlib.sha1(json.dumps([str(folder.resolve()), size, mtimes, files]).encode()).hexdigest()[:16]
    cache = cache_dir() / "decoded" / f"imagenet30-{split}-{size}-{key}"
    if not (cache / "x.npy").is_file():
        _build_image_cache(cache, [str(folder / f) for _, f in files], size, f"ImageNet-30 {split}")
    x = np.load(cache / "x.npy", mmap_mode="c")  # copy-on-write: writable for torch, never written back
    y = np.array([label for label, _ in files], np.int64)
    if x.shape != (len(files), 3, size, size):
        raise ValueError(f"{cache}: cached array has shape {x.shape}, expected {(len(files), 3, size, size)}; "
                         "delete the folder to rebuild it")
    return ImageSet(torch.from_numpy(x), torch.from_numpy(y), list(IMAGENET30_CLASSES))


def _build_image_cache(cache: Path, paths: list[str], size: int, what: str) -> None:
    """Decode ``paths`` (:func:`decode_resized`) into ``cache/x.npy``, a uint8 N x 3 x size x size array written in
    place by worker processes (:data:`DECODE_WORKERS`), with a progress bar."""
    with built_atomically(cache) as tmp:
        out = np.lib.format.open_memmap(tmp / "x.npy", mode="w+", dtype=np.uint8, shape=(len(paths), 3, size, size))
        del out  # header and size on disk; the workers open it themselves
        chunk = 64
        jobs = [(str(tmp / "x.npy"), a, paths[a:a + chunk], size) for a in range(0, len(paths), chunk)]
        workers = DECODE_WORKERS or min(8, os.cpu_count() or 1)
        with tqdm(total=len(paths), desc=f"decoding {what} once", unit="img", leave=False) as bar:
            if workers > 1 and len(jobs) > 1:
                with multiprocessing.get_context().Pool(min(workers, len(jobs))) as pool:
                    for n in pool.imap_unordered(_decode_chunk, jobs):
                        bar.update(n)
            else:
                for job in jobs:
                    bar.update(_decode_chunk(job))


@contextlib.contextmanager
def built_atomically(target: Path) -> Iterator[Path]:
    """A temporary folder to build ``target`` (a cache folder) in, renamed into place when the block succeeds: an
    interrupted build leaves no cache, and of concurrent builds one is kept (they are equal)."""
    tmp = target.with_name(f"{target.name}.{os.getpid()}.tmp")
    tmp.mkdir(parents=True, exist_ok=True)
    try:
        yield tmp
        try:
            os.replace(tmp, target)
        except OSError:  # another process finished first
            if not target.is_dir():
                raise
    finally:
        if tmp.exists():
            for f in tmp.iterdir():
                f.unlink()
            tmp.rmdir()


def image_files(folder: str | os.PathLike) -> list[str]:
    """The names of the image files in ``folder`` (ImageFolder's extensions, any case), sorted as ImageFolder
    sorts them."""
    return sorted(e.name for e in os.scandir(folder)
                  if e.is_file() and os.path.splitext(e.name)[1].lower() in IMAGEFOLDER_EXTS)


def _decode_chunk(job: tuple[str, int, list[str], int]) -> int:
    """Decode consecutive images into rows ``start...`` of the cache array (in a worker process)."""
    array, start, paths, size = job
    out = np.load(array, mmap_mode="r+")
    for i, path in enumerate(paths):
        out[start + i] = decode_resized(path, size)
    out.flush()
    return len(paths)


# ------------------------------------------------------------------------------------- super-category splits

# Normal = the union of a group's classes, anomalies = every other class (Park et al., "What is Wrong with
# One-Class Anomaly Detection?", ICLR 2021 SecML workshop). MNIST: curved / straight / mixed strokes; CIFAR-10:
# things / living beings; GTSRB: speed limits, instructions, warnings, directions, special signs, regulations.
# The Fashion-MNIST groups are this project's analogue (tops / footwear / the rest), as Fashion-MNIST is the
# dataset available offline.
SUPER_CATEGORIES: dict[str, dict[str, tuple[int, ...]]] = {
    "mnist": {"CUR": (0, 3, 8), "STR": (1, 4, 7), "MIX": (2, 5, 6, 9)},
    "fmnist": {"TOP": (0, 2, 4, 6), "SHOE": (5, 7, 9), "MIX": (1, 3, 8)},
    "cifar10": {"THG": (0, 1, 8, 9), "LIV": (2, 3, 4, 5, 6, 7)},
    "gtsrb": {"SPDL": (0, 1, 2, 3, 4, 5, 7, 8), "INST": (9, 10, 15, 16), "WARN": (11, *range(18, 32)),
              "DIRC": tuple(range(33, 41)), "SPEC": (12, 13, 14, 17), "REGN": (6, 32, 41, 42)},
}


def super_category(dataset: str, group: str) -> tuple[int, ...]:
    """The classes of a named super-category, e.g. ``super_category('mnist', 'CUR') == (0, 3, 8)``."""
    if dataset not in SUPER_CATEGORIES:
        raise ValueError(f"no super-categories for {dataset!r}; defined for {', '.join(SUPER_CATEGORIES)}")
    groups = SUPER_CATEGORIES[dataset]
    if group not in groups:
        raise ValueError(f"unknown {dataset} super-category {group!r}; choose one of {', '.join(groups)}")
    return groups[group]
