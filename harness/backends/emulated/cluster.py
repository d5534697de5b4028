"""EmulatedCluster: the whole economy as real processes behind an emulated mesh.

    async with await EmulatedCluster.start(ClusterSpec(nodes=3)) as cluster:
        target = cluster.entry("bread")        # send orders here
        await cluster.relayout({"flour-0": "node-2"})
        df = cluster.traffic_snapshot()
        result = await cluster.move("flour-0", "node-3")   # a new pod flour-1 there
        await cluster.degrade("node-1", latency_ms=30)

``relayout`` re-labels running processes (instant, what the layout experiment
measures); ``move`` replaces a pod by a new process on the target node, as a
Kubernetes migration does (make-before-break or evict; see :meth:`EmulatedCluster.move`).

Start order: the mesh first (it owns every listener, so pods can be told where
their inputs are), then the pods, then Prometheus. Stop is the reverse and is
idempotent; see :mod:`procs` for why nothing outlives the cluster.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import shutil
import signal
import tempfile
import time
import warnings
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import aiohttp
import pandas as pd

from harness.backends.base import MoveResult
from harness.backends.emulated.capacity import CGROUP_ROOT, CapacityStatus, NodeGroups
from harness.backends.emulated.errors import ClusterError
from harness.backends.emulated.meshctl import MeshProcess
from harness.backends.emulated.placement import node_names, spread_placement, validate_placement
from harness.backends.emulated.pods import PodInfo, PodProcess
from harness.backends.emulated.procs import free_port, kill_group, stop_all
from harness.backends.emulated.prometheus import PrometheusServer, find_prometheus
from results.links import LinkProfile, resolve_link
from results.topology import Topology
from settlers.economy import Economy, load_economy
from settlers.quantity import parse_cpu
from settlers.wire import PROTOCOLS, WireProtocol

__all__ = ["TRAFFIC_COLUMNS", "ClusterError", "ClusterSpec", "EmulatedCluster"]

log = logging.getLogger(__name__)

TRAFFIC_COLUMNS = ["source_workload", "destination_workload", "src_node", "dst_node",
                   "request_bytes", "response_bytes", "bytes"]
_MONITOR_PERIOD_S = 0.5
# How `settlers serve` says its port was taken (aiohttp's OSError, our gRPC wrapper).
_PORT_TAKEN = ("address already in use", "cannot listen on", "failed to bind")


@dataclass
class ClusterSpec:
    nodes: int = 5
    link: str | LinkProfile = "edge"
    economy: Economy | None = None
    protocol: WireProtocol = "http"
    run_dir: Path | None = None
    prometheus: bool | None = None        # None: use it if the binary exists
    start_timeout: float = 120.0          # 19 Python pods on 2 busy cores take a while
    # Links per pair of nodes (its nodes replace `nodes`); None: `link` for every pair.
    topology: Topology | None = None
    # Node CPU capacity in Kubernetes millicores (one for all nodes, or per node), enforced
    # on the pods' processes with a cgroup CPU quota at `cpu_scale` machine millicores per
    # millicore (None: fit the nodes into this machine, capacity.fit_scale). None: no
    # capacity, the pods share the machine's cores (the default).
    node_cpu_m: int | Mapping[str, int] | None = None
    cpu_scale: float | None = None
    cgroup_root: Path = CGROUP_ROOT

    def resolved_link(self) -> LinkProfile:
        return resolve_link(self.link)

    def capacities(self, nodes: list[str]) -> dict[str, int] | None:
        """Each node's CPU capacity in millicores, or None when capacity is off."""
        if self.node_cpu_m is None:
            return None
        if isinstance(self.node_cpu_m, int):
            # A topology node's own CPU wins over the one for all nodes, as in the models
            # (Topology.model_nodes).
            own = {} if self.topology is None else {
                n.name: parse_cpu(n.cpu) for n in self.topology.nodes if n.cpu is not None}
            return {n: own.get(n, self.node_cpu_m) for n in nodes}
        missing = [n for n in nodes if n not in self.node_cpu_m]
        if missing:
            raise ValueError(f"node_cpu_m names no capacity for {', '.join(missing)}")
        return {n: int(self.node_cpu_m[n]) for n in nodes}


class EmulatedCluster:
    """A running emulated cluster; make one with :meth:`start`."""

    def __init__(self) -> None:  # use start()
        self.spec = ClusterSpec()
        self.link = self.spec.resolved_link()
        self.economy: Economy = load_economy()
        self.node_names: list[str] = []
        self.pods: list[PodInfo] = []
        self.placement: dict[str, str] = {}
        self.run_dir = Path()
        self.prometheus_url: str | None = None
        self.metrics_url = ""
        self._owns_run_dir = False
        self._mesh: MeshProcess | None = None
        self._procs: dict[str, PodProcess] = {}
        self._prom: PrometheusServer | None = None
        self._monitor: asyncio.Task[None] | None = None
        self._crashed: set[str] = set()
        self._stopped = False
        self._groups: NodeGroups | None = None
        # Pods replaced by a move: their processes (stopped, kept for pids() and stop())
        # and the ports they had; every pod name ever used (names are never reused).
        self._old_procs: list[PodProcess] = []
        self._old_ports: list[int] = []
        self._names: set[str] = set()
        self._moving: set[str] = set()

    # -- lifecycle ---------------------------------------------------------------

    @classmethod
    async def start(cls, spec: ClusterSpec,
                    placement: Mapping[str, str] | None = None) -> EmulatedCluster:
        self = cls()
        self.spec = spec
        self.link = spec.resolved_link()
        self.economy = spec.economy or load_economy()
        self.node_names = (node_names(spec.nodes) if spec.topology is None
                           else spec.topology.node_names)
        if spec.protocol not in PROTOCOLS:
            raise ValueError(f"protocol must be 'http' or 'grpc', got {spec.protocol!r}")
        self.pods = [PodInfo(f"{item.name}-{i}", item.name, "") for item in self.economy
                     for i in range(item.replicas)]
        names = [p.name for p in self.pods]
        self._names = set(names)
        chosen = (spread_placement(names, self.node_names) if placement is None
                  else validate_placement(placement, names, self.node_names, complete=True))
        use_prom = spec.prometheus
        binary = find_prometheus()
        if use_prom and binary is None:
            raise ClusterError("prometheus=True but no `prometheus` binary is on PATH; install "
                               "Debian's package (tools/setup does) or pass prometheus=None")
        if spec.run_dir is None:
            self.run_dir = Path(tempfile.mkdtemp(prefix="settlers-cluster-"))
            self._owns_run_dir = True
        else:
            self.run_dir = spec.run_dir
            self.run_dir.mkdir(parents=True, exist_ok=True)
        try:
            await self._boot(chosen, binary if use_prom is not False else None)
        except BaseException:
            await self.stop()
            raise
        return self

    async def _boot(self, placement: dict[str, str], prometheus: str | None) -> None:
        t0 = time.monotonic()
        self._set_placement(placement)
        economy_file = self.run_dir / "economy.yaml"
        economy_file.write_text(self.economy.to_yaml())
        for attempt in range(3):
            # Ports are chosen here, so pods and the mesh start side by side (Python
            # start-up is the slow part); a port someone else took meanwhile means
            # another attempt with fresh ports.
            for pod in self.pods:
                pod.port = free_port()
            egress = {p.name: {src: free_port() for src in self.economy[p.item].inputs}
                      for p in self.pods}
            for pod in self.pods:
                self._procs[pod.name] = PodProcess(
                    pod, protocol=self.spec.protocol, economy_file=economy_file,
                    inputs=egress[pod.name], log_dir=self.run_dir / "logs")
            try:
                self._mesh = await MeshProcess.start(self._mesh_config(egress), self.run_dir)
                break
            except ClusterError as exc:
                stop_all([p.child for p in self._procs.values()])
                self._procs.clear()
                if attempt == 2 or not any(m in str(exc).lower() for m in _PORT_TAKEN):
                    raise
        assert self._mesh is not None
        self.metrics_url = self._mesh.metrics_url
        await asyncio.gather(*(self._wait_pod(p) for p in self.pods))
        capacities = self.spec.capacities(self.node_names)
        if capacities is not None:
            # Into their nodes' groups once ready: start-up is not measured, and capped
            # nodes would make it slow.
            self._groups = NodeGroups.create(capacities, scale=self.spec.cpu_scale,
                                             root=self.spec.cgroup_root)
            self._apply_capacity()
            log.info("%s", self._groups.status.line())
        if prometheus is not None:
            self._prom = PrometheusServer(prometheus, self.run_dir,
                                          [self.metrics_url.split("/")[2]])
            await self._prom.wait_ready()
            self.prometheus_url = self._prom.url
        elif self.spec.prometheus is None:
            warnings.warn("no `prometheus` binary found: the cluster runs without a Prometheus "
                          f"server; read the mesh metrics directly at {self.metrics_url}",
                          RuntimeWarning, stacklevel=3)
        self._monitor = asyncio.get_running_loop().create_task(self._watch_pods())
        log.info("emulated cluster up in %.1f s: %d pods on %d nodes, %s",
                 time.monotonic() - t0, len(self.pods), len(self.node_names),
                 f"link {self.link.describe()}" if self.spec.topology is None
                 else f"topology {self.spec.topology.describe()}")

    def _mesh_config(self, egress: Mapping[str, Mapping[str, int]]) -> dict[str, Any]:
        bandwidth = self.link.bandwidth_mbps
        return {
            "link": {"latency_ms": self.link.latency_ms,
                     "bandwidth_mbps": None if math.isinf(bandwidth) else bandwidth},
            "pods": {p.name: {"workload": p.item, "port": p.port} for p in self.pods},
            "placement": self.placement,
            "egress": [[pod, src, port] for pod, ports in egress.items()
                       for src, port in ports.items()],
            "ingress": list(self.economy.names),
            **({} if self.spec.topology is None
               else {"topology": self.spec.topology.model_dump(mode="json")}),
        }

    async def _wait_pod(self, pod: PodInfo) -> None:
        proc = self._procs[pod.name]
        for attempt in range(3):
            try:
                await proc.wait_ready(self.spec.start_timeout)
                return
            except ClusterError:
                # The port from free_port() can be taken by someone else before the
                # pod binds it: retry on a fresh port; anything else is a real failure.
                log_tail = proc.child.tail(50).lower()
                if attempt == 2 or not any(m in log_tail for m in _PORT_TAKEN):
                    raise
            pod.port = free_port()
            assert self._mesh is not None
            await self._mesh.put("/endpoints", {pod.name: {"port": pod.port}})
            proc = self._procs[pod.name] = PodProcess(
                pod, protocol=self.spec.protocol, economy_file=self.run_dir / "economy.yaml",
                inputs=self._mesh.egress.get(pod.name, {}), log_dir=self.run_dir / "logs")

    async def _watch_pods(self) -> None:
        """Take crashed pods out of their service's endpoints, as the kubelet would."""
        while True:
            await asyncio.sleep(_MONITOR_PERIOD_S)
            crashed = {name for name, proc in self._procs.items() if proc.exit_code is not None}
            new = crashed - self._crashed
            if new and self._mesh is not None:
                self._crashed |= new
                for name in sorted(new):
                    log.warning("pod %s exited with code %s", name, self._procs[name].exit_code)
                with contextlib.suppress(Exception):
                    await self._mesh.put("/endpoints", {n: {"ready": False} for n in new})

    async def stop(self) -> None:
        """Stop Prometheus, the pods and the mesh; idempotent; nothing is left running."""
        if self._stopped:
            return
        self._stopped = True
        if self._monitor is not None:
            self._monitor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._monitor
        if self._prom is not None:
            self._prom.stop()
        if self._groups is not None:
            # Out of the caps first, so the pods' shutdown is not throttled.
            self._groups.remove()
        stop_all([p.child for p in [*self._procs.values(), *self._old_procs]])
        if self._mesh is not None:
            await self._mesh.stop()
        if self._owns_run_dir:
            shutil.rmtree(self.run_dir, ignore_errors=True)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.stop()

    # -- queries and control ------------------------------------------------------

    def _set_placement(self, placement: Mapping[str, str]) -> None:
        self.placement.update(placement)
        for pod in self.pods:
            pod.node = self.placement[pod.name]

    async def relayout(self, placement: Mapping[str, str]) -> None:
        """Move pods to other nodes (pods not named stay put); effective for the next byte."""
        checked = validate_placement(placement, [p.name for p in self.pods], self.node_names,
                                     complete=False)
        assert self._mesh is not None
        await self._mesh.put("/placement", checked)
        self._set_placement(checked)
        self._apply_capacity()

    # -- moves and link changes (scenarios) ----------------------------------------

    async def move(self, pod: str, node: str, *, make_before_break: bool = True,
                   new_pod: str | None = None, grace_s: float = 5.0) -> MoveResult:
        """Replace ``pod`` by a new pod process ``new_pod`` (default ``<item>-<k>``, the
        next unused k) on ``node``.

        make-before-break: start the new pod, wait until it is ready, put it into its
        service's endpoints, take the old one out, then stop the old one. evict: take the
        old one out and stop it, then start the new one; orders to the service meanwhile
        fail visibly (the mesh resets their connections) unless another replica serves.
        Stopping is SIGTERM, so the old pod finishes the requests it has and closes its
        keep-alive connections (callers reconnect to the new pod); SIGKILL if its
        process or its mesh flows are still there after ``grace_s``. Never raises for a
        failed move (``ok`` False, ``error`` says why); ValueError for bad arguments.
        """
        old = next((p for p in self.pods if p.name == pod), None)
        if old is None or pod in self._moving:
            raise ValueError(f"cannot move {pod!r}: " + ("it is being moved already" if old
                             else f"no such running pod; pods are {', '.join(self.placement)}"))
        if node not in self.node_names:
            raise ValueError(f"unknown node {node!r}; nodes are {', '.join(self.node_names)}")
        name = new_pod or self._next_name(old.item)
        if name in self._names:
            raise ValueError(f"pod name {name!r} is taken (names are never reused)")
        self._names.add(name)
        self._moving.add(pod)
        strategy = "make-before-break" if make_before_break else "evict"
        started, ready, gone = time.monotonic(), None, None
        error = ""
        try:
            if make_before_break:
                info = await self._start_pod(name, old.item, node)
                ready = time.monotonic()
                await self._serve(info, True)
                await self._retire(old, grace_s)
                gone = time.monotonic()
            else:
                await self._retire(old, grace_s)
                gone = time.monotonic()
                info = await self._start_pod(name, old.item, node)
                ready = time.monotonic()
                await self._serve(info, True)
        except (ClusterError, ValueError, OSError, aiohttp.ClientError) as exc:
            error = f"{type(exc).__name__}: {exc}"
            log.warning("moving %s to %s as %s failed: %s", pod, node, name, error)
        finally:
            self._moving.discard(pod)
        return MoveResult(pod=pod, new_pod=name, workload=old.item, src_node=old.node,
                          dst_node=node, strategy=strategy, started=started, ready=ready,
                          done=time.monotonic() if gone is None else gone, ok=not error,
                          error=error)

    async def degrade(self, node: str, *, latency_ms: float | None = None,
                      bandwidth_mbps: float | None = None) -> None:
        """Every link touching ``node`` gets this latency and/or bandwidth from the next
        byte on (None: keep the current value)."""
        if node not in self.node_names:
            raise ValueError(f"unknown node {node!r}; nodes are {', '.join(self.node_names)}")
        LinkProfile(0.0 if latency_ms is None else latency_ms,   # refuses bad values
                    1.0 if bandwidth_mbps is None else bandwidth_mbps)
        assert self._mesh is not None
        await self._mesh.put("/degrade", {"node": node, "latency_ms": latency_ms,
                                          "bandwidth_mbps": bandwidth_mbps})

    def _next_name(self, item: str) -> str:
        used = [int(n[len(item) + 1:]) for n in self._names
                if n.startswith(f"{item}-") and n[len(item) + 1:].isdigit()]
        return f"{item}-{max(used, default=-1) + 1}"

    async def _start_pod(self, name: str, item: str, node: str) -> PodInfo:
        """A new pod process on ``node`` with its egress listeners, ready, in its node's
        CPU group (from the start: a pod starting on a busy node starts slowly), not yet
        serving. On failure nothing of it is left running."""
        assert self._mesh is not None
        info = PodInfo(name, item, node, port=free_port())
        reply = await self._mesh.post("/pods", {
            "pod": name, "workload": item, "node": node, "port": info.port,
            "inputs": list(self.economy[item].inputs), "serving": False})
        egress: dict[str, int] = reply["egress"]
        self._mesh.egress[name] = egress
        try:
            for attempt in range(3):
                proc = self._procs[name] = PodProcess(
                    info, protocol=self.spec.protocol, economy_file=self.run_dir / "economy.yaml",
                    inputs=egress, log_dir=self.run_dir / "logs")
                if self._groups is not None:
                    self._groups.place({proc.child.pid: node})
                try:
                    await proc.wait_ready(self.spec.start_timeout)
                    return info
                except ClusterError:
                    # As at boot: a port someone took meanwhile means a fresh one.
                    taken = any(m in proc.child.tail(50).lower() for m in _PORT_TAKEN)
                    if attempt == 2 or not taken:
                        raise
                await self._forget_proc(name)
                info.port = free_port()
                self._crashed.discard(name)   # the watcher may have seen the failed one
                await self._mesh.put("/endpoints", {name: {"port": info.port, "ready": True}})
            raise AssertionError("unreachable")
        except BaseException:
            await self._forget_proc(name)
            self._old_ports += self._mesh.egress.pop(name, {}).values()
            with contextlib.suppress(Exception):
                await self._mesh.post("/retire", {"pod": name})
            raise

    async def _forget_proc(self, name: str, grace_s: float = 1.0) -> None:
        """Out of the running pods (so the crash watcher does not report it), stopped."""
        proc = self._procs.pop(name, None)
        if proc is not None:
            self._old_procs.append(proc)
            self._old_ports.append(proc.pod.port)
            await _stop_gracefully(proc, time.monotonic() + grace_s)

    async def _serve(self, info: PodInfo, serving: bool) -> None:
        assert self._mesh is not None
        await self._mesh.put("/endpoints", {info.name: {"serving": serving}})
        if serving:
            self.pods.append(info)
            self.placement[info.name] = info.node

    async def _retire(self, old: PodInfo, grace_s: float) -> None:
        """Take ``old`` out of its service, stop it gracefully (see :meth:`move`), close
        its egress listeners; its bytes stay in the mesh's counters."""
        assert self._mesh is not None
        await self._mesh.put("/endpoints", {old.name: {"serving": False}})
        self.pods.remove(old)
        del self.placement[old.name]
        proc = self._procs.pop(old.name)
        self._old_procs.append(proc)
        self._old_ports.append(old.port)
        deadline = time.monotonic() + grace_s
        # Connections the mesh accepted just before: let them reach the old pod before
        # it stops listening, or they would be reset.
        await self._wait_flows(old.name, "connecting", deadline)
        await _stop_gracefully(proc, deadline, flows=lambda: self._wait_flows(
            old.name, "open", deadline))
        self._old_ports += self._mesh.egress.pop(old.name, {}).values()
        await self._mesh.post("/retire", {"pod": old.name})

    async def _wait_flows(self, pod: str, kind: str, deadline: float) -> None:
        assert self._mesh is not None
        while time.monotonic() < deadline:
            flows = await self._mesh.get("/flows")
            if not flows.get(pod, {}).get(kind, 0):
                return
            await asyncio.sleep(0.05)

    def _apply_capacity(self) -> None:
        if self._groups is not None:
            self._groups.place({self._procs[p.name].child.pid: p.node for p in self.pods})

    @property
    def capacity(self) -> CapacityStatus | None:
        """What node capacity is enforced, or why not; None when capacity is off."""
        return None if self._groups is None else self._groups.status

    def entry(self, item: str) -> str:
        """Where the order app sends orders for ``item``: "127.0.0.1:PORT"."""
        assert self._mesh is not None
        try:
            return f"127.0.0.1:{self._mesh.ingress[item]}"
        except KeyError:
            raise ValueError(f"unknown item {item!r}; the economy has "
                               f"{', '.join(self.economy.names)}") from None

    def pod_status(self) -> dict[str, str]:
        """"running" or "crashed (exit N)" per pod."""
        out = {}
        for name, proc in self._procs.items():
            code = proc.exit_code
            out[name] = "running" if code is None else f"crashed (exit {code})"
        return out

    def traffic_snapshot(self) -> pd.DataFrame:
        """Cumulative pod-to-pod bytes per (source_workload, destination_workload, src_node,
        dst_node), nodes as placed when the bytes were sent; orders entering from outside
        the mesh are not included. Columns: :data:`TRAFFIC_COLUMNS`."""
        assert self._mesh is not None
        rows = [r for r in self._mesh.get_json("/traffic") if r["source_pod"]]
        df = pd.DataFrame(rows, columns=[*TRAFFIC_COLUMNS, "source_pod", "destination_pod"])
        keys = TRAFFIC_COLUMNS[:4]
        return (df.groupby(keys, as_index=False)[["request_bytes", "response_bytes", "bytes"]]
                .sum().astype({c: "int64" for c in TRAFFIC_COLUMNS[4:]})[TRAFFIC_COLUMNS])

    def pids(self) -> list[int]:
        """Every process this cluster started (for leak checks)."""
        out = [proc.child.pid for proc in [*self._procs.values(), *self._old_procs]]
        if self._mesh is not None:
            out.append(self._mesh.child.pid)
        if self._prom is not None:
            out.append(self._prom.child.pid)
        return out

    def ports(self) -> list[int]:
        """Every loopback port this cluster listens on (for leak checks)."""
        out = [proc.pod.port for proc in self._procs.values()] + self._old_ports
        if self._mesh is not None:
            out.append(int(self._mesh.control_url.rsplit(":", 1)[1]))
            out += self._mesh.ingress.values()
            out += [port for per_pod in self._mesh.egress.values() for port in per_pod.values()]
        if self._prom is not None:
            out.append(self._prom.port)
        return out

    def describe(self) -> dict[str, Any]:
        """A JSON-able summary (the CLI's state file)."""
        return {
            "nodes": self.node_names,
            "link": {"latency_ms": self.link.latency_ms,
                     "bandwidth_mbps": self.link.bandwidth_mbps},
            **({} if self.spec.topology is None
               else {"topology": self.spec.topology.model_dump(mode="json")}),
            "protocol": self.spec.protocol,
            "economy": self.economy.name,
            "pods": [{"name": p.name, "item": p.item, "node": p.node, "port": p.port, "pid": p.pid}
                     for p in self.pods],
            "entries": {item: self.entry(item) for item in self.economy.names},
            "metrics_url": self.metrics_url,
            "prometheus_url": self.prometheus_url,
            "mesh_pid": self._mesh.child.pid if self._mesh else None,
            "prometheus_pid": self._prom.child.pid if self._prom else None,
            "run_dir": str(self.run_dir),
            **({} if self._groups is None else {"capacity": self._groups.status.to_json()}),
        }


async def _stop_gracefully(proc: PodProcess, deadline: float,
                           flows: Callable[[], Awaitable[None]] | None = None) -> None:
    """SIGTERM, wait (without blocking the loop) until the process has exited and
    ``flows`` returns, up to ``deadline``; then SIGKILL whatever is left and reap it."""
    kill_group(proc.child.pid, signal.SIGTERM)
    while proc.exit_code is None and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    if flows is not None:
        await flows()
    if proc.exit_code is None:
        kill_group(proc.child.pid, signal.SIGKILL)
        killed = time.monotonic()
        while proc.exit_code is None and time.monotonic() - killed < 5.0:
            await asyncio.sleep(0.01)
    proc.stop()   # reaps it, and any member of its group left behind
