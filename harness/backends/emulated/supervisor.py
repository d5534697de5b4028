"""The detached owner of a CLI-started cluster: ``harness cluster up`` runs this.

``python -m harness.backends.emulated.supervisor RUN_DIR`` reads ``RUN_DIR/spec.json``,
starts an :class:`EmulatedCluster`, keeps ``RUN_DIR/cluster.json`` (the state file
that ``status`` and ``down`` read) up to date, and stops everything on SIGTERM or
SIGINT. The cluster's processes are tied to this one (PDEATHSIG), so even a
SIGKILL of the supervisor leaves nothing behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from harness.backends.emulated.capacity import clean_stale
from harness.backends.emulated.cluster import ClusterSpec, EmulatedCluster
from harness.backends.emulated.placement import load_placement, node_names, random_placement
from results.links import LinkProfile
from results.topology import Topology
from settlers.economy import load_economy

__all__ = ["SPEC_FILE", "STATE_FILE", "read_state", "write_json"]

STATE_FILE = "cluster.json"
SPEC_FILE = "spec.json"


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Atomically (rename), so a reader never sees half a file."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, path)


def read_state(run_dir: Path) -> dict[str, Any] | None:
    try:
        data: dict[str, Any] = json.loads((run_dir / STATE_FILE).read_text())
        return data
    except (OSError, json.JSONDecodeError):
        return None


def _placement(spec: dict[str, Any], pods: list[str]) -> dict[str, str] | None:
    choice = spec.get("placement") or "spread"
    if choice == "spread":
        return None
    if choice == "random":
        nodes = ([n["name"] for n in spec["topology"]["nodes"]] if spec.get("topology")
                 else node_names(spec["nodes"]))
        return random_placement(pods, nodes, spec.get("seed"))
    return load_placement(Path(choice))


async def _run(run_dir: Path) -> int:
    spec = json.loads((run_dir / SPEC_FILE).read_text())
    state: dict[str, Any] = {"status": "starting", "supervisor_pid": os.getpid(),
                             "started_at": time.time(), "backend": "local"}
    write_json(run_dir / STATE_FILE, state)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    # Groups left by a cluster whose supervisor was SIGKILLed go now (capacity.py).
    with contextlib.suppress(OSError):
        clean_stale()
    try:
        economy = load_economy(spec.get("economy"))
        pods = [f"{i.name}-{r}" for i in economy for r in range(i.replicas)]
        cluster_spec = ClusterSpec(
            nodes=spec["nodes"],
            link=LinkProfile(spec["latency_ms"], spec["bandwidth_mbps"] or float("inf")),
            economy=economy, protocol=spec["protocol"], run_dir=run_dir,
            prometheus=spec.get("prometheus"),
            topology=(Topology.model_validate(spec["topology"]) if spec.get("topology")
                      else None),
            node_cpu_m=spec.get("node_cpu_m"), cpu_scale=spec.get("cpu_scale"))
        starting = asyncio.ensure_future(EmulatedCluster.start(cluster_spec,
                                                               _placement(spec, pods)))
        stopping = asyncio.ensure_future(stop.wait())
        await asyncio.wait({starting, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if not starting.done():   # told to stop while starting: start() cleans up on cancel
            starting.cancel()
            await asyncio.gather(starting, return_exceptions=True)
            write_json(run_dir / STATE_FILE, {**state, "status": "stopped"})
            return 0
        stopping.cancel()
        cluster = starting.result()
    except Exception as exc:
        traceback.print_exc()
        write_json(run_dir / STATE_FILE, {**state, "status": "failed", "error": str(exc)})
        return 1
    try:
        write_json(run_dir / STATE_FILE, {**state, "status": "ready", **cluster.describe()})
        await stop.wait()
    finally:
        write_json(run_dir / STATE_FILE, {**state, "status": "stopping", **cluster.describe()})
        await cluster.stop()
        write_json(run_dir / STATE_FILE, {**state, "status": "stopped"})
    return 0


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit("usage: python -m harness.backends.emulated.supervisor RUN_DIR")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    sys.exit(asyncio.run(_run(Path(sys.argv[1]))))


if __name__ == "__main__":
    main()
