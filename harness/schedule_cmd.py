"""`harness schedule`: placements only - redeploy the economy N times under one policy.

No cluster and no measurement: this answers "which layouts does this scheduler
produce, how often, and how much traffic would cross nodes?" in seconds.
"""

from __future__ import annotations

import statistics
import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import pandas as pd
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn
from rich.table import Table

from results.config import DEFAULT_ORDER
from results.topology import resolve_topology
from schedulers.creation import (
    CREATION_ORDERS,
    CreationOrder,
    in_creation_order,
    join_order,
)
from schedulers.registry import builtin_policies
from settlers.economy import DEFAULT_ECONOMY, EconomyError, load_economy

if TYPE_CHECKING:
    from schedulers import ScheduleResult, promtraffic

__all__ = ["register", "schedule"]


def schedule(
    scheduler: Annotated[str, typer.Option(
        "--scheduler", "-s",
        help=f"{' | '.join(builtin_policies())} | an installed plug-in's name "
             "(`schedulers policies` lists them)")],
    out: Annotated[Path, typer.Option("--out", "-o", help="placements Parquet file to write")],
    deployments: Annotated[int, typer.Option(help="redeployments to simulate")] = 1000,
    nodes: Annotated[int, typer.Option(help="identical nodes")] = 5,
    node_cpu: Annotated[str, typer.Option(help="allocatable CPU per node")] = "4",
    node_memory: Annotated[str, typer.Option(help="allocatable memory per node")] = "8Gi",
    topology: Annotated[str | None, typer.Option(
        metavar="FILE|PRESET",
        help="nodes with labels (zone, region) and capacities: uniform | zones | "
             "edge-cloud (built for --nodes) or a topology file; nodes without a CPU in "
             "the file get --node-cpu. Default: --nodes identical nodes")] = None,
    economy: Annotated[str | None, typer.Option(
        help="economy file or shipped name (default settlers2)")] = None,
    traffic: Annotated[Path | None, typer.Option(
        help="traffic matrix (CSV/Parquet/YAML: source,destination,bytes); default: the "
             "shipped example for settlers2, else derived from the economy")] = None,
    prometheus: Annotated[str | None, typer.Option(
        help="read the traffic from this Prometheus instead (Istio byte counters)")] = None,
    window: Annotated[float, typer.Option(
        help="Prometheus traffic: the average over the last S seconds (a one-off command "
             "has no start time of its own, so a window is the default here)")] = 300,
    since: Annotated[str | None, typer.Option(
        "--since", metavar="T0",
        help="Prometheus traffic: the average since T0 instead (the paper's F, as the "
             "extender and firmament use by default): unix seconds or ISO 8601 with a zone, "
             "e.g. your warm-up's start")] = None,
    seed: Annotated[int, typer.Option(help="seed of the first deployment (+1 each)")] = 0,
    order: Annotated[str, typer.Option(
        metavar="file|reverse|random",
        help="the order in which each deployment creates its Deployments (the pods' queue "
             "order): file (the economy's order, inputs first), reverse, or random (a new "
             "order per deployment, drawn from --seed and the deployment's number), as "
             "`harness run --order`")] = DEFAULT_ORDER,
) -> None:
    """Place the economy DEPLOYMENTS times and report distinct layouts, predicted
    inter-node traffic and decision time.

    Examples:

      harness schedule --scheduler kube_default --deployments 1000 --out kd.parquet

      harness schedule -s netmarks --traffic t.csv --nodes 3 --out nm.parquet

      harness schedule -s kube_default --topology zones --out kd-zones.parquet

      harness schedule -s kube_default --order file --out kd-file-order.parquet
    """
    from schedulers import (
        PluginError,
        TrafficError,
        TrafficMatrix,
        UnknownPolicyError,
        canonical_layout,
        example_traffic_path,
        get_policy,
        inter_node_traffic,
        pods_for_economy,
        uniform_nodes,
        uses_traffic,
    )
    from schedulers.traffic import traffic_from_economy
    from settlers.quantity import parse_cpu, parse_memory

    console = Console(stderr=True)
    if deployments < 1 or nodes < 1:
        raise typer.BadParameter("--deployments and --nodes must be >= 1")
    if order not in CREATION_ORDERS:
        raise typer.BadParameter(f"{order!r} is not a creation order; choose one of "
                                 f"{', '.join(CREATION_ORDERS)}", param_hint="--order")
    creation = CreationOrder(order, seed)
    if traffic is not None and prometheus is not None:
        raise typer.BadParameter("give --traffic or --prometheus, not both")
    if since is not None and prometheus is None:
        raise typer.BadParameter("--since chooses the interval of Prometheus traffic; it "
                                 "needs --prometheus URL", param_hint="--since")
    try:
        econ = load_economy(economy)
    except EconomyError as exc:
        raise typer.BadParameter(str(exc), param_hint="--economy") from None
    topo_name = ""
    network = None  # a uniform cluster: every cross-node pair alike
    try:
        if topology is None:
            node_list = uniform_nodes(nodes, cpu_m=parse_cpu(node_cpu),
                                      memory=parse_memory(node_memory))
        else:
            topo = resolve_topology(topology, nodes=nodes)
            topo_name = topo.name
            network = topo.network()
            node_list = topo.model_nodes(cpu_m=parse_cpu(node_cpu),
                                         memory=parse_memory(node_memory))
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    pods = pods_for_economy(econ)
    _check_capacity(pods, node_list)
    try:
        if prometheus:
            matrix = TrafficMatrix.from_prometheus(prometheus, _interval(since, window))
        elif traffic is not None:
            matrix = TrafficMatrix.from_file(traffic)
        elif econ.name == DEFAULT_ECONOMY:
            matrix = TrafficMatrix.from_file(example_traffic_path(DEFAULT_ECONOMY))
        else:
            matrix = traffic_from_economy(econ)
    except TrafficError as exc:
        raise typer.BadParameter(str(exc), param_hint="--traffic/--prometheus") from None
    try:
        get_policy(scheduler)
    except (UnknownPolicyError, PluginError) as exc:
        raise typer.BadParameter(str(exc), param_hint="--scheduler") from None
    if uses_traffic(scheduler) and not matrix:
        console.print(f"[yellow]warning:[/] {matrix.source} has no traffic: {scheduler} "
                      "has nothing to go by")

    rows = []
    layouts: Counter[str] = Counter()
    shares: list[float] = []
    decision_s = 0.0
    placed_pods = 0
    unschedulable = 0
    # A deterministic policy gives the same answer for the same pods in the same order.
    cached: dict[tuple[str, ...], ScheduleResult] = {}
    workloads = [item.name for item in econ]
    solver_notes: Counter[str] = Counter()
    started = time.perf_counter()
    with Progress("[progress.description]{task.description}", BarColumn(),
                  MofNCompleteColumn(), TimeRemainingColumn(), console=console,
                  transient=True) as progress:
        task = progress.add_task(f"{scheduler}: deploying", total=deployments)
        for d in range(deployments):
            policy = get_policy(scheduler, traffic=matrix, seed=seed + d, network=network,
                                economy=econ)
            created = creation.for_deployment(d, workloads)
            if policy.deterministic and created in cached:
                result = cached[created]  # same input, same answer: solve once
            else:
                result = policy.schedule(in_creation_order(pods, created), node_list)
                decision_s += result.seconds
                placed_pods += len(pods)
                if policy.deterministic:
                    cached[created] = result
                if "status" in result.info:  # optimal: say how exact the bound is
                    solver_notes[f"{result.info['status']}, gap "
                                 f"{float(result.info.get('gap', 0.0)):.1%}"] += 1
            layout = canonical_layout(result.assignments, node_list)
            layouts[layout] += 1
            crossing, total = inter_node_traffic(result.assignments, matrix)
            share = crossing / total if total else float("nan")
            shares.append(share)
            unschedulable += len(result.unschedulable)
            joined = join_order(created)
            for pod in pods:
                rows.append((d, seed + d, pod.name, pod.workload,
                             result.assignments.get(pod.name), layout, share, joined))
            progress.advance(task)
    df = pd.DataFrame(rows, columns=["deployment", "seed", "pod", "workload", "node",
                                     "layout", "inter_node_share", "creation_order"])
    df.insert(0, "scheduler", scheduler)
    out.parent.mkdir(parents=True, exist_ok=True)
    df.to_parquet(out, index=False)

    where = (f"{nodes} nodes" if topology is None
             else f"{len(node_list)} nodes of topology {topo_name}")
    table = Table(title=f"{scheduler} on {where}, {deployments} deployments "
                        f"of {econ.name} ({len(pods)} pods)")
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_row("distinct layouts", str(len(layouts)))
    table.add_row("most frequent layout", f"{layouts.most_common(1)[0][1]} of {deployments}")
    valid = [s for s in shares if s == s]
    table.add_row("predicted inter-node traffic share",
                  f"{statistics.mean(valid):.1%} (min {min(valid):.1%}, max {max(valid):.1%})"
                  if valid else "n/a (no traffic)")
    table.add_row("traffic matrix", matrix.source or "-")
    table.add_row("creation order", f"{order}: {creation.describe()}")
    solved = (f" (deterministic: solved once per order, {len(cached)}x)" if len(cached) > 1
              else " (deterministic: solved once)" if cached else "")
    table.add_row("decision time per pod",
                  f"{decision_s / max(placed_pods, 1) * 1e6:.0f} us" + solved)
    if solver_notes:
        table.add_row("solver", "; ".join(f"{k} ({n}x)" for k, n in solver_notes.items()))
    table.add_row("unschedulable pods (all deployments)", str(unschedulable))
    table.add_row("wall time", f"{time.perf_counter() - started:.2f} s")
    table.add_row("written", str(out))
    stdout = Console()
    stdout.print(table)
    stdout.print("most frequent layouts (nodes as [workloads], identical nodes sorted):",
                 markup=False)
    for layout, n in layouts.most_common(3):
        stdout.print(f"  {n:5d}x  {layout}", soft_wrap=True, markup=False)


def _check_capacity(pods: list, nodes: list) -> None:  # type: ignore[type-arg]
    cpu = sum(p.cpu_m for p in pods)
    mem = sum(p.memory for p in pods)
    room_cpu = sum(n.cpu_m for n in nodes)
    room_mem = sum(n.memory for n in nodes)
    count = sum(n.max_pods for n in nodes)
    problems = []
    if cpu > room_cpu:
        problems.append(f"CPU: pods request {cpu}m, nodes have {room_cpu}m")
    if mem > room_mem:
        problems.append(f"memory: pods request {mem / 2**20:.0f}Mi, nodes have "
                        f"{room_mem / 2**20:.0f}Mi")
    if len(pods) > count:
        problems.append(f"pods: {len(pods)} pods, nodes take {count}")
    largest_cpu = max((p.cpu_m for p in pods), default=0)
    if largest_cpu > max(n.cpu_m for n in nodes):
        problems.append(f"a pod requests {largest_cpu}m CPU, more than any node has")
    if problems:
        raise typer.BadParameter("impossible capacity: " + "; ".join(problems)
                                 + " (use more --nodes or larger --node-cpu/--node-memory)")


def register(app: typer.Typer) -> None:
    """Add this module's command(s) to the harness CLI."""
    app.command("schedule")(schedule)


def _interval(since: str | None, window_s: float) -> promtraffic.Interval:
    """The Prometheus interval: since T0 when given, else the sliding window."""
    from schedulers import promtraffic

    if since is None:
        if not window_s > 0:
            raise typer.BadParameter(f"must be > 0 seconds, got {window_s}",
                                     param_hint="--window")
        return promtraffic.Interval(window_s=window_s)
    try:
        return promtraffic.Interval(since=promtraffic.parse_time(since))
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--since") from None
