"""Faults and cleanup: crashed pods, failed starts, the CLI's up/status/down, no leaks."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.backends.emulated import ClusterError, ClusterSpec, EmulatedCluster
from harness.backends.emulated.procs import port_in_use
from harness.backends.pids import pid_alive
from settlers.client import OrderError, open_client
from settlers.economy import load_economy

pytestmark = pytest.mark.slow

CHAIN = load_economy().subset(["flour"])


def _procs_mentioning(text: str) -> list[int]:
    """Live processes whose command line mentions ``text`` (our run directory)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if text in cmdline and int(entry.name) != os.getpid() and pid_alive(int(entry.name)):
                found.append(int(entry.name))
    return found


async def _wait_until(predicate: object, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        await asyncio.sleep(0.1)
    return False


async def test_a_crashed_pod_shows_and_orders_through_it_fail_clearly(tmp_path: Path) -> None:
    spec = ClusterSpec(nodes=2, economy=CHAIN, prometheus=False, run_dir=tmp_path)
    async with await EmulatedCluster.start(spec) as cluster:
        grain = next(p for p in cluster.pods if p.name == "grain-0")
        os.kill(grain.pid, signal.SIGKILL)
        assert await _wait_until(lambda: cluster.pod_status()["grain-0"].startswith("crashed"))
        assert cluster.pod_status()["flour-0"] == "running"
        async with open_client(cluster.entry("flour"), "http", timeout=10) as client:
            t = time.monotonic()
            with pytest.raises(OrderError) as err:
                await client.produce("flour", 1, 16)
        assert err.value.kind == "upstream"
        assert "grain" in str(err.value)
        assert time.monotonic() - t < 5    # an error, not a hang
    assert _procs_mentioning(str(tmp_path)) == []


async def test_a_failed_start_leaves_nothing_behind(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    from harness.backends.emulated import cluster as cluster_module

    squatter = socket.socket()   # every port the cluster picks is this taken one
    squatter.bind(("127.0.0.1", 0))
    squatter.listen()
    monkeypatch.setattr(cluster_module, "free_port", lambda: squatter.getsockname()[1])
    spec = ClusterSpec(nodes=2, economy=CHAIN, prometheus=False, run_dir=tmp_path)
    try:
        with pytest.raises(ClusterError, match="address already in use"):
            await EmulatedCluster.start(spec)
    finally:
        squatter.close()
    assert _procs_mentioning(str(tmp_path)) == []


def _harness(*args: str, run_dir: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", "from harness.cli import main; main()",
                           "cluster", *args,
                           "--run-dir", str(run_dir)], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "COLUMNS": "200"})


def test_cli_up_status_down_leaves_no_process_or_port(tmp_path: Path) -> None:
    economy = tmp_path / "chain.yaml"
    economy.write_text(CHAIN.to_yaml())
    run_dir = tmp_path / "run"
    up = _harness("up", "--nodes", "2", "--economy", str(economy), "--placement", "spread",
                  "--link", "lan", "--topology", "zones", run_dir=run_dir)
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        state = json.loads((run_dir / "cluster.json").read_text())
        assert state["entries"]["flour"] in up.stdout
        assert state["metrics_url"] in up.stdout
        status = _harness("status", run_dir=run_dir)
        assert status.returncode == 0, status.stdout + status.stderr
        assert "grain-0" in status.stdout and "ready" in status.stdout
        # the topology table: each node's zone (the zones preset deals them round robin)
        rows = [[c.strip() for c in re.split(r"[│|┃]", line) if c.strip()]
                for line in status.stdout.splitlines()]
        assert ["node-1", "region-1", "zone-a", "-", "-"] in rows, status.stdout
        assert ["node-2", "region-1", "zone-b", "-", "-"] in rows, status.stdout
        grain = next(p["pid"] for p in state["pods"] if p["name"] == "grain-0")
        os.kill(grain, signal.SIGKILL)
        assert asyncio.run(_wait_until(lambda: not pid_alive(grain)))
        status = _harness("status", "--json", run_dir=run_dir)
        assert status.returncode == 2
        health = {p["name"]: p["health"] for p in json.loads(status.stdout)["pods"]}
        assert health == {"grain-0": "crashed (process gone)", "flour-0": "ready"}
    finally:
        down = _harness("down", run_dir=run_dir)
    assert down.returncode == 0, down.stdout + down.stderr
    pids = [state["supervisor_pid"], state["mesh_pid"], *(p["pid"] for p in state["pods"])]
    pids += [state["prometheus_pid"]] if state["prometheus_pid"] else []
    assert not [pid for pid in pids if pid_alive(pid)]
    ports = [p["port"] for p in state["pods"]]
    ports += [int(addr.rsplit(":", 1)[1]) for addr in state["entries"].values()]
    assert not [port for port in ports if port_in_use(port)]
    assert _procs_mentioning(str(run_dir)) == []
    again = _harness("status", run_dir=run_dir)
    assert again.returncode == 1 and "No cluster is running" in again.stdout


def test_killing_the_supervisor_takes_the_cluster_with_it(tmp_path: Path) -> None:
    economy = tmp_path / "one.yaml"
    economy.write_text(load_economy().subset(["grain"]).to_yaml())
    run_dir = tmp_path / "run"
    up = _harness("up", "--nodes", "1", "--economy", str(economy), "--no-prometheus",
                  run_dir=run_dir)
    assert up.returncode == 0, up.stdout + up.stderr
    state = json.loads((run_dir / "cluster.json").read_text())
    os.kill(state["supervisor_pid"], signal.SIGKILL)   # no chance to clean up
    deadline = time.monotonic() + 10
    while _procs_mentioning(str(run_dir)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _procs_mentioning(str(run_dir)) == []
    _harness("down", run_dir=run_dir)


_SCRIPT = """
import asyncio, sys
from pathlib import Path
from harness.backends.emulated import ClusterSpec, EmulatedCluster
from settlers.economy import load_economy

async def main():
    spec = ClusterSpec(nodes=2, economy=load_economy().subset(["flour"]), prometheus=False,
                       run_dir=Path(sys.argv[1]))
    async with await EmulatedCluster.start(spec):
        print("ready", flush=True)
        await asyncio.sleep(3600)

asyncio.run(main())
"""


def test_ctrl_c_in_a_program_using_the_api_stops_the_cluster(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-c", _SCRIPT, str(tmp_path)],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    assert len(_procs_mentioning(str(tmp_path))) >= 3   # the program, the mesh, two pods
    proc.send_signal(signal.SIGINT)
    proc.wait(30)
    assert _procs_mentioning(str(tmp_path)) == []


def test_ctrl_c_while_cli_up_waits_leaves_nothing(tmp_path: Path) -> None:
    economy = tmp_path / "chain.yaml"
    economy.write_text(CHAIN.to_yaml())
    run_dir = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-c", "from harness.cli import main; main()",
                             "cluster", "up", "--economy", str(economy), "--nodes", "2",
                             "--no-prometheus", "--run-dir", str(run_dir)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 60
    while not (run_dir / "cluster.json").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode in (1, 130), out
    assert _procs_mentioning(str(run_dir)) == []


@pytest.mark.parametrize("which", [0, 2], ids=["pod-port", "mesh-egress-port"])
async def test_a_port_taken_meanwhile_is_replaced(
        which: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    from harness.backends.emulated import cluster as cluster_module
    from harness.backends.emulated.procs import free_port

    squatter = socket.socket()
    squatter.bind(("127.0.0.1", 0))
    squatter.listen()
    taken = squatter.getsockname()[1]
    calls = iter(range(1000))   # free_port() order: the 2 pods' ports, then egress ports

    def port() -> int:
        return taken if next(calls) == which else free_port()

    monkeypatch.setattr(cluster_module, "free_port", port)
    spec = ClusterSpec(nodes=1, economy=CHAIN, prometheus=False, run_dir=tmp_path)
    try:
        async with await EmulatedCluster.start(spec) as cluster:
            assert taken not in cluster.ports()
            async with open_client(cluster.entry("flour"), "http") as client:
                assert (await client.produce("flour", 1, 64)).payload_bytes == 64
    finally:
        squatter.close()
