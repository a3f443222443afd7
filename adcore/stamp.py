"""The reproducibility stamp every record and every saved model carries: package versions, the adcore commit (when
adcore runs from a git checkout), the device and the number of threads. Wall times are the record's own
(``train_time``, ``test_time``, ``wall_time``). The stamp goes into the record, never into the store's key."""
from __future__ import annotations

import functools
import importlib.metadata
import platform
import subprocess
from pathlib import Path
from typing import Any

import torch

from ._version import __version__
from .environment import env

PACKAGES = ("torch", "numpy", "scikit-learn", "pandas", "pillow")
_REPO = Path(__file__).resolve().parent.parent


@functools.lru_cache(maxsize=None)
def versions() -> str:
    """"adcore 0.x, python 3.x, torch 2.x, ..." for the packages a result depends on."""
    out = [f"adcore {__version__}", f"python {platform.python_version()}"]
    for name in PACKAGES:
        try:
            out.append(f"{name} {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            pass
    return ", ".join(out)


@functools.lru_cache(maxsize=None)
def commit() -> str | None:
    """The git commit of the checkout adcore is imported from (``+dirty`` when tracked files differ from it), or
    None outside a checkout (an installed wheel) or without git."""
    if not (_REPO / ".git").exists():
        return None
    try:
        head = subprocess.run(["git", "-C", str(_REPO), "rev-parse", "--short=12", "HEAD"], capture_output=True,
                              text=True, timeout=10)
        if head.returncode != 0:
            return None
        dirty = subprocess.run(["git", "-C", str(_REPO), "status", "--porcelain", "-uno"], capture_output=True,
                               text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return head.stdout.strip() + ("+dirty" if dirty else "")


def stamp(device_name: str | None = None) -> dict[str, Any]:
    """``versions``, ``commit``, ``threads`` (torch's intra-op threads; ``OMP_NUM_THREADS`` when set) and, when
    given, ``device``: flat keys for a record."""
    out: dict[str, Any] = {"versions": versions(), "commit": commit(), "threads": torch.get_num_threads()}
    if omp := env("OMP_NUM_THREADS"):
        out["omp_num_threads"] = omp
    if device_name is not None:
        out["device"] = device_name
    return out


def stamp_lines(rec: dict[str, Any]) -> dict[str, str]:
    """The stamp of a record (or a model file's metadata) as run-card rows; keys absent from older records are
    left out."""
    rows = {"adcore commit": rec.get("commit"), "package versions": rec.get("versions"),
            "threads": rec.get("threads")}
    return {k: str(v) for k, v in rows.items() if v is not None and v == v}
