"""The results store and the one runner: ``execute(configs, store, executor=...)``.

Store
-----
One JSON file per finished run, named by a hash of its configuration's ``key()``. A record is written to a
hidden temporary file and renamed into place, which is atomic on POSIX file systems: an interrupted run leaves
no partial record, and any number of workers (processes, machines on a shared file system) can write at once
without a lock. Executing a grid again runs only the configurations without a record.

Runner
------
:func:`execute` takes any mix of run configurations (:mod:`adcore.config`). The missing ones are planned once
into jobs: configurations with equal ``group_key()`` train K at a time in the same steps (``run_group``; K =
``group_size``, by default :data:`GROUP_SIZE` for the device; on CUDA the trainer splits a job that does not fit
in the GPU's free memory), everything else alone. Jobs run in this process
(``executor="local"``) or as Ray tasks (``executor="ray"``, one task per job asking for ``cpus_per_run`` CPUs and
``gpus_per_run`` GPUs; workers on other machines must see the store at the same path). A failing job of several
runs is split into single runs; a single run that raises is retried ``retries`` times, then reported with its
error while the others go on. A run whose loss became non-finite is reported at once (retrying would repeat it).
"""
from __future__ import annotations

import atexit
import contextlib
import hashlib
import importlib.util
import itertools
import json
import os
import shutil
import sys
import tempfile
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import pandas as pd

from .config import RunSpec, atomic_write, check_choice, check_device, check_results
from .environment import ENV, env

# Default K per job. CUDA: an upper bound; the trainer trains as many of a job's models at once as fit in the GPU's
# free memory (adcore.train.models_that_fit, ~270 LeNets of CIFAR-10 at batch 128 + 128 on a 141 GB GPU) and the rest
# in further chunks. 200 = the table's 400 runs in 2 jobs (one per head); the largest K bench/gpu.py measures.
# CPU: 10 (the loop mode gains little from more; smaller jobs report sooner).
GROUP_SIZE = {"cuda": 200, "cpu": 10}


def config_hash(cfg: RunSpec) -> str:
    blob = json.dumps(cfg.key(), sort_keys=True, default=str)
    return hashlib.sha1(blob.encode()).hexdigest()[:16]


class CorruptRecordError(ValueError):
    """A record file that is not a valid record (e.g. truncated by a broken copy, or edited by hand)."""


REPAIR_HINT = ("run again with --repair (execute(..., repair=True)) to move it aside into corrupt/ and re-run its "
               "configuration")


class ResultStore:
    """One JSON file per record, ``<config hash>.json``; see the module docstring."""

    STALE_TMP_S = 3600  # temporary files of writers killed mid-write are removed by repair() after this long

    def __init__(self, path: str | os.PathLike):
        check_results(path)
        self.path = Path(path)

    def file(self, cfg: RunSpec) -> Path:
        return self.path / f"{config_hash(cfg)}.json"

    def has(self, cfg: RunSpec) -> bool:
        return self.file(cfg).exists()

    def write(self, cfg: RunSpec, record: dict[str, Any]) -> Path:
        """Atomically write ``record`` for ``cfg`` (temp file + fsync + rename). Writers of the same record at
        once (two sweeps on one store) each replace the file whole: one record remains, never a mix."""
        self.path.mkdir(parents=True, exist_ok=True)
        target = self.file(cfg)
        # The temporary name is hidden and does not end in .json: a writer killed mid-write leaves no record.
        with atomic_write(target, "w", prefix=".tmp-", fsync=True) as f:
            json.dump({**record, "config_hash": target.stem}, f, default=str)
        return target

    def files(self) -> list[Path]:
        """The record files (hidden temporary files excluded)."""
        return sorted(f for f in self.path.glob("*.json") if not f.name.startswith("."))

    @staticmethod
    def read(f: Path) -> dict[str, Any]:
        """One record file; :class:`CorruptRecordError` (naming the file and the way out) unless it is a JSON
        object whose ``config_hash`` is its file name."""
        try:
            rec = json.loads(f.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            problem = f"not valid JSON ({e})"
        else:
            if isinstance(rec, dict) and rec.get("config_hash") == f.stem:
                return rec
            problem = ("not a record (no config_hash)" if not isinstance(rec, dict) or "config_hash" not in rec
                       else f"its config_hash {rec['config_hash']!r} is not its file name")
        raise CorruptRecordError(f"corrupt result record {f}: {problem}; {REPAIR_HINT}")

    def records(self) -> list[dict[str, Any]]:
        return [self.read(f) for f in self.files()]

    def corrupt(self) -> list[Path]:
        """The record files that :meth:`read` rejects."""
        bad = []
        for f in self.files():
            try:
                self.read(f)
            except CorruptRecordError:
                bad.append(f)
        return bad

    def repair(self) -> list[Path]:
        """Move every corrupt record into ``corrupt/`` (kept for inspection; its configuration then has no record
        and runs again) and remove temporary files that writers killed mid-write left over an hour ago. Returns
        the new paths of the moved records."""
        moved = []
        for f in self.corrupt():
            dest_dir = self.path / "corrupt"
            dest_dir.mkdir(exist_ok=True)
            dest = dest_dir / f.name
            n = 1
            while dest.exists():
                dest, n = dest_dir / f"{f.stem}.{n}{f.suffix}", n + 1
            os.replace(f, dest)
            moved.append(dest)
        now = time.time()
        for tmp in self.path.glob(".tmp-*.part"):
            with contextlib.suppress(OSError):
                if now - tmp.stat().st_mtime > self.STALE_TMP_S:
                    tmp.unlink()
        return moved

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.records())

    def __len__(self) -> int:
        return len(self.files())


# ------------------------------------------------------------------------------------------------ outcome


@dataclass
class Failure:
    configs: list[RunSpec]
    error: str
    attempts: int


@dataclass
class Result:
    """What one :func:`execute` call did; ``frame`` holds the records of every configuration asked for."""

    total: int  # distinct configurations asked for
    already: int  # had a record before this call
    ran: int = 0  # finished in this call
    failures: list[Failure] = field(default_factory=list)
    skipped: int = 0  # missing runs left for later by max_runs
    frame: pd.DataFrame | None = None

    @property
    def failed(self) -> int:
        return sum(len(f.configs) for f in self.failures)

    def summary(self) -> str:
        lines = [f"{self.total} runs: {self.already} already done, {self.ran} ran now, {self.failed} failed"
                 + (f", {self.skipped} left for a later call (--max-runs)" if self.skipped else "")]
        if self.failures:
            rows = [(config_hash(c), c.describe(), f.attempts, f.error) for f in self.failures for c in f.configs]
            lines.append(f"\n{self.failed} failed run(s), each after its last attempt:")
            lines.append(table(("config", "run", "tries", "error"), rows))
        return "\n".join(lines)

    def raise_for_failures(self) -> "Result":
        if self.failures:
            raise SweepError(self)
        return self


class SweepError(RuntimeError):
    """Some runs failed after their retries; ``.result`` holds every failure and the finished records."""

    def __init__(self, result: Result):
        super().__init__(result.summary())
        self.result = result


def table(header: Sequence[str], rows: list[Sequence[Any]], max_rows: int = 40) -> str:
    """A plain-text table for the terminal (long cells cut at 100 characters)."""
    shown = [[str(x) for x in r] for r in rows[:max_rows]]
    shown = [[c if len(c) <= 100 else c[:97] + "..." for c in r] for r in shown]
    widths = [max(len(h), *(len(r[i]) for r in shown)) if shown else len(h) for i, h in enumerate(header)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    out = [fmt.format(*header).rstrip(), fmt.format(*("-" * w for w in widths))]
    out += [fmt.format(*r).rstrip() for r in shown]
    if len(rows) > max_rows:
        out.append(f"... and {len(rows) - max_rows} more")
    return "\n".join(out)


def _error_text(e: BaseException | str) -> str:
    if isinstance(e, str):
        return e
    cause = getattr(e, "cause", None)  # ray.exceptions.RayTaskError carries the task's own exception
    e = cause if isinstance(cause, BaseException) else e
    msg = str(e).strip().splitlines()
    return f"{type(e).__name__}: {msg[0] if msg else ''}".strip()


# ------------------------------------------------------------------------------------------------- jobs


def plan(configs: Sequence[RunSpec], group_size: int) -> list[list[RunSpec]]:
    """Jobs, in order of their first configuration: configurations with equal ``group_key()`` in chunks of at
    most ``group_size``, everything else (key None, or ``group_size`` 1) alone."""
    groups: dict[Any, list[RunSpec]] = defaultdict(list)
    jobs: list[list[RunSpec]] = []
    for cfg in configs:
        key = cfg.group_key() if group_size > 1 else None
        if key is None:
            jobs.append([cfg])
            continue
        key = (type(cfg), key)
        if not groups[key]:
            jobs.append(groups[key])
        groups[key].append(cfg)
    return [job[a:a + group_size] for job in jobs for a in range(0, len(job), group_size)]


def run_job(configs: list[RunSpec], store_path: str, device: str | None = None,
            env: dict[str, str] | None = None, threads: int | None = None,
            opts: dict[str, Any] | None = None) -> list[tuple[str, dict | None, str | None]]:
    """Run one job (one configuration, or a group as one K-model job), writing each record atomically as it is
    ready. Returns (config hash, record, None) or (config hash, None, error) per configuration: a run whose loss
    became non-finite fails alone; any other exception fails the whole job. The body of every Ray task."""
    for k, v in (env or {}).items():
        os.environ[k] = v
    if threads:
        import torch
        torch.set_num_threads(threads)
    store = ResultStore(store_path)
    out: list[tuple[str, dict | None, str | None]] = []

    def record(cfg, rec):
        store.write(cfg, rec)
        out.append((config_hash(cfg), rec, None))

    def error(cfg, exc):
        text = _error_text(exc)
        if cfg.describe() not in text:  # a failure names its run (every kind: its key's description)
            kind, _, msg = text.partition(": ")
            text = f"{kind}: run {cfg.describe()}: {msg}"
        out.append((config_hash(cfg), None, text))

    if len(configs) == 1:
        try:
            record(configs[0], configs[0].run(device=device, progress=False, **(opts or {})))
        except FloatingPointError as e:
            error(configs[0], e)
    else:
        type(configs[0]).run_group(configs, device=device, progress=False, on_record=record, on_error=error,
                                   **(opts or {}))
    return out


class _Progress:
    """Runs done / total with an ETA (tqdm); an ``on_progress(done, total)`` callback; and, when
    ``$ADCORE_PROGRESS`` names a file, one "done total" line appended per update (``make book`` shows it on the
    terminal while a notebook's kernel runs)."""

    def __init__(self, total: int, enabled: bool, desc: str, callback: Callable[[int, int], Any] | None = None):
        self.total, self.n, self.failed, self.callback, self.bar = total, 0, 0, callback, None
        self.file = env("ADCORE_PROGRESS")
        if enabled and total:
            from tqdm.auto import tqdm
            self.bar = tqdm(total=total, desc=desc, unit="run", smoothing=0.05)
        self._report()

    def _report(self) -> None:
        if self.callback is not None:
            self.callback(self.n, self.total)
        if self.file:
            with open(self.file, "a") as f:
                f.write(f"{self.n} {self.total}\n")

    def done(self, n: int, failed: int = 0) -> None:
        self.n, self.failed = self.n + n, self.failed + failed
        if self.bar is not None:
            self.bar.update(n)
            if self.failed:
                self.bar.set_postfix(failed=self.failed)
        self._report()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _drive(jobs: list[list[RunSpec]], retries: int, submit: Callable, wait: Callable, progress: _Progress,
           result: Result, window: int | None = None) -> None:
    """The scheduling loop of both executors: keep up to ``window`` jobs in flight (all when None), split failed
    groups into single runs, retry failed single runs, record what still fails."""
    queue = deque((job, 1) for job in jobs)
    pending: dict[Any, tuple[list[RunSpec], int]] = {}
    while queue or pending:
        while queue and (window is None or len(pending) < window):
            job, attempt = queue.popleft()
            pending[submit(job)] = (job, attempt)
        for handle, outcome in wait(list(pending)):
            job, attempt = pending.pop(handle)
            if isinstance(outcome, BaseException):
                if len(job) > 1:  # a K-model job failed as a whole (e.g. out of memory): its runs one by one
                    queue.extend(([c], 1) for c in job)
                elif attempt <= retries:
                    queue.append((job, attempt + 1))
                else:
                    result.failures.append(Failure(job, _error_text(outcome), attempt))
                    progress.done(1, failed=1)
                continue
            errors = {h: e for h, _, e in outcome if e is not None}
            for cfg in job:
                if config_hash(cfg) in errors:
                    result.failures.append(Failure([cfg], errors[config_hash(cfg)], attempt))
            result.ran += len(job) - len(errors)
            progress.done(len(job), failed=len(errors))


def _local(jobs, store, device, retries, progress, result, opts):
    outcomes: dict[int, Any] = {}
    counter = itertools.count()

    def submit(job):
        h = next(counter)
        try:
            outcomes[h] = run_job(job, str(store.path), device, opts=opts)
        except Exception as e:  # KeyboardInterrupt and SystemExit end the sweep; records so far stay
            outcomes[h] = e
        return h

    def wait(handles):
        return [(h, outcomes.pop(h)) for h in handles]

    _drive(jobs, retries, submit, wait, progress, result, window=1)


# ---- Ray -------------------------------------------------------------------------------------------------------

_SHIM_DIR: str | None = None


@contextlib.contextmanager
def _quick_helper_imports():
    """Ray's raylet gives its helper processes (dashboard agent, ...) about 15 s to start. Each imports ``ray``,
    which imports jsonschema, which builds a grammar at import when the optional ``rfc3987_syntax`` package is
    installed (the book's Jupyter stack brings it): ~4 s of CPU per process, enough on a small, busy machine
    for a local Ray instance to time out during startup. Ray never validates IRIs, so processes of a local
    instance that adcore starts get a stand-in module that declines to load (jsonschema then skips that check).
    ``ADCORE_RAY_SHIM=0`` turns this off."""
    global _SHIM_DIR
    if env("ADCORE_RAY_SHIM") == "0" or importlib.util.find_spec("rfc3987_syntax") is None:
        yield
        return
    if _SHIM_DIR is None or not Path(_SHIM_DIR).is_dir():
        _SHIM_DIR = tempfile.mkdtemp(prefix="adcore-ray-")
        atexit.register(shutil.rmtree, _SHIM_DIR, True)
        Path(_SHIM_DIR, "rfc3987_syntax.py").write_text(
            'raise ImportError("left out by adcore in Ray processes: slow to import, not used by Ray")\n')
    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = _SHIM_DIR + (os.pathsep + old if old else "")
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = old


def _import_ray():
    try:
        import ray
    except ImportError as e:
        raise ImportError("the ray executor needs Ray: pip install 'adcore[cluster]' (or pip install "
                          "'ray[default]>=2.9')") from e
    return ray


def init_ray(address: str | None = None, **kwargs: Any) -> bool:
    """Connect to Ray: to ``address`` (or ``$RAY_ADDRESS``) when given, else start a local instance (no
    dashboard; ``kwargs`` such as ``num_cpus=2`` go to ``ray.init``). Returns False when already connected."""
    ray = _import_ray()
    if ray.is_initialized():
        return False
    if address or env("RAY_ADDRESS"):
        ray.init(address=address, **kwargs)
    else:
        kwargs.setdefault("include_dashboard", False)
        with _quick_helper_imports():
            ray.init(**kwargs)
    return True


def _ray(jobs, store, device, retries, progress, result, opts, address, gpus_per_run, cpus_per_run):
    ray = _import_ray()
    started = init_ray(address)
    try:
        if gpus_per_run is None:
            gpus_per_run = 1.0 if ray.cluster_resources().get("GPU", 0) > 0 else 0.0
        # Data locations set in the driver's environment travel with the tasks.
        env_ = {k: v for k in ENV if k.startswith("ADCORE_") and k != "ADCORE_RAY_SHIM" and (v := env(k))}
        task = ray.remote(run_job).options(num_cpus=cpus_per_run, num_gpus=gpus_per_run, max_retries=0)
        store_path = str(store.path.resolve())
        jobs_of: dict[Any, list[RunSpec]] = {}
        warned = False

        def submit(job):
            ref = task.remote(job, store_path, device, env_, max(1, int(cpus_per_run)), opts)
            jobs_of[ref] = job
            return ref

        def wait(refs):
            nonlocal warned
            ready, rest = ray.wait(refs, num_returns=1)
            if rest:  # collect whatever else has finished meanwhile
                ready += ray.wait(rest, num_returns=len(rest), timeout=0)[0]
            out = []
            for ref in ready:
                job = {config_hash(c): c for c in jobs_of.pop(ref)}
                try:
                    outcome = ray.get(ref)
                except Exception as e:  # RayTaskError (the job raised), WorkerCrashedError, NodeDiedError, ...
                    out.append((ref, e))
                    continue
                for h, rec, _ in outcome:
                    if rec is not None and not store.has(job[h]):  # the worker's store is not the driver's
                        if not warned:
                            warned = True
                            print(f"warning: a Ray worker's record is not visible in {store_path}: the results "
                                  "folder must be on a file system that every node shares at the same path. The "
                                  "driver writes a copy of each record it receives.", file=sys.stderr)
                        store.write(job[h], rec)
                out.append((ref, outcome))
            return out

        _drive(jobs, retries, submit, wait, progress, result)
    finally:
        if started:
            ray.shutdown()


# ---------------------------------------------------------------------------------------------- execute


EXECUTORS = ("local", "ray")


def check_execution(executor: str = "local", device: str | None = None) -> None:
    """The executor is one of :data:`EXECUTORS`, and a local run's device exists on this machine. :func:`execute`
    checks this first; the notebooks call it in their first code cell, so that a wrong executor or device given
    through papermill fails there, before a chapter's settings are expanded, with the same one-line message."""
    check_choice("executor", executor, EXECUTORS)
    if executor == "local":  # on Ray the workers' devices count, not the driver's
        check_device(device)


def execute(configs: Iterable[RunSpec], store: ResultStore | str | os.PathLike, *, executor: str = "local",
            address: str | None = None, device: str | None = None, progress: bool = True,
            gpus_per_run: float | None = None, cpus_per_run: float = 1, retries: int = 2,
            max_runs: int | None = None, group_size: int | None = None,
            on_progress: Callable[[int, int], Any] | None = None, repair: bool = False, **opts: Any) -> Result:
    """Run every configuration that has no record in ``store``; ``result.frame`` holds the records of all of
    them. Never raises for a failing run: see ``result.failures`` (``result.raise_for_failures()`` raises
    :class:`SweepError`). ``max_runs`` caps the runs started by this call; ``group_size`` caps K (1: every run
    alone); ``opts`` (``amp``, ``channels_last``, ``compile``, ``mode``) go to every run. A corrupt record of one of
    ``configs`` raises :class:`CorruptRecordError` before anything runs; ``repair=True`` moves corrupt records
    aside first (:meth:`ResultStore.repair`), so their configurations run again."""
    check_execution(executor, device)
    store = store if isinstance(store, ResultStore) else ResultStore(store)
    configs = list(dict.fromkeys(configs))
    if repair and store.path.is_dir():
        store.repair()
    # The records these configurations already have, read once here: a corrupt one stops everything before any run,
    # and the rest go into result.frame with those written below.
    records, bad = {}, []
    for f in map(store.file, configs):
        if f.exists():
            try:
                records[f] = store.read(f)
            except CorruptRecordError:
                bad.append(f)
    if bad:
        raise CorruptRecordError(f"corrupt result record {bad[0]}" + (f" (and {len(bad) - 1} more)" if len(bad) > 1
                                                                      else "") + f"; {REPAIR_HINT}")
    todo = [c for c in configs if store.file(c) not in records]  # the records read above: no second stat
    result = Result(total=len(configs), already=len(configs) - len(todo))
    if max_runs is not None and len(todo) > max_runs:
        result.skipped = len(todo) - max_runs
        todo = todo[:max_runs]
    if todo:
        if group_size is None:
            gpu = executor == "ray" and (gpus_per_run or 0) > 0 or (device or "").startswith("cuda") or (
                device is None and executor == "local" and _cuda())
            group_size = GROUP_SIZE["cuda" if gpu else "cpu"]
        store.path.mkdir(parents=True, exist_ok=True)
        jobs = plan(todo, group_size)
        bar = _Progress(len(todo), progress, f"runs ({executor})", on_progress)
        try:
            if executor == "local":
                _local(jobs, store, device, retries, bar, result, opts)
            else:
                _ray(jobs, store, device, retries, bar, result, opts, address, gpus_per_run, cpus_per_run)
        finally:
            bar.close()
    for f in map(store.file, configs):  # these records only: other files of the store may be anything
        if f not in records and f.exists():
            records[f] = store.read(f)
    result.frame = pd.DataFrame([records[f] for f in sorted(records)])
    return result


def _cuda() -> bool:
    import torch
    return torch.cuda.is_available()
