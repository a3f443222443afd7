"""Your own data: an image folder or a table, read and checked for :class:`adcore.Detector` and ``adcore fit``.

Images
    A folder of image files (ImageFolder's extensions: ``.png``, ``.jpg``, ``.jpeg``, ``.ppm``, ``.bmp``, ``.pgm``,
    ``.tif``, ``.tiff``, ``.webp``, any case, searched recursively). For training, ``DIR/normal/`` when it exists,
    else every image under ``DIR``. A labelled (test) folder holds ``normal/`` and ``anomalous/``, or its labels
    come from a CSV of ``file,label`` rows (label 0 = normal, 1 = anomaly; files relative to the CSV's folder).
    Grey when every training image is grey (PIL modes 1, L, LA, I, F), else RGB. Images of one size are used as
    they are; mixed sizes need ``image_size`` (each image is then resized on its short side and centre-cropped).
    Every image is finally brought to its network's input (:data:`adcore.nets.INPUT_SHAPE`: 28 px grey for
    ``mnist_lenet``, 32 px RGB for ``cifar10_lenet``, 224 px RGB for ``resnet18_cbam``) by the same resize.
Tables
    ``.csv`` (a header row; a ``label`` column, or the one named by ``label_column``, holds 0/1 labels),
    ``.npy`` (a 2-D numeric array; labels from a separate file) or ``.npz`` (features under ``X``/``x``/``data``,
    labels under ``y``/``label``/``labels``). Every feature must be numeric and no cell may be empty or NaN.

Every problem is a :class:`adcore.config.ConfigError` of one line that names the file (and row, column), raised
before any training starts.
"""
from __future__ import annotations

import csv
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from .config import ConfigError
from .data import IMAGEFOLDER_EXTS, resize_center

TABLE_EXTS = (".csv", ".npy", ".npz")
GREY_MODES = ("1", "L", "LA", "I", "I;16", "F", "P;L")
LABEL_COLUMNS = ("label",)
_X_KEYS, _Y_KEYS = ("X", "x", "data", "features"), ("y", "label", "labels")


def is_table(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower() in TABLE_EXTS


def is_image_file(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower() in IMAGEFOLDER_EXTS


def _exists(path: str | os.PathLike, what: str) -> Path:
    p = Path(os.path.expanduser(str(path)))
    if not p.exists():
        raise ConfigError(f"{what} {str(path)!r}: no such file or folder")
    return p


def image_files(folder: str | os.PathLike) -> list[Path]:
    """The image files under ``folder`` (recursively, hidden files and folders skipped), sorted."""
    folder = Path(folder)
    out = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        out += [Path(root) / f for f in files if not f.startswith(".") and is_image_file(f)]
    return sorted(out)


def _nonempty(files: list[Path], where: Path, what: str) -> list[Path]:
    if not files:
        raise ConfigError(f"{what} {str(where)!r} holds no image files ({', '.join(IMAGEFOLDER_EXTS)})")
    return files


def training_files(path: str | os.PathLike) -> list[Path]:
    """``DIR/normal/``'s images when it exists, else every image under ``DIR`` (or the one image file)."""
    p = _exists(path, "data")
    if p.is_file():
        if not is_image_file(p):
            raise ConfigError(f"data {str(p)!r} is neither an image folder nor a table ({', '.join(TABLE_EXTS)})")
        return [p]
    root = p / "normal" if (p / "normal").is_dir() else p
    return _nonempty(image_files(root), root, "image folder")


def input_files(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """Image files to score: each path an image file or a folder (searched recursively), in the order given."""
    out: list[Path] = []
    for path in paths:
        p = _exists(path, "input")
        if p.is_dir():
            out += _nonempty(image_files(p), p, "input folder")
        elif is_image_file(p):
            out.append(p)
        else:
            raise ConfigError(f"input {str(p)!r} is not an image file ({', '.join(IMAGEFOLDER_EXTS)}) or a folder")
    return out


def labelled_files(path: str | os.PathLike, labels: str | os.PathLike | None = None
                   ) -> tuple[list[Path], np.ndarray]:
    """A labelled image set: ``DIR/normal/`` (0) and ``DIR/anomalous/`` (1), or the ``file,label`` rows of the CSV
    ``labels`` (files relative to the CSV's folder, else to ``path``)."""
    p = _exists(path, "test data")
    if labels is not None:
        return _label_csv(_exists(labels, "label file"), p if p.is_dir() else p.parent)
    normal, anomalous = p / "normal", p / "anomalous"
    if not (normal.is_dir() and anomalous.is_dir()):
        raise ConfigError(f"labelled folder {str(p)!r} needs the subfolders normal/ and anomalous/, or a CSV of "
                          "file,label rows (--test-labels)")
    a = _nonempty(image_files(normal), normal, "image folder")
    b = _nonempty(image_files(anomalous), anomalous, "image folder")
    return a + b, np.r_[np.zeros(len(a), np.int64), np.ones(len(b), np.int64)]


def _label_csv(csv_path: Path, base: Path) -> tuple[list[Path], np.ndarray]:
    with open(csv_path, newline="") as f:
        rows = [r for r in csv.reader(f) if r and any(c.strip() for c in r)]
    header = bool(rows) and rows[0][-1].strip().lower() in ("label", "is_anomaly", "anomaly", "y")
    rows, first = rows[header:], 1 + header
    if not rows:
        raise ConfigError(f"label file {str(csv_path)!r} has no rows; expected file,label rows")
    files, ys = [], []
    for line, row in enumerate(rows, first):
        if len(row) < 2:
            raise ConfigError(f"label file {str(csv_path)!r}, line {line}: expected file,label, got {','.join(row)!r}")
        name, lab = row[0].strip(), row[1].strip()
        if lab not in ("0", "1"):
            raise ConfigError(f"label file {str(csv_path)!r}, line {line}: label {lab!r} must be 0 (normal) or "
                              "1 (anomaly)")
        f = next((c for c in (csv_path.parent / name, base / name, Path(name)) if c.is_file()), None)
        if f is None:
            raise ConfigError(f"label file {str(csv_path)!r}, line {line}: no such image {name!r} (looked next to "
                              f"the CSV and in {str(base)!r})")
        files.append(f)
        ys.append(int(lab))
    return files, np.asarray(ys, np.int64)


# ------------------------------------------------------------------------------------------------------ images

@dataclass
class ImageInfo:
    """What the training images say about themselves: grey or RGB, and their common size (None when mixed)."""

    grey: bool
    size: tuple[int, int] | None  # (width, height)
    sizes: dict[tuple[int, int], int] = field(default_factory=dict)
    example: dict[tuple[int, int], Path] = field(default_factory=dict)  # a file of each size


def probe(files: Sequence[Path]) -> ImageInfo:
    """Modes and sizes of ``files`` from their headers (no decoding); a file PIL cannot read is an error."""
    grey, sizes, example = True, {}, {}
    for f in files:
        try:
            with Image.open(f) as im:
                mode, size = im.mode, im.size
                if mode == "P":
                    mode = "RGB" if im.convert("RGB").getextrema() != im.convert("L").convert("RGB").getextrema() \
                        else "L"
        except (OSError, UnidentifiedImageError) as e:
            raise ConfigError(f"{str(f)!r}: cannot read image ({e})") from None
        grey &= mode in GREY_MODES
        sizes[size] = sizes.get(size, 0) + 1
        example.setdefault(size, f)
    return ImageInfo(grey, next(iter(sizes)) if len(sizes) == 1 else None, sizes, example)


def check_sizes(info: ImageInfo, image_size: int | None, where: str) -> None:
    if info.size is None and image_size is None:
        common = sorted(info.sizes.items(), key=lambda kv: -kv[1])[:3]
        seen = ", ".join(f"{w}x{h} ({n:,} file{'s' if n > 1 else ''}, e.g. {info.example[(w, h)].name})"
                         for (w, h), n in common)
        raise ConfigError(f"images in {where!r} have mixed sizes ({seen}); pass --image-size N (image_size=N) to "
                          "resize them all to N x N")


def net_for_images(grey: bool, side: int, net: str | None = None) -> str:
    """The network for images of ``side`` px: the LeNets for <= 64 px (the 28 px grey one for grey images, the 32
    px RGB one otherwise), the ResNet-18 for larger ones; ``net`` when given."""
    if net is not None:
        return net
    return ("mnist_lenet" if grey else "cifar10_lenet") if side <= 64 else "resnet18_cbam"


def decode(path: Path, channels: int, size: int, image_size: int | None = None) -> np.ndarray:
    """One image as uint8 C x size x size: converted to grey or RGB, resized to ``image_size`` (short side, centre
    crop) when given, then to the network's ``size`` the same way (nothing when it has that size already)."""
    try:
        with Image.open(path) as im:
            img = im.convert("L" if channels == 1 else "RGB")
    except (OSError, UnidentifiedImageError) as e:
        raise ConfigError(f"{str(path)!r}: cannot read image ({e})") from None
    if image_size is not None and img.size != (image_size, image_size):
        img = resize_center(img, image_size)
    if img.size != (size, size):
        img = resize_center(img, size)
    a = np.asarray(img)
    return np.array(a[None]) if a.ndim == 2 else np.ascontiguousarray(a.transpose(2, 0, 1))


def decode_all(files: Sequence[Path], channels: int, size: int, image_size: int | None = None) -> torch.Tensor:
    out = np.empty((len(files), channels, size, size), np.uint8)
    for i, f in enumerate(files):
        out[i] = decode(f, channels, size, image_size)
    return torch.from_numpy(out)


def image_array(x: Any, channels: int, size: int) -> torch.Tensor:
    """An array of images (N x H x W, N x C x H x W uint8, or floats in [0, 1]) as uint8 N x C x size x size in the
    network's channels (grey <-> RGB as PIL converts) and size."""
    a = np.asarray(x.cpu() if isinstance(x, torch.Tensor) else x)
    if a.ndim == 3:
        a = a[:, None]
    if a.ndim != 4 or a.shape[1] not in (1, 3):
        raise ConfigError(f"images must be N x H x W or N x C x H x W with C = 1 or 3, got shape {a.shape}")
    if a.dtype != np.uint8:
        if not np.all(np.isfinite(a)):
            raise ConfigError("images contain NaN or infinite values")
        if a.min() < 0 or a.max() > 1:
            raise ConfigError("float images must lie in [0, 1] (or pass uint8 0..255)")
        a = np.round(a * 255).astype(np.uint8)
    if a.shape[1] == channels and a.shape[2] == a.shape[3] == size:
        return torch.from_numpy(np.ascontiguousarray(a))
    mode = "L" if a.shape[1] == 1 else "RGB"
    out = np.empty((len(a), channels, size, size), np.uint8)
    for i, img in enumerate(a):
        im = Image.fromarray(img[0] if mode == "L" else img.transpose(1, 2, 0), mode)
        im = im.convert("L" if channels == 1 else "RGB")
        if im.size != (size, size):
            im = resize_center(im, size)
        b = np.asarray(im)
        out[i] = b[None] if b.ndim == 2 else b.transpose(2, 0, 1)
    return torch.from_numpy(out)


def image_stats(x: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std of uint8 images scaled to [0, 1] (a std of 0 becomes 1)."""
    f = x.double().div(255).transpose(0, 1).reshape(x.shape[1], -1)
    mean, std = f.mean(1), f.std(1, unbiased=False)
    std = torch.where(std > 0, std, torch.ones_like(std))
    return tuple(float(m) for m in mean), tuple(float(s) for s in std)


# ------------------------------------------------------------------------------------------------------ tables

@dataclass
class Table:
    x: np.ndarray  # float64 N x D
    y: np.ndarray | None  # int64 0/1 labels, or None
    columns: list[str]
    ids: list[str]  # "file:line" (CSV) or "file[row]" per row
    source: str


def read_table(path: str | os.PathLike, label_column: str | None = None, labels: str | os.PathLike | None = None,
               columns: Sequence[str] | None = None) -> Table:
    """A table file (see the module docstring) as float features and optional 0/1 labels. ``columns``: the
    feature columns a model was fitted on (a CSV must have them; others are ignored)."""
    p = _exists(path, "table")
    ext = p.suffix.lower()
    if ext not in TABLE_EXTS:
        raise ConfigError(f"table {str(p)!r}: unknown format {ext!r}; use {', '.join(TABLE_EXTS)}")
    if ext == ".csv":
        t = _read_csv(p, label_column, columns)
    else:
        t = _read_array(p, ext)
    if labels is not None:
        t.y = _read_labels(_exists(labels, "label file"), len(t.x))
    if len(t.x) == 0:
        raise ConfigError(f"table {str(p)!r} has no rows")
    if columns is not None and t.x.shape[1] != len(columns):
        raise ConfigError(f"table {str(p)!r} has {t.x.shape[1]} feature columns; the model was fitted on "
                          f"{len(columns)}")
    return t


def _read_csv(p: Path, label_column: str | None, columns: Sequence[str] | None) -> Table:
    import pandas as pd
    try:
        df = pd.read_csv(p, dtype=str, keep_default_na=False, skipinitialspace=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise ConfigError(f"table {str(p)!r}: cannot read CSV ({' '.join(str(e).split())})") from None
    names = [str(c).strip() for c in df.columns]
    df.columns = names
    lab = label_column
    if lab is None:
        lab = next((c for c in names if c.lower() in LABEL_COLUMNS), None)
    elif lab not in names:
        raise ConfigError(f"table {str(p)!r} has no column {lab!r}; its columns: {', '.join(names)}")
    feats = [c for c in names if c != lab]
    if columns is not None:
        missing = [c for c in columns if c not in names]
        if missing and len(feats) == len(columns) and not any(c in names for c in columns):
            feats = feats  # a CSV without the training header: taken in order
        elif missing:
            raise ConfigError(f"table {str(p)!r} lacks the column(s) {', '.join(missing)} the model was fitted on")
        else:
            feats = list(columns)
    if not feats:
        raise ConfigError(f"table {str(p)!r} has no feature columns")
    x = np.empty((len(df), len(feats)), np.float64)
    for j, c in enumerate(feats):
        col = df[c].str.strip()
        empty = (col == "") | col.str.lower().isin(("nan", "na", "null", "none"))
        if empty.any():
            i = int(np.flatnonzero(empty.to_numpy())[0])
            raise ConfigError(f"table {str(p)!r}, line {i + 2}, column {c!r}: empty or NaN cell; fill it or drop "
                              "the row")
        num = pd.to_numeric(col, errors="coerce")
        bad = num.isna().to_numpy()
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ConfigError(f"table {str(p)!r}: column {c!r} is not numeric (line {i + 2}: {col.iloc[i]!r}); "
                              "drop it or encode it as numbers")
        x[:, j] = num.to_numpy(np.float64)
        if not np.all(np.isfinite(x[:, j])):
            i = int(np.flatnonzero(~np.isfinite(x[:, j]))[0])
            raise ConfigError(f"table {str(p)!r}, line {i + 2}, column {c!r}: infinite value")
    y = None
    if lab is not None:
        y = _labels(df[lab].str.strip().to_numpy(), f"table {str(p)!r}, column {lab!r}", offset=2, what="line")
    return Table(x, y, feats, [f"{p.name}:{i + 2}" for i in range(len(df))], str(p))


def _read_array(p: Path, ext: str) -> Table:
    try:
        if ext == ".npy":
            x, y = np.load(p, allow_pickle=False), None
        else:
            with np.load(p, allow_pickle=False) as z:
                keys = list(z.keys())
                xk = next((k for k in _X_KEYS if k in keys), keys[0] if len(keys) == 1 else None)
                if xk is None:
                    raise ConfigError(f"table {str(p)!r}: no features array (named {', '.join(_X_KEYS)}); it holds "
                                      f"{', '.join(keys)}")
                yk = next((k for k in _Y_KEYS if k in keys), None)
                x, y = z[xk], (z[yk] if yk else None)
    except (ValueError, OSError, EOFError) as e:
        if isinstance(e, ConfigError):
            raise
        raise ConfigError(f"table {str(p)!r}: cannot read ({' '.join(str(e).split())})") from None
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2 or not np.issubdtype(x.dtype, np.number) or np.issubdtype(x.dtype, np.complexfloating):
        raise ConfigError(f"table {str(p)!r}: features must be a 2-D numeric array, got {x.dtype} of shape "
                          f"{x.shape}")
    x = x.astype(np.float64)
    bad = ~np.isfinite(x)
    if bad.any():
        i, j = map(int, np.argwhere(bad)[0])
        raise ConfigError(f"table {str(p)!r}, row {i}, column {j}: NaN or infinite cell; fill it or drop the row")
    yy = None if y is None else _labels(np.asarray(y).ravel(), f"table {str(p)!r} labels", offset=0, what="row")
    if yy is not None and len(yy) != len(x):
        raise ConfigError(f"table {str(p)!r}: {len(yy)} labels for {len(x)} rows")
    return Table(x, yy, [f"x{j}" for j in range(x.shape[1])], [f"{p.name}[{i}]" for i in range(len(x))], str(p))


def _labels(values: np.ndarray, where: str, offset: int, what: str) -> np.ndarray:
    out = np.empty(len(values), np.int64)
    for i, v in enumerate(values):
        s = str(v).strip().lower()
        if s in ("0", "0.0", "false"):
            out[i] = 0
        elif s in ("1", "1.0", "true"):
            out[i] = 1
        else:
            raise ConfigError(f"{where}, {what} {i + offset}: label {v!r} must be 0 (normal) or 1 (anomaly)")
    return out


def _read_labels(p: Path, n: int) -> np.ndarray:
    if p.suffix.lower() in (".npy", ".npz"):
        t = _read_array(p, p.suffix.lower())
        y = t.y if t.y is not None else _labels(t.x.ravel(), f"label file {str(p)!r}", 0, "row")
    else:
        with open(p, newline="") as f:
            rows = [r for r in csv.reader(f) if r and any(c.strip() for c in r)]
        if rows and rows[0][-1].strip().lower() in ("label", "y", "is_anomaly", "anomaly"):
            rows = rows[1:]
        y = _labels(np.array([r[-1] for r in rows]), f"label file {str(p)!r}", 1, "line")
    if len(y) != n:
        raise ConfigError(f"label file {str(p)!r} has {len(y)} labels for {n} rows")
    return y


def table_array(x: Any, n_features: int | None = None) -> np.ndarray:
    """A 2-D array of rows (numpy, torch, pandas) as float64, checked like a table file."""
    a = np.asarray(x.cpu() if isinstance(x, torch.Tensor) else x)
    if a.ndim == 1:
        a = a[:, None]
    if a.ndim != 2:
        raise ConfigError(f"rows must be a 2-D array, got shape {a.shape}")
    try:
        a = a.astype(np.float64)
    except (TypeError, ValueError):
        raise ConfigError("rows must be numeric") from None
    bad = ~np.isfinite(a)
    if bad.any():
        i, j = map(int, np.argwhere(bad)[0])
        raise ConfigError(f"row {i}, column {j}: NaN or infinite value")
    if n_features is not None and a.shape[1] != n_features:
        raise ConfigError(f"rows have {a.shape[1]} features; the model was fitted on {n_features}")
    return a


# ------------------------------------------------------------------------------------------ example folders

def write_example_folder(root: str | os.PathLike, dataset: str = "fmnist", normal: int = 0, n_train: int = 1000,
                         n_test: int = 500, anomaly_share: float = 0.5, seed: int = 0,
                         data_root: str | None = None) -> dict[str, Path]:
    """Write a bundled dataset's images as PNG files, the layout ``adcore fit`` reads: ``root/train/normal/``
    (``n_train`` training images of class ``normal``) and ``root/test/normal/``, ``root/test/anomalous/``
    (``n_test`` test images, ``anomaly_share`` of them from the other classes). Returns the two folders."""
    from .data import load_images
    root = Path(root)
    tr, te = load_images(dataset, "train", data_root), load_images(dataset, "test", data_root)
    rng = np.random.default_rng([seed, 2323])
    normal_train = np.flatnonzero(tr.y.numpy() == normal)
    pick = np.sort(rng.choice(normal_train, min(n_train, len(normal_train)), replace=False))
    test_y = (te.y.numpy() != normal).astype(np.int64)
    n_anom = int(round(anomaly_share * n_test))
    idx = {0: np.flatnonzero(test_y == 0), 1: np.flatnonzero(test_y == 1)}
    chosen = {0: np.sort(rng.choice(idx[0], min(n_test - n_anom, len(idx[0])), replace=False)),
              1: np.sort(rng.choice(idx[1], min(n_anom, len(idx[1])), replace=False))}

    def save(x: torch.Tensor, folder: Path, names: Sequence[str]) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        for img, name in zip(x.numpy(), names):
            Image.fromarray(img[0] if img.shape[0] == 1 else img.transpose(1, 2, 0)).save(folder / name)

    save(tr.x[torch.from_numpy(pick)], root / "train" / "normal", [f"train_{i:05d}.png" for i in pick])
    for lab, sub in ((0, "normal"), (1, "anomalous")):
        save(te.x[torch.from_numpy(chosen[lab])], root / "test" / sub, [f"test_{i:05d}.png" for i in chosen[lab]])
    return {"train": root / "train", "test": root / "test"}
