"""Sweeps: run a list of configurations into the results store (local executor; a Ray executor follows)."""
from __future__ import annotations

import os
from typing import Any, Callable, Iterable

import pandas as pd

from .experiment import RunConfig
from .results import ResultStore, run_grid


def execute(configs: Iterable[RunConfig], store: ResultStore | str | os.PathLike, *, executor: str = "local",
            address: str | None = None, device: str | None = None, progress: bool = True,
            runner: Callable[..., dict[str, Any]] | None = None) -> pd.DataFrame:
    """Run every configuration missing from ``store``; return the records of all of them. ``runner`` runs one
    configuration (default: ``adcore.experiment.run``; chapters with their own config class pass theirs)."""
    if executor != "local":
        raise ValueError(f"unknown executor {executor!r}; choose 'local'")
    return run_grid(configs, store, device=device, progress=progress, **({"runner": runner} if runner else {}))
