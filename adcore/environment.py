"""The environment variables adcore reads, and the one function that reads them (:func:`env`): everything a run's
result can depend on from outside its configuration is listed here. Entry points (the CLI, the book builder)
set some of them for their child processes; no other module reads ``os.environ``."""
from __future__ import annotations

import os

ENV = {
    "ADCORE_DATA": "the data root: datasets, OE sources, tabular sets (a root given in a config wins)",
    "ADCORE_CACHE": "downloads and decoded arrays (default ~/.cache/adcore)",
    "ADCORE_CHANNELS_LAST": "the CPU memory layout of every run: auto | on | off",
    "ADCORE_PROGRESS": "a file each runs-done update is appended to (the book builder sets it)",
    "ADCORE_RAY_SHIM": "0: start a local Ray without adcore's import stand-in",
    "RAY_ADDRESS": "a Ray cluster to run on (ray.init's own variable)",
    "OMP_NUM_THREADS": "recorded in each run's stamp when set",
}


def env(name: str) -> str | None:
    """The value of one of adcore's environment variables (:data:`ENV`); None when unset or empty. Modules ask
    here instead of reading ``os.environ``, so that everything a run's result can depend on from outside is
    listed in one place."""
    if name not in ENV:
        raise KeyError(f"{name} is not one of adcore's environment variables ({', '.join(ENV)})")
    return os.environ.get(name) or None


def data_env() -> str | None:
    """``$ADCORE_DATA``: the data root of the datasets, the OE sources and the tabular sets (a given ``root`` /
    ``data_root`` / ``oe_root`` wins everywhere)."""
    return env("ADCORE_DATA")
