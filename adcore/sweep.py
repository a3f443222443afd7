"""Sweeps: run a list of configurations into the results store (local executor; a Ray executor follows)."""
from __future__ import annotations

import os
from typing import Iterable

import pandas as pd

from .experiment import RunConfig
from .results import ResultStore, run_grid


def execute(configs: Iterable[RunConfig], store: ResultStore | str | os.PathLike, *, executor: str = "local",
            address: str | None = None, device: str | None = None, progress: bool = True) -> pd.DataFrame:
    """Run every configuration missing from ``store``; return the records of all of them."""
    if executor != "local":
        raise ValueError(f"unknown executor {executor!r}; choose 'local'")
    return run_grid(configs, store, device=device, progress=progress)
