"""A real two-node Ray cluster under faults: a head node (``ray start --head`` on 127.0.0.1) and a second node
joining it, a sweep against its address, the second node's processes killed mid-sweep; every configuration ends
recorded exactly once (the killed node's runs retried on the head node) and the test shuts the cluster down.

Only processes this test started are ended: each carries a unique ``RAYTEST_TAG`` in its environment and is found
by it (``ray stop`` would stop every Ray process of the user on the machine)."""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest

from adcore import runner
from adcore.runner import ResultStore, config_hash

ROOT = Path(__file__).resolve().parents[1]
RAY = Path(sys.executable).parent / "ray"
N_RUNS, SECONDS = 8, 2.0

SPEC = '''
import os, time
from dataclasses import dataclass
from pathlib import Path
from adcore.config import RunSpec

@dataclass(frozen=True)
class Nap(RunSpec):
    """Sleeps; says on which test node it ran (the node's TESTNODE) and leaves a marker when it starts."""
    TAG = "nap"
    i: int = 0
    seconds: float = 1.0
    markers: str = ""

    PATHS = ("markers",)

    def run(self, device=None, progress=True, **kw):
        node = os.environ.get("TESTNODE", "?")
        Path(self.markers, f"{self.i}-{node}-{os.getpid()}").touch()
        time.sleep(self.seconds)
        return {**self.key(), "node": node, "pid": os.getpid()}
'''


def _free_block(n: int, taken: set[int]) -> list[int]:
    """``n`` consecutive ports, each free now and none in ``taken``.

    One contiguous block per node, so that no two of a node's ports can coincide: with ports picked one at a time,
    a node's 41-port worker range once swallowed its own metrics port, and ``ray start`` refused (CI, stop 17).
    The block lies below Linux's ephemeral range (32768-60999), where the kernel hands out no ports of its own."""
    import random
    rng = random.Random()
    for _ in range(200):
        base = rng.randrange(20000, 32000 - n)
        block = list(range(base, base + n))
        if taken.intersection(block):
            continue
        socks = []
        try:
            for port in block:
                s = socket.socket()
                socks.append(s)
                s.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
        taken.update(block)
        return block
    raise RuntimeError(f"found no {n} consecutive free ports between 20000 and 32000")


def _tagged(tag: str, node: str | None = None) -> list[int]:
    """This test's processes (by the tag in their environment, read from /proc), those of one node when ``node``
    is given."""
    out = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            env = dict(kv.split(b"=", 1) for kv in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0") if b"=" in kv)
        except OSError:  # gone, or not ours
            continue
        if env.get(b"RAYTEST_TAG") == tag.encode() and (node is None or env.get(b"TESTNODE") == node.encode()):
            out.append(int(pid))
    return out


def _kill(pids: list[int]) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


def _ray_start(args: list[str], env: dict, node: str, ports: list[int]) -> None:
    """Starts one node on the 48 ports of ``ports``: 7 for its services, 41 for its workers."""
    cmd = [str(RAY), "start", "--node-ip-address=127.0.0.1", "--num-cpus=1", "--num-gpus=0",
           "--object-store-memory=100000000", "--disable-usage-stats",
           f"--node-manager-port={ports[0]}", f"--object-manager-port={ports[1]}",
           f"--dashboard-agent-listen-port={ports[2]}", f"--dashboard-agent-grpc-port={ports[3]}",
           f"--metrics-export-port={ports[4]}", f"--runtime-env-agent-port={ports[5]}",
           f"--min-worker-port={ports[7]}", f"--max-worker-port={ports[47]}", *args]
    p = subprocess.run(cmd, env={**env, "TESTNODE": node}, capture_output=True, text=True, timeout=180)
    assert p.returncode == 0, f"ray start ({node}) failed:\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}"


@pytest.mark.skipif(not RAY.exists(), reason="no ray command next to this Python (pip install 'adcore[cluster]')")
def test_sweep_survives_a_killed_node(tmp_path):
    pytest.importorskip("ray")
    if not Path("/proc/self/environ").exists():
        pytest.skip("finds its processes through /proc (Linux)")
    tag = uuid.uuid4().hex
    temp = tempfile.mkdtemp(prefix="rt", dir="/tmp")  # short: Ray's socket paths must stay under 108 bytes
    (tmp_path / "napspec.py").write_text(SPEC)
    markers, store = tmp_path / "markers", tmp_path / "store"
    markers.mkdir()
    with runner._quick_helper_imports():  # the helper processes start quickly on a busy machine (see runner)
        env = dict(os.environ)
    env.update(RAYTEST_TAG=tag, OMP_NUM_THREADS="1", RAY_USAGE_STATS_ENABLED="0", RAY_AUTH_MODE="disabled",
               PYTHONPATH=os.pathsep.join([str(tmp_path), str(ROOT), *filter(None, [env.get("PYTHONPATH")])]),
               # the head notices a dead node within ~3 s (default ~30 s)
               RAY_health_check_period_ms="500", RAY_health_check_timeout_ms="1000",
               RAY_health_check_failure_threshold="4", RAY_health_check_initial_delay_ms="1000")
    env.pop("RAY_ADDRESS", None)
    taken: set[int] = set()
    head_ports, node_ports = _free_block(48, taken), _free_block(48, taken)
    head_port = head_ports[6]  # the GCS port, inside the head's block
    address = f"127.0.0.1:{head_port}"
    driver = None
    try:
        _ray_start(["--head", f"--port={head_port}", "--include-dashboard=false", f"--temp-dir={temp}"], env, "1", head_ports)
        _ray_start([f"--address={address}"], env, "2", node_ports)
        code = ("import json, sys\nfrom napspec import Nap\nfrom adcore.runner import execute\n"
                f"configs = [Nap(i=i, seconds={SECONDS}, markers={str(markers)!r}) for i in range({N_RUNS})]\n"
                f"r = execute(configs, {str(store)!r}, executor='ray', address={address!r}, retries=4, "
                "progress=False, group_size=1, cpus_per_run=1, gpus_per_run=0)\n"
                "print(json.dumps({'ran': r.ran, 'failed': r.failed, 'errors': [f.error for f in r.failures]}))\n")
        driver = subprocess.Popen([sys.executable, "-c", code], env={**env, "TESTNODE": "driver"},
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 180
        while not any(m.name.split("-")[1] == "2" for m in markers.iterdir()):  # a run has started on node 2
            assert driver.poll() is None, driver.communicate()
            assert time.monotonic() < deadline, "no run started on the second node"
            time.sleep(0.05)
        started_on_2 = {int(m.name.split("-")[0]) for m in markers.iterdir() if m.name.split("-")[1] == "2"}
        doomed = [r for r in ResultStore(store).records()] if store.exists() else []
        _kill(_tagged(tag, "2"))  # the raylet, its workers, its agents: the whole second node
        out, err = driver.communicate(timeout=240)
        assert driver.returncode == 0, err[-3000:]
        summary = json.loads(out.strip().splitlines()[-1])
        assert summary == {"ran": N_RUNS, "failed": 0, "errors": []}, err[-3000:]

        sys.path.insert(0, str(tmp_path))
        try:
            from napspec import Nap
            expected = {config_hash(Nap(i=i, seconds=SECONDS, markers=str(markers))) for i in range(N_RUNS)}
        finally:
            sys.path.remove(str(tmp_path))
            sys.modules.pop("napspec", None)
        s = ResultStore(store)
        records = s.records()
        assert {f.stem for f in s.files()} == expected and len(records) == N_RUNS  # exactly once each
        finished_before = {r["i"] for r in doomed}
        for r in records:  # a run that was in flight on the killed node finished on the head node
            if r["i"] in started_on_2 - finished_before:
                assert r["node"] == "1", r
        retried = started_on_2 - finished_before
        assert retried, "the kill hit no run in flight"
        assert all(len([m for m in markers.iterdir() if m.name.startswith(f"{i}-")]) >= 2 for i in retried)
    finally:
        if driver is not None and driver.poll() is None:
            driver.kill()
        _kill(_tagged(tag))
        time.sleep(0.5)
        _kill(_tagged(tag))  # anything a dying process started meanwhile
        shutil.rmtree(temp, ignore_errors=True)
    assert not _tagged(tag)
