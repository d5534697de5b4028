"""`harness cluster up|status|down --backend nodes`: the real-node cluster by hand.

Kept apart from `cluster_cmd` (the emulated and kwok clusters) because it is the one
cluster that needs root, Debian's containerd and the images `tools/image/build` makes.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from results.links import LinkProfile
from results.topology import REGION_LABEL, ZONE_LABEL, Topology

__all__ = ["NODES_NAME", "default_images", "image_dir", "nodes_down", "nodes_status", "nodes_up"]

console = Console()
NODES_NAME = "settlers"


def image_dir() -> Path:
    """Where tools/image/build writes its archives ($SETTLERS_IMAGE_DIR)."""
    env = os.environ.get("SETTLERS_IMAGE_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "settlers-testbed" / "images"


def default_images() -> list[Path]:
    """The project, pause and kube-scheduler images tools/image/build wrote, the newest
    archive of each (the local Python base it also writes is only a build input)."""
    d = image_dir()
    out = []
    for prefix in ("settlers-testbed-", "settlers-pause-", "kube-scheduler-"):
        found = sorted(d.glob(f"{prefix}*.tar"), key=lambda p: p.stat().st_mtime)
        if found:
            out.append(found[-1])
    return out


def nodes_up(nodes: int, topology: Topology | None, link: LinkProfile,
             images: list[Path] | None, timeout: float) -> None:
    from harness.backends.k8s import K8sBinariesMissing
    from harness.backends.k8s.nodes import node_names
    from harness.backends.k8s.realnodes import RealNodeCluster, RealNodesError

    names = topology.node_names if topology is not None else node_names(nodes)
    labels = ({n.name: dict(n.labels) for n in topology.nodes} if topology is not None else {})
    archives = images or default_images()
    if not archives:
        console.print(f"[red]No image archives in {image_dir()}.[/] Build them first: "
                      "tools/image/build (or pass --image ARCHIVE)")
        raise typer.Exit(1)
    if topology is not None:
        table = topology.link_table()

        def rate(a: str, b: str) -> float:
            return table(a, b).bandwidth_mbps
    else:
        def rate(a: str, b: str) -> float:
            return link.bandwidth_mbps
    try:
        with console.status("starting ...") as status:
            cluster = RealNodeCluster.start(
                NODES_NAME, names, images=archives, labels=labels, rate_mbps=rate,
                timeout=max(timeout, 300.0),
                progress=lambda msg: status.update(f"starting: {msg}"))
    except (K8sBinariesMissing, RealNodesError) as exc:
        console.print(f"[red]The real-node cluster did not start:[/] {exc}")
        raise typer.Exit(1) from None
    what = topology.describe() if topology is not None else f"link {link.describe()}"
    console.print(f"real-node cluster {NODES_NAME!r}: nodes {', '.join(names)} ({what}; "
                  "bandwidth shaped with tc htb, latency NOT emulated: no netem here)")
    console.print(f"kubeconfig: {cluster.kubeconfig}\ncontext:    {cluster.context}\n"
                  f"api server: {cluster.state['server']}\n"
                  f"prometheus: {cluster.prometheus_url}  (Debian's, on the host; scrapes "
                  "pods annotated prometheus.io/scrape)\n"
                  f"dns:        {cluster.state['dns']} (CoreDNS on the host)\n"
                  f"images:     {', '.join(p.name for p in archives)}\n"
                  f"e.g.        kubectl --kubeconfig {cluster.kubeconfig} get nodes -o wide\n"
                  "stop with:  harness cluster down --backend nodes", highlight=False)


def _attach() -> Any:
    from harness.backends.k8s.realnodes import RealNodeCluster, RealNodesError
    try:
        return RealNodeCluster.attach(NODES_NAME)
    except RealNodesError as exc:
        console.print(str(exc))
        raise typer.Exit(1) from None


def nodes_status(as_json: bool) -> None:
    """Nodes (Ready, zone, pods) and the host processes; exit 2 if anything is down."""
    from kubernetes import client, config

    cluster = _attach()
    procs = cluster.pids()
    expected = [f"{n.name}-{c}" for n in cluster.plan.nodes
                for c in ("containerd", "kubelet", "kube-proxy")]
    expected += ["coredns", "podsd", "prometheus"]
    dead = [w for w in expected if w not in procs]
    api: Any = client.CoreV1Api(config.new_client_from_config(  # type: ignore[no-untyped-call]
        config_file=str(cluster.kubeconfig)))
    # Raw JSON: the typed models make every field optional, and nothing here needs them.
    nodes = json.loads(api.list_node(_preload_content=False).data)["items"]
    pods = json.loads(api.list_pod_for_all_namespaces(_preload_content=False).data)["items"]
    rows = []
    for n in nodes:
        name = n["metadata"]["name"]
        labels = n["metadata"].get("labels") or {}
        ready = any(c["type"] == "Ready" and c["status"] == "True"
                    for c in n.get("status", {}).get("conditions") or [])
        running = [p for p in pods if p["spec"].get("nodeName") == name
                   and p.get("status", {}).get("phase") == "Running"]
        rows.append({"node": name, "ready": ready, "address": cluster.plan.node(name).ip,
                     "region": labels.get(REGION_LABEL), "zone": labels.get(ZONE_LABEL),
                     "running_pods": len(running)})
    unhealthy = bool(dead) or not all(r["ready"] for r in rows)
    if as_json:
        print(json.dumps({"nodes": rows, "processes": procs, "dead": dead,
                          "kubeconfig": str(cluster.kubeconfig), "context": cluster.context,
                          "prometheus_url": cluster.prometheus_url}, indent=1))
        raise typer.Exit(2 if unhealthy else 0)
    table = Table(title=f"real-node cluster {cluster.plan.name!r}")
    for col in ("node", "ready", "address", "region", "zone", "running pods"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["node"], "yes" if r["ready"] else "[red]no[/]", r["address"],
                      r["region"] or "-", r["zone"] or "-", str(r["running_pods"]))
    console.print(table)
    console.print(f"processes: {len(procs)} running"
                  + (f"; [red]down: {', '.join(dead)}[/]" if dead else ""))
    console.print(f"kubeconfig: {cluster.kubeconfig}  context: {cluster.context}",
                  highlight=False)
    if unhealthy:
        raise typer.Exit(2)


def nodes_down() -> None:
    """Stop every process and remove namespaces, mounts, cgroups and state."""
    from harness.backends.k8s.realnodes import RealNodeCluster, RealNodesError
    try:
        cluster = RealNodeCluster.attach(NODES_NAME)
    except RealNodesError:
        console.print(f"No real-node cluster named {NODES_NAME!r}; nothing to stop.")
        return
    with console.status("stopping ..."):
        removed = cluster.stop()
    left = cluster.leftovers()
    console.print(f"real-node cluster {NODES_NAME!r} deleted"
                  + (f" (also removed: {', '.join(removed)})" if removed else ""))
    if left:
        console.print(f"[red]left behind:[/] {', '.join(left)}")
        raise typer.Exit(1)
