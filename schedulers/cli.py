"""`schedulers`: the NetMARKS extender, the firmament and trade schedulers as real processes."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from schedulers import promtraffic
from schedulers.framework import Policy
from schedulers.registry import get_policy, policy_spec
from schedulers.traffic import TrafficError, TrafficMatrix

__all__ = ["app", "main"]

app = typer.Typer(
    name="schedulers",
    help=(
        "Network-aware placement for Kubernetes: the NetMARKS scheduler extender, a "
        "Firmament-style min-cost-flow custom scheduler and a TraDE-style greedy mapper.\n\n"
        "Examples:\n\n"
        "  schedulers netmarks-extender --traffic t.csv --port 8888\n\n"
        "  schedulers netmarks-extender --prometheus http://127.0.0.1:9090 --kubeconfig kc\n\n"
        "  schedulers firmament --kubeconfig kc --scheduler-name firmament --interval 2\n\n"
        "  schedulers trade --kubeconfig kc --traffic t.csv --network net.json --settle 0.5"
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)

_Prom = Annotated[str | None, typer.Option(
    "--prometheus", help="Prometheus base URL, e.g. http://127.0.0.1:9090")]
_Traffic = Annotated[Path | None, typer.Option(
    "--traffic", help="traffic matrix file (CSV/Parquet/YAML: source,destination,bytes)")]
_Kube = Annotated[str | None, typer.Option(
    "--kubeconfig", help="kubeconfig of the cluster (default: in-cluster config)")]
_Since = Annotated[str | None, typer.Option(
    "--since", metavar="T0",
    help="Prometheus traffic = the average since T0 (the paper's F; the default mode): unix "
         "seconds or an ISO 8601 time with a zone, e.g. 2026-12-01T22:50:03Z. Default: "
         "this process's start. Exclusive with --window")]
_Window = Annotated[float | None, typer.Option(
    "--window", metavar="S",
    help="Prometheus traffic = the average over the last S seconds (a sliding window) "
         "instead of since T0; traffic older than S is forgotten")]

# The batch binders' (firmament, trade) round options.
_BindWorkers = Annotated[int, typer.Option(
    min=1, max=256,
    help="Binding requests in flight at once (1: one after another). Each bind is an "
         "API round trip; for thousands of pods they, not the solve, set the pace")]
_Interval = Annotated[float, typer.Option(min=0.01, help="seconds between batch rounds")]
_Settle = Annotated[float, typer.Option(
    min=0.0, help="before a round, wait until no new pod has arrived for this many seconds "
                  "(0: cut batches at the interval tick, like Poseidon)")]
_HealthPort = Annotated[int, typer.Option(
    min=0, max=65535,
    help="serve GET /healthz on this port (0: off): 200 while a scheduling round has "
         "started in the last 120 s, else 503 (a liveness probe's endpoint)")]


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def _interval(prometheus: str | None, since: str | None, window: float | None,
              started: float) -> promtraffic.Interval | None:
    """The interval Prometheus traffic averages over (None without --prometheus)."""
    if since is not None and window is not None:
        raise typer.BadParameter(
            "give --since T0 (average since T0, the default) or --window S (sliding window), "
            "not both", param_hint="--since/--window")
    if prometheus is None:
        if since is not None or window is not None:
            raise typer.BadParameter(
                "--since and --window choose the interval of Prometheus traffic; they need "
                "--prometheus URL", param_hint="--since/--window")
        return None
    if window is not None:
        if not window > 0:
            raise typer.BadParameter(f"must be > 0 seconds, got {window}", param_hint="--window")
        return promtraffic.Interval(window_s=window)
    if since is None:
        return promtraffic.Interval(since=started)
    try:
        t0 = promtraffic.parse_time(since)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--since") from None
    if t0 > started + 60:
        logging.getLogger("schedulers").warning(
            "--since %s is %.0f s in the future: no traffic until then (clock skew?)",
            promtraffic.iso_time(t0), t0 - started)
    return promtraffic.Interval(since=t0)


def _log_traffic(logger: str, prometheus: str | None, interval: promtraffic.Interval | None,
                 traffic: Path | None, given_since: bool, metrics: str = "auto") -> None:
    log = logging.getLogger(logger)
    if prometheus is not None and interval is not None:
        why = ("--window" if interval.mode == "window" else
               "--since" if given_since else "no --since: this process's start")
        log.info("traffic: Prometheus %s (%s metrics), %s (%s)", prometheus, metrics,
                 interval.describe(), why)
    elif traffic is not None:
        log.info("traffic: fixed matrix from %s", traffic)
    else:
        log.info("traffic: none (every score 0, no vote)")


def _load_traffic(traffic: Path | None) -> TrafficMatrix:
    try:
        return TrafficMatrix.from_file(traffic) if traffic else TrafficMatrix()
    except TrafficError as exc:
        raise typer.BadParameter(str(exc), param_hint="--traffic") from None


@app.command("netmarks-extender")
def netmarks_extender(
    prometheus: _Prom = None,
    traffic: _Traffic = None,
    port: Annotated[int, typer.Option(help="port to listen on")] = 8888,
    host: Annotated[str, typer.Option(help="address to bind")] = "127.0.0.1",
    kubeconfig: _Kube = None,
    in_cluster: Annotated[bool, typer.Option(
        help="watch pods with the in-cluster service account")] = False,
    since: _Since = None,
    window: _Window = None,
    cache_ttl: Annotated[float, typer.Option(help="seconds a Prometheus answer is reused")] = 5,
    query_timeout: Annotated[float, typer.Option(
        help="seconds before a Prometheus query gives up (all-zero scores)")] = 1.0,
    metrics: Annotated[str, typer.Option(help="auto | l7 | l4 Istio byte counters")] = "auto",
    label_key: Annotated[str, typer.Option(help="pod label naming its workload")] = "app",
    bind: Annotated[bool, typer.Option(
        "--bind", help="also serve the bind verb (bindVerb: bind): bind through the API and "
                       "count the pod at once; needs --kubeconfig or --in-cluster")] = False,
    pods: Annotated[Path | None, typer.Option(
        help="fixed running pods instead of watching the API: a v1.PodList JSON file "
             "(kubectl get pods -A -o json)")] = None,
    await_binds: Annotated[float, typer.Option(
        "--await-binds", metavar="S",
        help="before scoring a pod, wait up to S seconds until the pods scored before it "
             "are bound (seen through --bind or the pod watch), so the score counts them "
             "as kube-scheduler's own cache already does; 0 (default): score at once. "
             "Costs a few ms per pod with --bind, tens without")] = 0.0,
    namespace: Annotated[str | None, typer.Option(
        help="only this namespace: watch its pods (a namespaced Role suffices) and read "
             "only the traffic into its workloads (destination_workload_namespace). "
             "Default: every namespace")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Serve the NetMARKS kube-scheduler extender over HTTP.

    POST /prioritize and /filter (extender/v1 JSON), GET /healthz, /metrics, /traffic
    (the traffic source and interval in use, and the last answer) and /status
    (traffic_seen: false means every score is 0 and NetMARKS never votes).
    Point kube-scheduler at it with an `extenders:` entry: urlPrefix
    http://HOST:PORT/, prioritizeVerb prioritize, weight 1, nodeCacheCapable true,
    ignorable true. Running pods come from --kubeconfig/--in-cluster (a pod watch)
    or --pods FILE.

    Prometheus traffic is F(A,B) averaged since --since T0 (default: the extender's
    start), or over a sliding --window S.

    Example: schedulers netmarks-extender --prometheus http://127.0.0.1:9090 --kubeconfig kc
    --since 2026-12-01T22:50:03Z
    """
    started = time.time()
    from aiohttp import web

    from schedulers.extender import (
        Binder,
        KubernetesBinder,
        KubernetesPodWatcher,
        Placements,
        PrometheusTraffic,
        StaticTraffic,
        TrafficSource,
        make_app,
    )

    _setup_logging(verbose)
    if (prometheus is None) == (traffic is None):
        raise typer.BadParameter("give exactly one of --prometheus URL or --traffic FILE")
    if not 0 <= await_binds <= 4:
        # kube-scheduler gives an extender 5 s (httpTimeout) before skipping its scores.
        raise typer.BadParameter(f"must be between 0 and 4 seconds (the extender's "
                                 f"httpTimeout is 5 s), got {await_binds}",
                                 param_hint="--await-binds")
    if await_binds and pods is not None:
        raise typer.BadParameter("--await-binds waits for bindings the extender sees; with "
                                 "--pods FILE it sees none", param_hint="--await-binds")
    if metrics not in ("auto", "l7", "l4"):
        raise typer.BadParameter("must be auto, l7 or l4", param_hint="--metrics")
    interval = _interval(prometheus, since, window, started)
    _log_traffic("schedulers.extender", prometheus, interval, traffic, since is not None,
                 metrics)
    source: TrafficSource
    if prometheus:
        kind: promtraffic.MetricsKind = metrics  # type: ignore[assignment]
        source = PrometheusTraffic(prometheus, interval=interval, ttl_s=cache_ttl,
                                   timeout_s=query_timeout, metrics=kind, namespace=namespace)
    else:
        source = StaticTraffic(_load_traffic(traffic))
    if bind and not (kubeconfig or in_cluster):
        raise typer.BadParameter("--bind needs --kubeconfig or --in-cluster")
    placements = Placements(label_key)
    binder: Binder | None = KubernetesBinder(kubeconfig) if bind else None
    if pods is not None:
        try:
            pod_list = json.loads(pods.read_text())
            for item in pod_list.get("items") or []:
                placements.apply_event("ADDED", item)
        except (OSError, ValueError, AttributeError) as exc:
            raise typer.BadParameter(f"{pods}: not a readable v1.PodList JSON: {exc}",
                                     param_hint="--pods") from None
    elif kubeconfig or in_cluster:
        watcher = KubernetesPodWatcher(placements, kubeconfig, namespace)
        watcher.start()
        # Scores before the first pod list would all be 0; give the list a moment.
        if not watcher.synced.wait(10):
            logging.getLogger("schedulers.extender").warning(
                "no pod list from the API server yet; serving anyway (scores 0 until then)")
    else:
        logging.getLogger("schedulers.extender").warning(
            "no --kubeconfig/--in-cluster/--pods: the extender knows no running pods, "
            "so every score is 0")
    try:  # uvloop shaves tens of microseconds off every request
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    # No per-request access log unless asked: it costs more than scoring 100 nodes.
    access = logging.getLogger("aiohttp.access") if verbose else None
    web.run_app(make_app(source, placements, binder, await_binds_s=await_binds), host=host,
                port=port, print=None, access_log=access)


@app.command("firmament")
def firmament(
    kubeconfig: _Kube = None,
    scheduler_name: Annotated[str | None, typer.Option(
        help="schedulerName of our pods (default: the firmament policy's, see "
             "`schedulers policies`)")] = None,
    interval: _Interval = 2.0,
    settle: _Settle = 0.0,
    prometheus: _Prom = None,
    traffic: _Traffic = None,
    since: _Since = None,
    window: _Window = None,
    rounds: Annotated[int, typer.Option(help="commit rounds per batch")] = 6,
    label_key: Annotated[str, typer.Option(help="pod label naming its workload")] = "app",
    bind_workers: _BindWorkers = 64,
    once: Annotated[bool, typer.Option(help="run a single batch and exit")] = False,
    health_port: _HealthPort = 0,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Run the firmament custom scheduler (min-cost-flow batches, Binding API).

    Every --interval seconds, all Pending pods with spec.schedulerName equal to
    --scheduler-name are placed in one batch against the running pods and bound.
    With --settle S a round waits until the pending pods stop arriving for S seconds
    (at most 10 s), so one deployment's pods are placed together.

    Traffic comes from --traffic FILE, or from --prometheus averaged since --since T0
    (default: the scheduler's start) or over a sliding --window S, re-read every round.

    Example: schedulers firmament --kubeconfig kc --traffic t.csv --interval 2 --settle 0.5
    """
    _run_binder("firmament", {"rounds": rounds}, time.time(), kubeconfig=kubeconfig,
                scheduler_name=scheduler_name, interval=interval, settle=settle,
                prometheus=prometheus, traffic=traffic, since=since, window=window,
                label_key=label_key, once=once, verbose=verbose, bind_workers=bind_workers,
                health_port=health_port)


def _run_binder(policy_name: str, opts: dict[str, Any], started: float, *,
                kubeconfig: str | None, scheduler_name: str | None, interval: float,
                settle: float, prometheus: str | None, traffic: Path | None,
                since: str | None, window: float | None, label_key: str, once: bool,
                verbose: bool, bind_workers: int, health_port: int = 0) -> None:
    """A batch binder placing with ``policy_name`` (firmament, trade): the shared loop
    of schedulers.firmament_k8s, with traffic from a file or re-read from Prometheus
    every round."""
    from schedulers.firmament_k8s import FirmamentScheduler, KubernetesAPI

    _setup_logging(verbose)
    logger = f"schedulers.{policy_name}"
    span = _interval(prometheus, since, window, started)
    _log_traffic(logger, prometheus, span, traffic, since is not None)
    fixed = _load_traffic(traffic)
    last_good = TrafficMatrix()

    def policy() -> Policy:
        # Traffic is re-read every round: placements follow the mesh as it changes.
        nonlocal last_good
        matrix = fixed
        if prometheus and span is not None:
            try:
                matrix = last_good = TrafficMatrix.from_prometheus(prometheus, span)
            except TrafficError as exc:
                logging.getLogger(logger).warning("%s; using the last traffic seen", exc)
                matrix = last_good
        return get_policy(policy_name, traffic=matrix, **opts)

    if scheduler_name is None:
        counterpart = policy_spec(policy_name).kubernetes
        assert counterpart is not None  # a binder's policy has one: its module says so
        scheduler_name = counterpart.scheduler_name
    sched = FirmamentScheduler(KubernetesAPI(kubeconfig, connections=bind_workers), policy,
                               scheduler_name=scheduler_name, label_key=label_key,
                               bind_workers=bind_workers)
    if once:
        r = sched.run_once()
        typer.echo(f"{r.pending} pending, {len(r.bound)} bound, {len(r.failed)} failed, "
                   f"{len(r.unschedulable)} unschedulable in {r.seconds:.3f} s")
        return
    from schedulers.health import Heartbeat, serve_health

    beat = Heartbeat()
    if health_port:
        serve_health(beat, health_port)
    sched.run_forever(interval, settle_s=settle, heartbeat=beat.beat)


@app.command("trade")
def trade(
    kubeconfig: _Kube = None,
    scheduler_name: Annotated[str | None, typer.Option(
        help="schedulerName of our pods (default: the trade policy's, see "
             "`schedulers policies`)")] = None,
    interval: _Interval = 2.0,
    settle: _Settle = 0.0,
    network: Annotated[Path | None, typer.Option(
        "--network", help="delays between nodes: a JSON file as schedulers.netfile writes it "
                          "(the harness writes the experiment's topology). Default: a flat "
                          "network, every pair of nodes alike (traffic-only co-location)")
                       ] = None,
    prometheus: _Prom = None,
    traffic: _Traffic = None,
    since: _Since = None,
    window: _Window = None,
    passes: Annotated[int, typer.Option(
        min=0, help="improvement passes after the greedy construction (0: none)")] = 2,
    ties: Annotated[str, typer.Option(
        help="equal-cost nodes: spread (least utilised), pack (most utilised) or random")
                    ] = "spread",
    label_key: Annotated[str, typer.Option(help="pod label naming its workload")] = "app",
    bind_workers: _BindWorkers = 64,
    once: Annotated[bool, typer.Option(help="run a single batch and exit")] = False,
    health_port: _HealthPort = 0,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Run the TraDE-style mapper as a custom scheduler (greedy traffic x delay, Binding API).

    Every --interval seconds, all Pending pods with spec.schedulerName equal to
    --scheduler-name are placed in one batch against the running pods and bound: each
    pod on the node where it adds the least traffic x delay to the pods placed so far,
    where it fits, then --passes rounds of single-pod moves (docs/schedulers.md, TraDE).
    --settle S waits until the pending pods stop arriving for S seconds (at most 10 s).

    Traffic comes from --traffic FILE, or from --prometheus averaged since --since T0
    or over a sliding --window S, re-read every round. Delays come from --network FILE.

    Example: schedulers trade --kubeconfig kc --traffic t.csv --network net.json --settle 0.5
    """
    from schedulers.netfile import NetworkFileError, read_network
    from schedulers.policies.trade import TIES

    if ties not in TIES:
        raise typer.BadParameter(f"must be one of {', '.join(TIES)}, got {ties!r}",
                                 param_hint="--ties")
    try:
        net = read_network(network) if network is not None else None
    except NetworkFileError as exc:
        raise typer.BadParameter(str(exc), param_hint="--network") from None
    _run_binder("trade", {"network": net, "passes": passes, "ties": ties}, time.time(),
                kubeconfig=kubeconfig, scheduler_name=scheduler_name, interval=interval,
                settle=settle, prometheus=prometheus, traffic=traffic, since=since,
                window=window, label_key=label_key, once=once, verbose=verbose,
                bind_workers=bind_workers, health_port=health_port)


@app.command("policies")
def policies() -> None:
    """List every policy the testbed knows: built-in ones and installed plug-ins.

    For each: where it comes from, what it is, whether it places by traffic, and the
    real scheduler that stands for it on the kwok and kubernetes backends (none: a
    Python model, measured on the local backend only). A plug-in that cannot load is
    listed with its error (exit status 1).

    Example: schedulers policies
    """
    from schedulers.registry import PluginError, available_policies, policy_origin

    ok = True
    for name in available_policies():
        try:
            spec = policy_spec(name)
        except PluginError as exc:
            typer.echo(f"{name}  ({policy_origin(name)})\n    BROKEN: {exc}\n")
            ok = False
            continue
        lines = [f"{name}  ({policy_origin(name)})", f"    {spec.summary}",
                 f"    traffic:       {'the warm-up matrix' if spec.uses_traffic else 'none'}"]
        if spec.uses_network or spec.uses_economy:
            given = [w for w, used in (("the topology's delays between nodes", spec.uses_network),
                                       ("the economy's dependencies", spec.uses_economy)) if used]
            lines.append(f"    also:          {', '.join(given)}")
        lines.extend(_rebalancer_lines(spec.rebalancer))
        k8s = spec.kubernetes
        if k8s is None:
            lines.append("    on Kubernetes: none (a Python model: the local backend only)")
        else:
            lines.append(f"    on Kubernetes: schedulerName {k8s.scheduler_name} "
                         f"({k8s.kind}: {k8s.component})")
            pad = "                   "
            if k8s.kind == "default":
                lines.append(f"{pad}the cluster's own scheduler")
            if k8s.external:
                lines.append(f"{pad}run by you: a binary or Deployment answering to it")
            if k8s.host_command:
                lines.append(f"{pad}kwok: a process on this machine, schedulers "
                             f"{' '.join(k8s.host_command)}")
            if k8s.chart_key:
                lines.append(f"{pad}in a cluster: the chart's {k8s.chart_key}.enabled")
            if k8s.extender is not None:
                lines.append(f"{pad}your extender at {k8s.extender.url} (weight "
                             f"{k8s.extender.weight}), called by a kube-scheduler profile "
                             "the harness runs")
            if k8s.command:
                lines.append(f"{pad}kwok: your program, started by the harness: "
                             f"{' '.join(k8s.command)}")
            if k8s.binary:
                lines.append(f"{pad}kwok: {k8s.binary} from tools/k8s/build's cache, "
                             "started by the harness with its profile"
                             + (" and objects" if k8s.setup else ""))
        typer.echo("\n".join(lines) + "\n")
    if not ok:
        raise typer.Exit(1)


def _rebalancer_lines(name: str | None) -> list[str]:
    """What moves running pods for a policy in dynamic scenarios (harness --scenario)."""
    if name is None:
        return ["    rebalancer:    none (never moves a running pod)"]
    from schedulers.rebalancers import rebalancer_summary

    strategy, summary = rebalancer_summary(name)
    return [f"    rebalancer:    {name} ({strategy})", f"                   {summary}"]


@app.command("example-traffic")
def example_traffic(
    out: Annotated[Path, typer.Option("--out", "-o", help="CSV file to write")],
    economy: Annotated[str | None, typer.Option(
        help="economy file or shipped name (default settlers2)")] = None,
) -> None:
    """Write the traffic matrix an economy's reference order mix causes, as CSV.

    The mix: every item ordered once per second at every message size of the paper
    (16 B .. 1 MiB).

    Example: schedulers example-traffic --economy my-economy.yaml --out traffic.csv
    """
    from schedulers.traffic import traffic_from_economy
    from settlers.economy import EconomyError, load_economy

    try:
        econ = load_economy(economy)
    except EconomyError as exc:
        raise typer.BadParameter(str(exc), param_hint="--economy") from None
    matrix = traffic_from_economy(econ)
    matrix.to_csv(out)
    typer.echo(f"wrote {out}: {len(matrix)} pairs, {matrix.total():,.0f} B/s in total")


def main() -> None:
    app()
if __name__ == "__main__":
    main()
