"""`harness cluster up|status|down`: an emulated cluster you can poke at by hand.

`up` starts a detached supervisor (harness.backends.emulated.supervisor) that owns the
pods, the mesh and Prometheus; its state file in the run directory is what `status`
and `down` read, so they work from any shell. With ``--backend kwok`` the same
commands manage a kwok control plane (real Kubernetes binaries, fake nodes).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from harness.backends.emulated.pods import probe_health
from harness.backends.emulated.procs import kill_group
from harness.backends.emulated.supervisor import SPEC_FILE, STATE_FILE, read_state, write_json
from harness.backends.pids import pid_alive
from results.links import LINK_PRESETS, resolve_link
from results.topology import REGION_LABEL, ZONE_LABEL, Topology, resolve_topology
from settlers.quantity import parse_cpu
from settlers.wire import WireProtocol

__all__ = ["default_run_dir", "register"]

console = Console()
KWOK_NAME = "settlers"


class Backend(StrEnum):
    local = "local"
    kwok = "kwok"
    nodes = "nodes"


def default_run_dir() -> Path:
    """$SETTLERS_CLUSTER_DIR, else ~/.local/state/settlers-testbed/cluster (any cwd works)."""
    env = os.environ.get("SETTLERS_CLUSTER_DIR")
    if env:
        return Path(env).expanduser()
    state = Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state")
    return state / "settlers-testbed" / "cluster"


RunDir = Annotated[Path | None, typer.Option(
    "--run-dir", help="Where the cluster keeps its state, logs and Prometheus data "
    "(default: $SETTLERS_CLUSTER_DIR or ~/.local/state/settlers-testbed/cluster).")]
BackendOpt = Annotated[Backend, typer.Option(
    "--backend", help="local: emulated cluster (pods are processes); kwok: a real Kubernetes "
    "control plane with kwok nodes (needs tools/k8s/build); nodes: that control plane with "
    "real nodes (containerd, kubelet, kube-proxy in network namespaces; root, "
    "tools/setup --nodes).")]
ImageOpt = Annotated[list[Path] | None, typer.Option(
    "--image", help="--backend nodes: an image archive to load into every node's containerd "
    "(repeatable; default: the settlers-testbed and pause archives tools/image/build wrote).")]


def _running(state: dict[str, Any] | None) -> bool:
    return bool(state and state.get("status") in ("starting", "ready", "stopping")
                and pid_alive(int(state.get("supervisor_pid", 0))))


def up(
    nodes: Annotated[int, typer.Option(min=1, help="Number of emulated nodes (node-1..N).")] = 5,
    link: Annotated[str, typer.Option(
        help=f"Link preset: {', '.join(f'{k} ({v.describe()})' for k, v in LINK_PRESETS.items())}."
    )] = "edge",
    latency_ms: Annotated[float | None, typer.Option(
        help="One-way inter-node latency in ms (overrides the preset).")] = None,
    bandwidth_mbps: Annotated[float | None, typer.Option(
        help="Per-node up/downlink bandwidth in Mbit/s (overrides the preset).")] = None,
    topology: Annotated[str | None, typer.Option(
        metavar="FILE|PRESET",
        help="Nodes with labels and a link per pair class: uniform | zones | edge-cloud "
             "(built for --nodes and the link) or a topology file (its nodes replace "
             "--nodes). Default: --nodes identical nodes behind the link.")] = None,
    economy: Annotated[str | None, typer.Option(
        help="Economy YAML file or shipped name (default: settlers2).")] = None,
    protocol: Annotated[WireProtocol, typer.Option(help="Wire protocol of every pod.")] = "http",
    placement: Annotated[str, typer.Option(
        help="spread (round robin), random, or a YAML/JSON file mapping pod -> node.")] = "random",
    seed: Annotated[int | None, typer.Option(help="Seed for --placement random.")] = None,
    prometheus: Annotated[bool | None, typer.Option(
        "--prometheus/--no-prometheus",
        help="Start a Prometheus server (default: if the `prometheus` binary is installed)."
    )] = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the cluster.")] = 180.0,
    run_dir: RunDir = None,
    backend: BackendOpt = Backend.local,
    node_cpu: Annotated[str | None, typer.Option(
        help="CPU capacity per node (4, 500m), enforced on the pods with a cgroup CPU quota "
             "(default: off).")] = None,
    cpu_scale: Annotated[float | None, typer.Option(
        help="Machine CPU per node CPU for the quota (default: fit the nodes into this "
             "machine's cores less half a core).")] = None,
    image: ImageOpt = None,
) -> None:
    """Start an emulated cluster running the whole economy, detached.

    Examples:

      harness cluster up                       # 5 nodes, edge links, settlers2, HTTP

      harness cluster up --nodes 3 --link wan --protocol grpc --placement spread

      harness cluster up --latency-ms 2 --bandwidth-mbps 100 --placement layout.yaml

      harness cluster up --topology zones      # 3 zones: lan within, edge across

      harness cluster up --node-cpu 2 --cpu-scale 0.1   # 200m of this machine per node

      harness cluster up --backend kwok --nodes 5   # real control plane, kwok nodes, no pods

      harness cluster up --backend nodes --nodes 3 --topology zones   # real pods (root)

    Then send orders, e.g.  order-app sweep --target <address printed for bread> --item bread
    (with --backend kwok: kubectl --kubeconfig <path printed> get nodes)
    """
    try:
        profile = resolve_link(link, latency_ms=latency_ms, bandwidth_mbps=bandwidth_mbps)
        topo = (None if topology is None
                else resolve_topology(topology, nodes=nodes, link=profile))
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    if topo is not None:
        nodes = len(topo.nodes)
    node_cpu_m = _node_cpu_m(node_cpu, cpu_scale)
    if backend is Backend.kwok:
        # kwok nodes have no processes to cap: --node-cpu is their allocatable CPU, which
        # the real kube-scheduler then fits pods' requests into.
        _kwok_up(nodes, topo, "4" if node_cpu_m is None else f"{node_cpu_m}m")
        return
    if backend is Backend.nodes:
        if node_cpu_m is not None:
            raise typer.BadParameter("--node-cpu is not supported with --backend nodes: every "
                                     "real node reports this machine's CPUs")
        from harness.nodes_cmd import nodes_up
        nodes_up(nodes, topo, profile, image, timeout)
        return
    if placement not in ("spread", "random") and not Path(placement).is_file():
        raise typer.BadParameter(f"--placement must be spread, random or an existing file; "
                                 f"{placement!r} is none of these")
    run_dir = (run_dir or default_run_dir()).resolve()
    state = read_state(run_dir)
    if _running(state):
        console.print(f"[red]A cluster is already running from {run_dir} (supervisor pid "
                      f"{state['supervisor_pid']}).[/] Stop it with: harness cluster down")  # type: ignore[index]
        raise typer.Exit(1)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / STATE_FILE).unlink(missing_ok=True)
    write_json(run_dir / SPEC_FILE, {
        "nodes": nodes, "latency_ms": profile.latency_ms,
        "bandwidth_mbps": (None if profile.bandwidth_mbps == float("inf")
                           else profile.bandwidth_mbps),
        "economy": economy, "protocol": protocol,
        "placement": (placement if placement in ("spread", "random")
                      else str(Path(placement).resolve())),
        "seed": seed, "prometheus": prometheus,
        **({} if topo is None else {"topology": topo.model_dump(mode="json")}),
        **({} if node_cpu_m is None else {"node_cpu_m": node_cpu_m, "cpu_scale": cpu_scale}),
    })
    log = run_dir / "supervisor.log"
    with open(log, "ab") as logf:
        proc = subprocess.Popen([sys.executable, "-m", "harness.backends.emulated.supervisor",
                                 str(run_dir)], stdin=subprocess.DEVNULL, stdout=logf,
                                stderr=logf, start_new_session=True)
    what = (f"link {profile.describe()}" if topo is None
            else f"topology {topo.describe()}")
    try:
        state = _wait_started(proc, run_dir, timeout, f"starting {nodes} nodes, {what} ...")
    except BaseException as exc:   # failed, timed out, or Ctrl-C: leave nothing behind
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
            proc.wait(60)
        why = "interrupted" if isinstance(exc, KeyboardInterrupt) else str(exc)
        console.print(f"[red]The cluster did not start:[/] {why}\nlog: {log}")
        raise typer.Exit(130 if isinstance(exc, KeyboardInterrupt) else 1) from None
    _print_up(state)


def _node_cpu_m(node_cpu: str | None, cpu_scale: float | None) -> int | None:

    if node_cpu is None:
        if cpu_scale is not None:
            raise typer.BadParameter("--cpu-scale needs --node-cpu")
        return None
    if cpu_scale is not None and not 0 < cpu_scale <= 1:
        raise typer.BadParameter(f"--cpu-scale must be in (0, 1], got {cpu_scale}")
    try:
        cpu_m = parse_cpu(node_cpu)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--node-cpu") from None
    if cpu_m <= 0:
        raise typer.BadParameter(f"--node-cpu must be positive, got {node_cpu!r}")
    return cpu_m


def _wait_started(proc: subprocess.Popen[bytes], run_dir: Path, timeout: float,
                  what: str) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    with console.status(what):
        while True:
            state = read_state(run_dir) or {}
            if state.get("status") == "ready":
                return state
            if state.get("status") == "failed":
                raise RuntimeError(state.get("error") or "unknown error")
            if proc.poll() is not None:
                raise RuntimeError(f"the supervisor exited with code {proc.returncode}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"timed out after {timeout:.0f} s")
            time.sleep(0.2)


def _print_up(state: dict[str, Any]) -> None:
    table = Table(title="Send orders for an item to", show_lines=False)
    table.add_column("item")
    table.add_column("address")
    table.add_column("pods")
    for item, addr in state["entries"].items():
        pods = [f"{p['name']}@{p['node']}" for p in state["pods"] if p["item"] == item]
        table.add_row(item, addr, ", ".join(pods))
    console.print(table)
    link = state["link"]
    if state.get("topology"):
        console.print(f"protocol: {state['protocol']}   topology: "
                      f"{Topology.model_validate(state['topology']).describe()}")
    else:
        console.print(f"protocol: {state['protocol']}   link: {link['latency_ms']} ms one-way, "
                      f"{link['bandwidth_mbps']} Mbit/s per node")
    console.print(f"mesh metrics: {state['metrics_url']}")
    prom = state.get("prometheus_url")
    console.print(f"prometheus:   {prom}" if prom else
                  "prometheus:   [yellow]not running (no `prometheus` binary); scrape the mesh "
                  "metrics URL directly[/]")
    if prom:
        query = ('sum by (source_workload, destination_workload) '
                 '(istio_tcp_sent_bytes_total{reporter="destination"})')
        console.print(f"  e.g. curl -s {prom}/api/v1/query --data-urlencode 'query={query}'",
                      markup=False, highlight=False, soft_wrap=True)
    cap = state.get("capacity")
    if cap:
        style = "" if cap["enforced"] else "[yellow]"
        console.print(f"capacity:     {style}{cap['summary']}", highlight=False)
    console.print(f"run dir:      {state['run_dir']}\nstop with:    harness cluster down")


def status(
    run_dir: RunDir = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    backend: BackendOpt = Backend.local,
) -> None:
    """Show nodes, pods, placement and health of the running cluster.

    Exit code 0: all pods ready; 1: no cluster running; 2: some pod is not ready.

    Example:  harness cluster status --json | jq '.pods[] | select(.health != "ready")'
    """
    if backend is Backend.kwok:
        _kwok_status()
        return
    if backend is Backend.nodes:
        from harness.nodes_cmd import nodes_status
        nodes_status(as_json)
        return
    run_dir = (run_dir or default_run_dir()).resolve()
    state = read_state(run_dir)
    if not _running(state):
        console.print(f"No cluster is running from {run_dir}.")
        raise typer.Exit(1)
    assert state is not None
    if state["status"] != "ready":
        console.print(f"The cluster is {state['status']}.")
        raise typer.Exit(1)
    healths = asyncio.run(_pod_health(state))
    for pod, health in zip(state["pods"], healths, strict=True):
        pod["health"] = health
    state["mesh_health"] = "running" if pid_alive(state["mesh_pid"]) else "dead"
    if state.get("prometheus_pid"):
        state["prometheus_health"] = "running" if pid_alive(state["prometheus_pid"]) else "dead"
    unhealthy = any(p["health"] != "ready" for p in state["pods"])
    if state.get("capacity"):
        state["node_use"] = node_use(state)
    if as_json:
        print(json.dumps(state, indent=1))
        raise typer.Exit(2 if unhealthy else 0)
    table = Table(title=f"{len(state['pods'])} pods on {len(state['nodes'])} nodes "
                        f"({state['protocol']})")
    for col in ("node", "pod", "item", "port", "pid", "health"):
        table.add_column(col)
    for node in state["nodes"]:
        for pod in sorted((p for p in state["pods"] if p["node"] == node), key=lambda p: p["name"]):
            style = "" if pod["health"] == "ready" else "red"
            table.add_row(node, pod["name"], pod["item"], str(pod["port"]), str(pod["pid"]),
                          pod["health"], style=style)
    console.print(table)
    if state.get("topology"):
        _print_topology(state["topology"])
    if state.get("capacity"):
        _print_capacity(state)
    prom = f"{state.get('prometheus_health', 'not started')} ({state.get('prometheus_url')})"
    console.print(f"mesh: {state['mesh_health']} ({state['metrics_url']})   prometheus: {prom}")
    if unhealthy:
        raise typer.Exit(2)


def node_use(state: dict[str, Any], sample_s: float = 0.5) -> dict[str, dict[str, Any]]:
    """Per node: capacity, quota, pods, CPU use over a short sample (millicores of this
    machine, from the pods' /proc counters) and throttled periods (cgroup cpu.stat)."""
    from harness.backends.emulated.capacity import process_cpu_seconds, read_stat

    cap = state["capacity"]
    pods = {n: [p for p in state["pods"] if p["node"] == n] for n in state["nodes"]}
    before = {n: process_cpu_seconds(p["pid"] for p in ps) for n, ps in pods.items()}
    t0 = time.monotonic()
    time.sleep(sample_s)   # a rate needs two readings some time apart
    elapsed = time.monotonic() - t0
    out = {}
    for node, ps in pods.items():
        used = process_cpu_seconds(p["pid"] for p in ps)
        stat = (read_stat(Path(cap["path"]) / node, cap["version"])
                if cap.get("path") else {})
        out[node] = {
            "capacity_m": cap["capacity_m"].get(node),
            "quota_m": cap["quota_m"].get(node),
            "pods": [p["name"] for p in ps],
            "cpu_seconds": round(used, 2),
            "use_m": round((used - before[node]) / elapsed * 1000),
            "throttled_periods": int(stat.get("throttled", 0)),
        }
    return out


def _print_topology(data: dict[str, Any]) -> None:
    """Each node's zone, region and CPU, and the link of each pair class in use."""
    topology = Topology.model_validate(data)
    table = Table(title="topology", caption=topology.describe())
    for col in ("node", "region", "zone", "cpu", "other labels"):
        table.add_column(col)
    for node in topology.nodes:
        region, zone = node.zone
        other = {k: v for k, v in node.labels.items() if k not in (REGION_LABEL, ZONE_LABEL)}
        table.add_row(node.name, region or "-", zone or "-", node.cpu or "-",
                      ", ".join(f"{k}={v}" for k, v in sorted(other.items())) or "-")
    console.print(table)


def _print_capacity(state: dict[str, Any]) -> None:
    cap = state["capacity"]
    table = Table(title="node capacity (CPU)", caption=cap["summary"])
    for col in ("node", "capacity", "quota (machine)", "use now", "CPU s", "throttled",
                "pods"):
        table.add_column(col)
    for node, use in state["node_use"].items():
        quota = use["quota_m"]
        table.add_row(node, f"{use['capacity_m']}m", "-" if quota is None else f"{quota:.0f}m",
                      f"{use['use_m']}m", f"{use['cpu_seconds']:.1f}",
                      str(use["throttled_periods"]), str(len(use["pods"])))
    console.print(table)


async def _pod_health(state: dict[str, Any]) -> list[str]:
    async def one(pod: dict[str, Any]) -> str:
        if not pid_alive(pod["pid"]):
            return "crashed (process gone)"
        ok = await probe_health(f"127.0.0.1:{pod['port']}", state["protocol"], timeout=2.0)
        return "ready" if ok else "not ready"
    return list(await asyncio.gather(*(one(p) for p in state["pods"])))


def down(run_dir: RunDir = None, backend: BackendOpt = Backend.local) -> None:
    """Stop the cluster: every pod, the mesh and Prometheus; no process or port stays.

    Example:  harness cluster down
    """
    if backend is Backend.kwok:
        _kwok_down()
        return
    if backend is Backend.nodes:
        from harness.nodes_cmd import nodes_down
        nodes_down()
        return
    run_dir = (run_dir or default_run_dir()).resolve()
    state = read_state(run_dir)
    if state is None:
        console.print(f"No cluster state in {run_dir}; nothing to stop.")
        return
    sup = int(state.get("supervisor_pid", 0))
    if sup and pid_alive(sup):
        os.kill(sup, signal.SIGTERM)
        deadline = time.monotonic() + 60
        with console.status("stopping ..."):
            while pid_alive(sup) and time.monotonic() < deadline:
                time.sleep(0.1)
    # Belt and braces: whatever the state file names and still runs goes now.
    pids = [sup, *(p["pid"] for p in state.get("pods", [])),
            state.get("mesh_pid") or 0, state.get("prometheus_pid") or 0]
    left = [pid for pid in pids if pid and pid_alive(pid)]
    for pid in left:
        kill_group(pid, signal.SIGKILL)
    write_json(run_dir / STATE_FILE, {**state, "status": "stopped"})
    killed = f" ({len(left)} process(es) had to be killed)" if left else ""
    console.print(f"Cluster stopped{killed}.")


def _kwok_up(nodes: int, topology: Topology | None = None, cpu: str = "4") -> None:
    from harness.backends.k8s import K8sBinariesMissing, KwokCluster, KwokError
    try:
        with console.status(f"starting a kwok control plane with {nodes} nodes ..."):
            cluster = KwokCluster.start(KWOK_NAME, nodes=nodes, topology=topology, cpu=cpu)
    except (K8sBinariesMissing, KwokError) as exc:
        console.print(f"[red]{exc}[/]")
        raise typer.Exit(1) from None
    except Exception as exc:   # e.g. the API client choking on a node; start() cleaned up
        console.print(f"[red]The kwok cluster did not start:[/] {type(exc).__name__}: {exc}")
        raise typer.Exit(1) from None
    console.print(f"kwok cluster {KWOK_NAME!r}: nodes {', '.join(cluster.node_names)}\n"
                  f"kubeconfig: {cluster.kubeconfig}\napi server: {cluster.server}\n"
                  "stop with:  harness cluster down --backend kwok")


def _kwok_status() -> None:
    from harness.backends.k8s import KwokCluster, KwokError
    try:
        cluster = KwokCluster.attach(KWOK_NAME)
    except KwokError as exc:
        console.print(str(exc))
        raise typer.Exit(1) from None
    table = Table(title=f"kwok cluster {KWOK_NAME!r}")
    for col in ("pod", "namespace", "node", "phase"):
        table.add_column(col)
    pods = cluster.core_v1().list_pod_for_all_namespaces().items
    for pod in pods:
        table.add_row(pod.metadata.name, pod.metadata.namespace, pod.spec.node_name or "-",
                      pod.status.phase)
    console.print(f"nodes: {', '.join(cluster.node_names)}")
    console.print(table)
    console.print(_kwok_nodes_table(cluster.core_v1().list_node().items, pods))


def _kwok_nodes_table(nodes: list[Any], pods: list[Any]) -> Table:
    """Each node's zone, region, allocatable CPU and the CPU its pods request (kwok pods
    use nothing, so requests are the use that matters: what the scheduler fits)."""
    requested: dict[str, int] = {}
    count: dict[str, int] = {}
    for pod in pods:
        node = pod.spec.node_name
        if not node or pod.status.phase in ("Succeeded", "Failed"):
            continue
        count[node] = count.get(node, 0) + 1
        for c in pod.spec.containers:
            cpu = ((c.resources and c.resources.requests) or {}).get("cpu")
            requested[node] = requested.get(node, 0) + (parse_cpu(cpu) if cpu else 0)
    table = Table(title="nodes: capacity and use")
    for col in ("node", "region", "zone", "allocatable cpu", "requested cpu", "pods"):
        table.add_column(col)
    for n in nodes:
        labels = n.metadata.labels or {}
        name = n.metadata.name
        table.add_row(name, labels.get(REGION_LABEL, "-"), labels.get(ZONE_LABEL, "-"),
                      f"{parse_cpu((n.status.allocatable or {}).get('cpu', '0'))}m",
                      f"{requested.get(name, 0)}m", str(count.get(name, 0)))
    return table


def _kwok_down() -> None:
    from harness.backends.k8s import KwokCluster
    cluster = KwokCluster(KWOK_NAME)
    running = cluster.pids() if cluster.exists() else []
    if cluster.exists():
        cluster.stop()   # also tidies the state of a cluster that is no longer running
    if not running:
        console.print(f"No kwok cluster named {KWOK_NAME!r} is running; nothing to stop.")
        return
    console.print(f"kwok cluster {KWOK_NAME!r} deleted ({len(running)} processes stopped).")


def register(app: typer.Typer) -> None:
    """Add `harness cluster up|status|down`."""
    cluster = typer.Typer(help="Start, inspect and stop an emulated cluster by hand.",
                          no_args_is_help=True)
    cluster.command()(up)
    cluster.command()(status)
    cluster.command()(down)
    app.add_typer(cluster, name="cluster")
