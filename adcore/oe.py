"""Outlier Exposure (OE) sources: auxiliary images used as known anomalies during training.

Every source draws subsets that are *nested*: for one seed, ``sample(n, seed)`` is a prefix of ``sample(m, seed)``
when n < m, so an OE-size sweep (the paper's Fig. 3: 1, 2, 4, ... samples) adds images instead of drawing new ones.
The seed draws with ``random.seed(seed); random.sample(range(N), n)``, which does not guarantee this: CPython
switches sampling algorithm with n. Here the order depends only on (N, seed), see :func:`nested_indices`.

In-memory sources return uint8 tensors n x C x H x W; streamed ones (80M Tiny Images, ImageNet-22K) return a
Dataset of uint8 C x H x W tensors, decoded on access so DataLoader workers can share the work. Images are brought
to the normal data's shape: colour <-> grey (ITU-R 601 luma, as PIL's 'L') and antialiased resizing.
"""
from __future__ import annotations

import functools
import hashlib
import json
import math
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Literal, Protocol

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from adcore import data
from adcore.augment import grey
from adcore.environment import data_env

OE_SOURCES = ("natural", "cifar100", "emnist-letters", "tinyimages", "noise", "imagenet22k")

Shape = tuple[int, int, int]  # C x H x W

# Natural photos bundled inside scikit-image itself (no download): binary, synthetic and pooch-fetched images are
# left out, and so are near-duplicates (cat = chelsea, the right view of stereo_motorcycle). Colour data (C = 3)
# crops only the colour photos, so that "grey" is no shortcut for telling OE from normal data; grey data uses all.
NATURAL_PHOTOS_RGB = ("astronaut", "chelsea", "coffee", "hubble_deep_field", "immunohistochemistry", "retina",
                      "rocket", "stereo_motorcycle")
NATURAL_PHOTOS = (*NATURAL_PHOTOS_RGB, "brick", "camera", "cell", "clock", "coins", "grass", "gravel", "moon",
                  "page", "text")
NATURAL_SIZE = 2**20  # virtual number of distinct crops
_NATURAL_KEY = 1234  # crop i is drawn from default_rng([_NATURAL_KEY, i])

TINY_IMAGES_RECORDS = 79_302_016  # records in the full tiny_images.bin (the size is read from the file)
_TINY_RECORD = 3072  # 32 x 32 x 3 bytes

# The 30 ImageNet-30 classes the seed removes from ImageNet-22K (its imagenet22k.py), as folder names (wnids).
IMAGENET30_WNIDS = (
    "n12267677", "n02690373", "n02701002", "n01698640", "n02787622", "n02793495", "n02837789", "n03196217",
    "n02268443", "n03255030", "n03384352", "n03443371", "n03452741", "n07697537", "n03544143", "n03717622",
    "n03788195", "n03804744", "n03891332", "n03938244", "n04086273", "n03187595", "n04147183", "n04252077",
    "n04254680", "n01498041", "n07745940", "n04389033", "n04442312", "n09472597")

_PERMUTE_MAX = 2**24  # up to this N an explicit permutation (<= 128 MB); beyond it a keyed bijection
FEISTEL_ROUNDS = 8

NPY_MAGIC = b"\x93NUMPY"


def load_npy(path: Path) -> np.ndarray:
    """``np.load(path, mmap_mode="r")`` for a file that must be a plain ``.npy`` array: anything else (a pickle,
    text, a truncated header) raises one ``ValueError`` naming the file, never numpy's ``allow_pickle`` advice
    (object arrays are never loaded: unpickling runs code)."""
    with open(path, "rb") as f:
        head = f.read(len(NPY_MAGIC))
    if head != NPY_MAGIC:
        raise ValueError(f"{path}: not a .npy array file (it does not start with numpy's header); give the 300K "
                         "random images .npy (N x 32 x 32 x 3 uint8) or tiny_images.bin")
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise ValueError(f"{path}: unreadable .npy array file ({' '.join(str(e).split())})") from None


class OESource(Protocol):
    """A pool of OE images; ``size`` is the largest n ``sample`` accepts."""

    size: int

    def sample(self, n: int, seed: int) -> torch.Tensor | Dataset: ...


def make_oe(name: str, shape: Shape, root: str | os.PathLike | None = None, download: bool = True,
            **kwargs) -> OESource:
    """Build the OE source ``name`` for normal data of ``shape`` (C, H, W); ``kwargs`` go to the source class."""
    _check_shape(shape)
    if name == "natural":
        return NaturalCrops(shape, **kwargs)
    if name == "noise":
        return Noise(shape, **kwargs)
    if name in ("cifar100", "emnist-letters"):
        return ClassSubset(data.load_images(name, "train", root, download), shape, **kwargs)
    if name == "tinyimages":
        return TinyImages(root, shape, **kwargs)
    if name == "imagenet22k":
        return ImageFolderOE(root, shape, **kwargs)
    raise ValueError(f"unknown OE source {name!r}; valid names: {', '.join(OE_SOURCES)}")


# --------------------------------------------------------------------------------------------------- subsets


class NestedIndex:
    """Position -> index of the first n of a pseudo-random order of range(N) that depends only on (N, seed), so
    subsets of one seed are nested. Up to 2^24 an explicit permutation (at most 128 MB); beyond, a keyed Feistel
    bijection maps a position to its index in O(1), so a view of all 79M Tiny Images costs no memory and no
    start-up time (an explicit permutation would take 630 MB and ~30 s)."""

    def __init__(self, N: int, n: int, seed: int):
        if N <= 0:
            raise ValueError(f"cannot draw from an empty pool (N={N})")
        if not 0 < n <= N:
            raise ValueError(f"subset size n={n} out of range: must be 1..{N}")
        self.N, self.n = N, n
        self.perm = np.random.default_rng(seed).permutation(N)[:n] if N <= _PERMUTE_MAX else None
        self.keys = None if self.perm is not None else \
            np.random.default_rng(seed).integers(0, 2**63, size=FEISTEL_ROUNDS, dtype=np.uint64)

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, pos: np.ndarray | int) -> np.ndarray:
        pos = np.asarray(pos, dtype=np.int64)
        if self.perm is not None:
            return self.perm[pos]
        return feistel(pos.astype(np.uint64), self.N, self.keys)


def nested_indices(N: int, n: int, seed: int) -> np.ndarray:
    """The first n of a pseudo-random order of range(N) that depends only on (N, seed): subsets are nested."""
    index = NestedIndex(N, n, seed)
    chunk = 2**22
    return np.concatenate([index[np.arange(a, min(a + chunk, n))] for a in range(0, n, chunk)])


def feistel(pos: np.ndarray, N: int, keys: np.ndarray) -> np.ndarray:
    """Balanced Feistel network on [0, 4**k) >= N, cycle-walked into [0, N): a bijection of range(N)."""
    half = max(1, math.ceil((N - 1).bit_length() / 2))
    mask = np.uint64((1 << half) - 1)

    def encrypt(v: np.ndarray) -> np.ndarray:
        left, right = v >> np.uint64(half), v & mask
        for k in keys:
            left, right = right, left ^ (_mix64(right ^ k) & mask)
        return (left << np.uint64(half)) | right

    out = encrypt(pos)
    while (outside := out >= N).any():  # fewer than 4 rounds expected, as 4**k < 4 N
        out[outside] = encrypt(out[outside])
    return out.astype(np.int64)


def _mix64(z: np.ndarray) -> np.ndarray:
    """SplitMix64's finalizer: a fast 64-bit hash (uint64 arithmetic wraps)."""
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def _check_n(n: int, size: int) -> None:
    if not 0 < n <= size:
        raise ValueError(f"OE sample size n={n} out of range: must be 1..{size}")


def _check_shape(shape: Shape) -> None:
    if len(shape) != 3 or shape[0] not in (1, 3) or min(shape[1:]) <= 0:
        raise ValueError(f"shape must be (C, H, W) with C in (1, 3), not {shape}")


# ------------------------------------------------------------------------------------------------ conversion


def fit(x: torch.Tensor, shape: Shape) -> torch.Tensor:
    """Bring uint8 images N x C x H x W to ``shape``: colour <-> grey, then an antialiased bilinear resize."""
    c, h, w = shape
    if x.shape[1] == 3 and c == 1:
        x = grey(x.float()).round_().to(torch.uint8)
    elif x.shape[1] == 1 and c == 3:
        x = x.expand(-1, 3, -1, -1)
    if tuple(x.shape[-2:]) != (h, w):
        x = F.interpolate(x.float(), size=(h, w), mode="bilinear", antialias=True, align_corners=False)
        x = x.round_().clamp_(0, 255).to(torch.uint8)
    return x.contiguous()


def _resize_pil(img: Image.Image, box: tuple[float, float, float, float], shape: Shape) -> np.ndarray:
    """Crop ``box`` out of ``img`` and resize it to H x W (antialiased), as C x H x W uint8."""
    out = np.asarray(img.resize((shape[2], shape[1]), Image.BILINEAR, box=box, reducing_gap=2.0))
    return out[None] if out.ndim == 2 else out.transpose(2, 0, 1)


def _center_box(width: int, height: int, shape: Shape) -> tuple[float, float, float, float]:
    """The largest centred box with the target's aspect ratio (resize shorter side + centre crop)."""
    aspect = shape[2] / shape[1]
    bw, bh = min(width, height * aspect), min(height, width / aspect)
    return ((width - bw) / 2, (height - bh) / 2, (width + bw) / 2, (height + bh) / 2)


def _pil_mode(shape: Shape) -> str:
    return "RGB" if shape[0] == 3 else "L"


# ---------------------------------------------------------------------------------------------- lazy pools


class LazyImages(Dataset):
    """An OE pool whose images are produced when drawn: ``fetch(idx)`` -> uint8 batch N x C x H x W. ``heavy``:
    producing an image costs enough (reading a large file, decoding a JPEG) for the trainer to prefetch batches in
    DataLoader worker processes; light pools (virtual crops) are produced in the training process."""

    heavy = True
    shape: Shape

    def __len__(self) -> int:  # pools that draw through a NestedIndex ``index``
        return len(self.index)

    def fetch(self, idx: Sequence[int] | torch.Tensor) -> torch.Tensor:
        return torch.stack([self[int(i)] for i in idx])

    def __getitem__(self, i):
        if isinstance(i, (list, tuple, np.ndarray, torch.Tensor)):  # a whole batch (a DataLoader worker's request)
            return self.fetch(i)
        return self.item(int(i))

    def item(self, i: int) -> torch.Tensor:  # subclasses define item or fetch (or both)
        return self.fetch([i])[0]

    @property
    def nbytes(self) -> int:
        return len(self) * int(np.prod(self.shape))

    def materialize(self) -> torch.Tensor:
        return self.fetch(range(len(self)))


class VirtualCrops(LazyImages):
    """The first n crops of a seed's order of :class:`NaturalCrops`, made when first drawn and kept (up to
    ``cache_bytes``): a run over all 2^20 virtual crops starts at once and costs only the crops it draws, and the
    images are the ones ``sample(n, seed)`` would have produced, so nested subsets keep their meaning."""

    heavy = False

    def __init__(self, source: "NaturalCrops", n: int, seed: int, cache_bytes: int = 2**28):
        self.source, self.shape, self.index = source, source.shape, NestedIndex(source.size, n, seed)
        self.cache: dict[int, torch.Tensor] = {}
        self.cache_max = cache_bytes // int(np.prod(self.shape))

    def item(self, i: int) -> torch.Tensor:
        if (img := self.cache.get(i)) is None:
            img = torch.from_numpy(np.ascontiguousarray(self.source.crop(int(self.index[i]))).copy())
            if len(self.cache) < self.cache_max:
                self.cache[i] = img
        return img


# ---------------------------------------------------------------------------------------------------- sources


class NaturalCrops:
    """Random multi-scale crops of the natural photos bundled with scikit-image: an OE source that needs no
    download. Crop i is a pure function of i (photo, log-uniform scale from 1/16 to 1 of the photo's shorter
    side, position, horizontal flip), so the pool is a fixed virtual set of ``NATURAL_SIZE`` images."""

    def __init__(self, shape: Shape, photos: Sequence[str] | None = None):
        _check_shape(shape)
        self.photos = tuple(photos or (NATURAL_PHOTOS_RGB if shape[0] == 3 else NATURAL_PHOTOS))
        self.shape, self.size = shape, NATURAL_SIZE

    def sample(self, n: int, seed: int) -> torch.Tensor:
        return self.virtual(n, seed).materialize()

    def virtual(self, n: int, seed: int) -> VirtualCrops:
        """The crops of ``sample(n, seed)``, made when drawn (see :class:`VirtualCrops`)."""
        _check_n(n, self.size)
        return VirtualCrops(self, n, seed)

    def crop(self, i: int) -> np.ndarray:
        """Crop number i, as uint8 C x H x W."""
        rng = np.random.default_rng([_NATURAL_KEY, i])
        img = _photo(self.photos[rng.integers(len(self.photos))], _pil_mode(self.shape))
        aspect = self.shape[2] / self.shape[1]
        side = min(img.size) * math.exp(rng.uniform(math.log(1 / 16), 0))
        bw, bh = min(side * aspect, img.width), min(side, img.height)
        bw, bh = min(bw, bh * aspect), min(bh, bw / aspect)  # keep the target's aspect ratio inside the photo
        x0, y0 = rng.uniform(0, img.width - bw), rng.uniform(0, img.height - bh)
        out = _resize_pil(img, (x0, y0, x0 + bw, y0 + bh), self.shape)
        return np.ascontiguousarray(out[..., ::-1]) if rng.random() < 0.5 else out


@functools.cache
def _photo(name: str, mode: str) -> Image.Image:
    """Decode a bundled scikit-image photo once per process."""
    import skimage.data

    img = getattr(skimage.data, name)()
    if isinstance(img, tuple):  # stereo_motorcycle: (left, right, disparity)
        img = img[0]
    return Image.fromarray(img).convert(mode)


class Noise:
    """Uniform (or Gaussian: mean 127.5, std 51 = 0.2 of the range, clipped) noise images. Image j of a seed
    comes from ``default_rng([seed, j // 256])``, so samples are nested and deterministic."""

    _BLOCK = 256

    def __init__(self, shape: Shape, dist: Literal["uniform", "gaussian"] = "uniform"):
        _check_shape(shape)
        if dist not in ("uniform", "gaussian"):
            raise ValueError(f"dist must be 'uniform' or 'gaussian', not {dist!r}")
        self.shape, self.dist, self.size = shape, dist, 2**31

    def sample(self, n: int, seed: int) -> torch.Tensor:
        _check_n(n, self.size)
        blocks = [self._block(seed, b) for b in range(-(-n // self._BLOCK))]
        return torch.from_numpy(np.concatenate(blocks)[:n])

    def _block(self, seed: int, b: int) -> np.ndarray:
        rng = np.random.default_rng([seed, b])
        size = (self._BLOCK, *self.shape)
        if self.dist == "uniform":
            return rng.integers(0, 256, size=size, dtype=np.uint8)
        return np.clip(np.rint(rng.normal(127.5, 51.0, size=size)), 0, 255).astype(np.uint8)


class ClassSubset:
    """A labelled dataset (the seed's CIFAR-100 and EMNIST-letters OE) restricted to ``classes`` = k classes
    chosen with the sample's seed; the class sets are nested in k as well."""

    def __init__(self, images: data.ImageSet, shape: Shape, classes: int | None = None):
        _check_shape(shape)
        n_classes = len(images.classes)
        if classes is not None and not 0 < classes <= n_classes:
            raise ValueError(f"classes={classes} out of range: must be 1..{n_classes}")
        self.images, self.shape, self.k = images, shape, classes
        counts = torch.bincount(images.y, minlength=n_classes).sort().values
        # The smallest pool any seed can pick, so every n <= size is valid for every seed.
        self.size = len(images.y) if classes is None else int(counts[:classes].sum())

    def classes_for(self, seed: int) -> tuple[int, ...]:
        """The class labels whose images ``sample(n, seed)`` draws from."""
        n_classes = len(self.images.classes)
        if self.k is None:
            return tuple(range(n_classes))
        return tuple(sorted(nested_indices(n_classes, self.k, seed).tolist()))

    def sample(self, n: int, seed: int) -> torch.Tensor:
        _check_n(n, self.size)
        pool = torch.isin(self.images.y, torch.tensor(self.classes_for(seed))).nonzero().squeeze(1)
        idx = pool[torch.from_numpy(nested_indices(len(pool), n, seed))]
        return torch.cat([fit(self.images.x[part], self.shape) for part in idx.split(4096)])


class TinyImages:
    """80 Million Tiny Images as OE, streamed from ``tiny_images.bin`` (79,302,016 records of 32 x 32 x 3 bytes,
    each stored column-major) or from Hendrycks' ``300K_random_images.npy`` (N x 32 x 32 x 3 uint8).

    The dataset was withdrawn by its authors in 2020 and can no longer be downloaded; only an existing copy works.
    ``exclude``: a text file of 1-based record numbers (one per line, like the seed's ``80mn_cifar_idxs.txt``: the
    Tiny Images that are CIFAR-10 images, test images included), removed from the index space. By default
    (``"auto"``) the seed's list is used when it lies beside ``tiny_images.bin``; without it the OE set may contain
    CIFAR-10 test images, which ``note`` (and a warning) says. The seed re-draws an excluded index uniformly from
    all 79M records with the global RNG; here excluded records are simply not part of the pool, so subsets stay
    nested and deterministic (a deliberate difference)."""

    EXCLUDE_FILE = "80mn_cifar_idxs.txt"

    def __init__(self, root: str | os.PathLike | None, shape: Shape, exclude: str | os.PathLike | None = "auto"):
        _check_shape(shape)
        self.path, self.shape = _find_tiny_images(root), shape
        if exclude == "auto":
            found = self.path.with_name(self.EXCLUDE_FILE)
            exclude = found if found.is_file() and self.path.suffix == ".bin" else None
            self.note = f"excluding the CIFAR images listed in {found}" if exclude else (
                f"no {self.EXCLUDE_FILE} beside {self.path}: the OE set may contain CIFAR-10 (test) images; get the "
                f"list from the seed repository lukasruff/Classification-AD (data/{self.EXCLUDE_FILE}) and put it "
                "there" if self.path.suffix == ".bin" else "300K_random_images.npy (Hendrycks' random subset): the "
                "record-number exclusion list does not apply to it")
            if exclude is None and self.path.suffix == ".bin":
                warnings.warn(self.note, stacklevel=2)
        else:
            self.note = f"excluding the records listed in {exclude}" if exclude else "no exclusion list"
        if self.path.suffix == ".npy":
            if exclude is not None:
                raise ValueError(f"exclude applies to tiny_images.bin record numbers, not to {self.path.name}")
            arr = load_npy(self.path)
            if arr.dtype != np.uint8 or arr.shape[1:] != (32, 32, 3):
                raise ValueError(f"{self.path}: expected N x 32 x 32 x 3 uint8, found {arr.shape} {arr.dtype}")
            records = len(arr)
        else:
            nbytes = self.path.stat().st_size
            if nbytes % _TINY_RECORD:
                raise ValueError(f"{self.path}: {nbytes} bytes is not a whole number of {_TINY_RECORD}-byte "
                                 "records; truncated or not tiny_images.bin")
            records = nbytes // _TINY_RECORD
        self._excluded = _read_exclusions(Path(exclude), records) if exclude is not None else np.zeros(0, np.int64)
        self.size = records - len(self._excluded)

    def sample(self, n: int, seed: int) -> "_TinyImagesDataset":
        _check_n(n, self.size)
        return _TinyImagesDataset(self.path, NestedIndex(self.size, n, seed), self._excluded, self.shape, self.note)


def _find_tiny_images(root: str | os.PathLike | None) -> Path:
    names = ("tiny_images.bin", "300K_random_images.npy")
    if root is not None and Path(root).is_file():
        return Path(root)
    env = data_env()  # a given place is used or fails: the cache only when none is given
    dirs = ([Path(root)] if root is not None else [Path(env), Path(env) / "tinyimages"] if env
            else [data.cache_dir() / "tinyimages"])
    for d in dirs:
        for name in names:
            if (d / name).is_file():
                return d / name
    raise FileNotFoundError(
        f"80 Million Tiny Images not found: looked for {' or '.join(names)} in {', '.join(map(str, dirs))}. "
        "The dataset was withdrawn by its authors (2020) and cannot be downloaded; pass root= to an existing "
        "copy (file or folder) or set ADCORE_DATA, or use another OE source, e.g. 'natural'.")


def _read_exclusions(path: Path, records: int) -> np.ndarray:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: exclusion list not found (one 1-based record number per line)")
    try:
        idx = np.unique(np.loadtxt(path, dtype=np.int64, ndmin=1)) - 1  # the file counts from 1
    except ValueError as e:
        raise ValueError(f"{path}: expected one 1-based record number per line ({e})") from e
    if len(idx) and (idx[0] < 0 or idx[-1] >= records):
        raise ValueError(f"{path}: record numbers must lie in 1..{records}")
    return idx


class _TinyImagesDataset(LazyImages):
    """Records read on access; the record of position i is computed then (no index array is built, so a view of all
    79M records starts at once), and the memmap is opened per process, so pickling to DataLoader workers is cheap."""

    def __init__(self, path: Path, index: NestedIndex, excluded: np.ndarray, shape: Shape, note: str = ""):
        self.path, self.index, self.shape, self.note = path, index, shape, note
        # position k of the kept records is record k + (number of excluded records at or before it)
        self.shift = excluded - np.arange(len(excluded))
        self._arr: np.ndarray | None = None

    def records(self, pos: np.ndarray) -> np.ndarray:
        kept = self.index[pos]
        return kept + np.searchsorted(self.shift, kept, side="right")

    def fetch(self, idx) -> torch.Tensor:
        if self._arr is None:
            self._arr = (load_npy(self.path) if self.path.suffix == ".npy"
                         else np.memmap(self.path, np.uint8, "r").reshape(-1, _TINY_RECORD))
        rec = np.asarray(self._arr[self.records(np.asarray(idx, dtype=np.int64))])
        # .npy: N x H x W x C; .bin: each record column-major (W, H, C fastest first), i.e. C x W x H in C order
        chw = rec.transpose(0, 3, 1, 2) if rec.ndim == 4 else rec.reshape(len(rec), 3, 32, 32).transpose(0, 1, 3, 2)
        return fit(torch.from_numpy(np.ascontiguousarray(chw)), self.shape)

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_arr": None}


IMAGENET22K_DIR = "fall11_whole_extracted"  # the seed's folder: ImageNet-22K's per-synset tars extracted


def find_imagenet22k(root: str | os.PathLike | None = None) -> Path | None:
    """The ImageNet-22K tree (one folder per synset): ``<root>/fall11_whole_extracted`` (the seed's layout) or
    ``<root>`` itself; without ``root``, the same under ``$ADCORE_DATA/imagenet22k``, then
    ``$ADCORE_DATA/fall11_whole_extracted``; the cache folder only when ``$ADCORE_DATA`` is not set. None if no
    such folder exists."""
    env = data_env() if root is None else None  # a given place is used or fails: the cache only when none is given
    base = Path(root) if root is not None else Path(env) / "imagenet22k" if env else data.cache_dir() / "imagenet22k"
    candidates = [base / IMAGENET22K_DIR, base, *([Path(env) / IMAGENET22K_DIR] if env else [])]
    return next((d for d in candidates if d.is_dir()), None)


class FolderIndex:
    """The files of an image-folder tree in torchvision ImageFolder's order (class folders sorted, files sorted
    within), built once per tree and kept on disk in ``$ADCORE_CACHE/index``: the file names are one byte blob
    with offsets, memory-mapped, so an index of ImageNet-22K's 14M files costs no Python strings and loads at once.
    The index is keyed by the tree's path and its class folders' modification times, so adding or removing files
    rebuilds it; building it lists every folder once (with a progress bar)."""

    def __init__(self, folder: str | os.PathLike, progress: bool = True):
        self.folder = Path(folder)
        entries = sorted((e.name, e.stat().st_mtime_ns) for e in os.scandir(self.folder) if e.is_dir())
        self.classes = [name for name, _ in entries]
        key = hashlib.sha1(json.dumps([str(self.folder.resolve()), entries]).encode()).hexdigest()[:16]
        self.path = data.cache_dir() / "index" / f"{self.folder.name}-{key}"
        if not (self.path / "offsets.npy").is_file():
            self._build(progress)
        self.starts = np.load(self.path / "starts.npy")  # first file of class c; starts[-1] = number of files
        self._offsets: np.ndarray | None = None
        self._names: np.ndarray | None = None

    def _build(self, progress: bool) -> None:
        lengths, counts = [], []
        with data.built_atomically(self.path) as tmp, open(tmp / "names.bin", "wb") as blob:
            for c in tqdm(self.classes, desc=f"indexing {self.folder.name} once", unit="folder",
                          disable=not progress, leave=False):
                encoded = [n.encode() for n in data.image_files(self.folder / c)]
                blob.write(b"".join(encoded))
                lengths.append(np.fromiter(map(len, encoded), np.int64, len(encoded)))
                counts.append(len(encoded))
            name_lengths = np.concatenate([np.zeros(0, np.int64), *lengths])
            np.save(tmp / "offsets.npy", np.concatenate([[0], np.cumsum(name_lengths)]).astype(np.int64))
            np.save(tmp / "starts.npy", np.concatenate([[0], np.cumsum(counts, dtype=np.int64)]))

    def __len__(self) -> int:
        return int(self.starts[-1])

    def file(self, i: int) -> str:
        """The path of file number i (in the index's order)."""
        if self._offsets is None:
            self._offsets = np.load(self.path / "offsets.npy", mmap_mode="r")
            blob = self.path / "names.bin"
            self._names = np.memmap(blob, np.uint8, "r") if blob.stat().st_size else np.zeros(0, np.uint8)
        c = int(np.searchsorted(self.starts, i, side="right")) - 1
        a, b = int(self._offsets[i]), int(self._offsets[i + 1])
        return os.path.join(self.folder, self.classes[c], bytes(self._names[a:b]).decode())

    def kept(self, exclude: Sequence[str]) -> np.ndarray:
        """For every class not in ``exclude``, in order: the number of files before it among the kept classes and
        its first file; position k of the kept files is then file ``first[j] + k - before[j]``."""
        excluded = set(exclude)
        keep = np.array([i for i, c in enumerate(self.classes) if c not in excluded], np.int64)
        counts = self.starts[keep + 1] - self.starts[keep]
        return np.stack([np.cumsum(counts) - counts, self.starts[keep], counts])

    def __getstate__(self) -> dict:  # DataLoader workers reopen the memory maps
        return {**self.__dict__, "_offsets": None, "_names": None}


@functools.lru_cache(maxsize=4)
def folder_index(folder: str) -> FolderIndex:
    """The :class:`FolderIndex` of a tree, once per process (a sweep's runs share it)."""
    return FolderIndex(folder)


class ImageFolderOE:
    """An image-folder tree ``<root>/<class>/*`` (ImageNet-22K: ``<root>/fall11_whole_extracted/<wnid>/*``, see
    :func:`find_imagenet22k`), minus the classes in ``exclude`` (default: the seed's 30 ImageNet-30 wnids; only those
    exact synsets, as the seed). Streamed: ``sample`` returns a Dataset over the chosen files, read through the
    tree's cached :class:`FolderIndex`; each image is decoded on access as the normal data are (``Resize(H)`` +
    centre H x W crop, :func:`adcore.data.resize_center`, for square shapes)."""

    def __init__(self, root: str | os.PathLike | None, shape: Shape, exclude: Sequence[str] = IMAGENET30_WNIDS):
        _check_shape(shape)
        folder = find_imagenet22k(root)
        if folder is None:
            where = (f"{Path(root) / IMAGENET22K_DIR} or {root}" if root is not None else
                     "$ADCORE_DATA/imagenet22k[/fall11_whole_extracted], $ADCORE_DATA/fall11_whole_extracted or "
                     f"{data.cache_dir() / 'imagenet22k'}")
            raise FileNotFoundError(f"ImageNet-22K not found: no folder {where} (expected <class folder>/*.JPEG; get "
                                    "fall11_whole.tar from image-net.org and extract its per-synset tars into "
                                    f"{IMAGENET22K_DIR}/<wnid>/)")
        self.index = folder_index(str(folder))
        self.table = self.index.kept(exclude)
        self.shape, self.size = shape, int(self.table[2].sum())
        if not self.size:
            raise FileNotFoundError(f"{folder}: no images in <class folder>/*.JPEG|jpg|png (after excluding "
                                    f"{len(set(exclude))} classes)")

    def file(self, k: int) -> str:
        """The path of kept file number k."""
        before, first, _ = self.table
        j = int(np.searchsorted(before, k, side="right")) - 1
        return self.index.file(int(first[j] + k - before[j]))

    def sample(self, n: int, seed: int) -> "_FileDataset":
        _check_n(n, self.size)
        return _FileDataset(_Files(self, NestedIndex(self.size, n, seed)), self.shape)


class _Files:
    """The paths of a nested subset of an :class:`ImageFolderOE`, computed when asked for (no list of paths)."""

    def __init__(self, source: ImageFolderOE, index: NestedIndex):
        self.source, self.index = source, index

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> str:
        return self.source.file(int(self.index[i]))


class _FileDataset(LazyImages):
    """Image files decoded on access (in DataLoader workers when training)."""

    def __init__(self, files: Sequence[str], shape: Shape):
        self.files, self.shape = files, shape

    def __len__(self) -> int:
        return len(self.files)

    def item(self, i: int) -> torch.Tensor:
        if self.shape[1] == self.shape[2]:
            return torch.from_numpy(data.decode_resized(self.files[i], self.shape[1], _pil_mode(self.shape)))
        with Image.open(self.files[i]) as im:
            img = im.convert(_pil_mode(self.shape))
        return torch.from_numpy(_resize_pil(img, _center_box(img.width, img.height, self.shape), self.shape).copy())
