"""Results store: one JSON file per finished run, named by a hash of its configuration.

Why a folder of files: a record is written to a temporary file and renamed into place, which is atomic on
POSIX file systems, so an interrupted run leaves no partial record and any number of workers (processes,
machines on a shared file system) can write at once without a lock. Re-running a grid skips every
configuration whose file exists.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterable

import pandas as pd
from tqdm.auto import tqdm

from .experiment import RunConfig, run


class CorruptRecordError(ValueError):
    """A record file that is not valid JSON (e.g. written by hand or truncated by a broken copy)."""


def config_hash(cfg: RunConfig) -> str:
    blob = json.dumps(cfg.key(), sort_keys=True, default=str)
    return hashlib.sha1(blob.encode()).hexdigest()[:16]


class ResultStore:
    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    def file(self, cfg: RunConfig) -> Path:
        return self.path / f"{config_hash(cfg)}.json"

    def has(self, cfg: RunConfig) -> bool:
        return self.file(cfg).exists()

    def write(self, cfg: RunConfig, record: dict[str, Any]) -> Path:
        """Atomically write ``record`` for ``cfg`` (temp file + fsync + rename)."""
        self.path.mkdir(parents=True, exist_ok=True)
        target = self.file(cfg)
        # The temporary name is hidden and does not end in .json, so a writer killed mid-write leaves nothing
        # that reads as a record.
        fd, tmp = tempfile.mkstemp(dir=self.path, prefix=".tmp-", suffix=".part")
        try:
            with os.fdopen(fd, "w") as f:
                json.dump({**record, "config_hash": target.stem}, f, default=str)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return target

    def files(self) -> list[Path]:
        """The record files (hidden temporary files excluded)."""
        return sorted(f for f in self.path.glob("*.json") if not f.name.startswith("."))

    def records(self) -> list[dict[str, Any]]:
        out = []
        for f in self.files():
            try:
                out.append(json.loads(f.read_text()))
            except json.JSONDecodeError as e:
                raise CorruptRecordError(f"corrupt result record {f}: {e}. Delete the file to re-run "
                                         f"that configuration.") from e
        return out

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.records())

    def __len__(self) -> int:
        return len(self.files())


def run_grid(configs: Iterable[RunConfig], store: ResultStore | str | os.PathLike, *, device: str | None = None,
             progress: bool = True, runner: Callable[..., dict[str, Any]] = run, many: bool = False,
             max_models: int | None = None, **many_opts: Any) -> pd.DataFrame:
    """Run every configuration that has no record yet; return the records of all ``configs`` as a frame.

    ``many=True`` trains compatible configurations K at a time (``adcore.multi.run_many``; K <= ``max_models``;
    ``many_opts``: its ``mode``, ``amp``, ``channels_last``, ``compile``), writing each record as soon as it is
    ready; ``runner`` is then not used."""
    store = store if isinstance(store, ResultStore) else ResultStore(store)
    configs = list(dict.fromkeys(configs))
    todo = [c for c in configs if not store.has(c)]
    if many:
        from .multi import run_many

        run_many(todo, device=device, progress=progress, max_models=max_models, on_record=store.write, **many_opts)
    else:
        for cfg in tqdm(todo, desc="runs", disable=not progress or not todo):
            store.write(cfg, runner(cfg, device=device, progress=False))
    wanted = {config_hash(c) for c in configs}
    df = store.frame()
    return df[df["config_hash"].isin(wanted)].reset_index(drop=True) if len(df) else df
