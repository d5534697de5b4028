"""Bytes between workloads and nodes from Istio's counters in Prometheus.

The kubernetes data plane's ``traffic_snapshot`` (cumulative bytes per
(source workload, destination workload, source node, destination node), as every
backend's) is built here, in steps that are pure functions of Prometheus' answers:

1. raw samples of every Istio byte counter series in the namespace (a range-vector
   selector, not a sum: counters must be differenced per series before summing);
2. each series' increase since the previous snapshot, up to its first sample at or
   after the snapshot's cut (the scrape that saw everything counted before the cut).
   Resets are handled as Prometheus' ``increase`` does, without its extrapolation:
   a drop means the counter restarted from 0 (a recreated pod, a restarted proxy),
   so the new value counts in full. A series first seen after the first snapshot
   counts from 0 (Istio creates a series at its first request);
3. per (source, destination) pair one layer: L7 (request + response bytes) where
   the pair has L7 series, else L4 (TCP received + sent), never both; and of the
   reporters (sidecars report a call from both ends) the larger, as NetMARKS does
   (``schedulers.promtraffic``);
4. workloads to items and nodes from the pinned layout: the chart names a pinned
   Deployment ``<item>`` (all replicas on one node) or ``<item>-p<i>`` (the i-th
   node of its pins), so each workload sits on one node. The order Job's workload
   is its Job's name, attributed to the node its pod ran on and reported as
   ``order-app``. Traffic from outside the mesh (``unknown``) is left out, as the
   local backend leaves out its order app.

`MeshMeter` adds the waiting: a snapshot first asks Prometheus for its time (the cut),
then polls until every scrape target that reports these counters (and every target in
the namespace) has been scraped successfully at or after the cut, so the last bytes of
an order Job are not missed. A target that disappeared is not waited for; one that
does not come within ``scrape_timeout_s`` is named in a warning, and its late bytes
count in the next snapshot's interval.
"""

from __future__ import annotations

import math
import threading
import time
import warnings
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import pandas as pd

from harness.backends.base import TELEMETRY_KEYS
from harness.backends.kubernetes.values import pins_by_item
from settlers import istio
from settlers.promql import (
    PrometheusError,
    Query,
    Series,
    parse_matrix,
    parse_scalar,
    parse_vector,
)

__all__ = [
    "ORDER_WORKLOAD",
    "CounterTracker",
    "MeshMeter",
    "Workloads",
    "counter_increase",
    "node_split",
    "pair_bytes",
    "series_selector",
    "target_scope",
]

# How the order Job's traffic is named in the telemetry (the chart's `app` label).
ORDER_WORKLOAD = "order-app"

SeriesKey = tuple[tuple[str, str], ...]
PairKey = tuple[str, str, str, str]  # source item, destination item, src node, dst node


def series_selector(namespace: str) -> str:
    """Every Istio byte counter whose destination is in ``namespace``, both reporters."""
    names = "|".join(istio.L7_BYTES + istio.L4_BYTES)
    return f'{{__name__=~"{names}",{istio.DESTINATION_WORKLOAD_NAMESPACE}="{namespace}"}}'


def counter_increase(samples: Sequence[tuple[float, float]], start: float | None = None) -> float:
    """How much a counter grew over ``samples``, counting resets as Prometheus does.

    ``start`` is the value before the first sample (None: the first sample is only the
    baseline, as in Prometheus). Each rise counts its difference; each drop is a reset
    to 0, so the new value counts in full. No extrapolation to a window's edges.
    """
    total, prev = 0.0, start
    for _, value in samples:
        if prev is not None:
            total += value - prev if value >= prev else value
        prev = value
    return total


@dataclass
class CounterTracker:
    """Each series' last counted sample, so consecutive snapshots split its increase
    exactly: the snapshot at cut c counts up to the series' first sample at or after c."""

    last: dict[SeriesKey, tuple[float, float]] = field(default_factory=dict)
    cut: float | None = None

    def advance(self, series: Iterable[Series], cut: float) -> list[tuple[Series, float]]:
        """(series, increase) since the previous call, for every series with new samples."""
        out = []
        for s in series:
            key = s.key
            end = next((i for i, (ts, _) in enumerate(s.samples) if ts >= cut),
                       len(s.samples) - 1)
            upto = s.samples[:end + 1]
            if key in self.last:
                last_ts, start = self.last[key]
                new = [p for p in upto if p[0] > last_ts]
                base: float | None = start
            elif self.cut is None:
                new, base = list(upto), 0.0
            else:
                # Unseen so far: counted from 0 if it was born since the previous cut,
                # else from its last sample before that cut (seen late).
                before = [p for p in upto if p[0] < self.cut]
                new = [p for p in upto if p[0] >= self.cut]
                base = before[-1][1] if before else 0.0
            if not new:
                continue
            out.append((s, counter_increase(new, base)))
            self.last[key] = new[-1]
        self.cut = cut
        return out


@dataclass(frozen=True)
class Workloads:
    """Istio workload name -> (item, node), for the layout the chart pinned."""

    table: Mapping[str, tuple[str, str]]

    @classmethod
    def from_layout(cls, placement: Mapping[str, str],
                    jobs: Mapping[str, str] | None = None) -> Workloads:
        """``placement`` as `PhaseValues` pins it; ``jobs``: order Job name -> its node."""
        table: dict[str, tuple[str, str]] = {}
        for job, node in (jobs or {}).items():
            table[job] = (ORDER_WORKLOAD, node)
        for item, pins in pins_by_item(placement).items():
            nodes = list(dict.fromkeys(pins))  # the chart's Deployment order
            if len(nodes) == 1:
                table[item] = (item, nodes[0])
            else:
                table.update({f"{item}-p{i}": (item, n) for i, n in enumerate(nodes)})
        return cls(table)

    def resolve(self, workload: str) -> tuple[str, str]:
        """(item, node); a workload the layout does not name keeps its name, node ""."""
        return self.table.get(workload, (workload, ""))


def pair_bytes(increments: Iterable[tuple[Mapping[str, str], float]],
               workloads: Workloads) -> dict[PairKey, float]:
    """Bytes per (source item, destination item, source node, destination node): one
    layer per pair (L7 where the pair has L7 series, else L4), the larger reporter."""
    per: dict[PairKey, dict[str, dict[str, float]]] = defaultdict(dict)
    for labels, inc in increments:
        name = labels.get("__name__", "")
        layer = "l7" if name in istio.L7_BYTES else "l4" if name in istio.L4_BYTES else None
        src_w = labels.get(istio.SOURCE_WORKLOAD, "")
        dst_w = labels.get(istio.DESTINATION_WORKLOAD, "")
        if layer is None or src_w in istio.OUTSIDE_WORKLOADS or dst_w in istio.OUTSIDE_WORKLOADS:
            continue
        (src, src_node), (dst, dst_node) = workloads.resolve(src_w), workloads.resolve(dst_w)
        by_reporter = per[(src, dst, src_node, dst_node)].setdefault(layer, {})
        reporter = labels.get(istio.REPORTER, "")
        by_reporter[reporter] = by_reporter.get(reporter, 0.0) + inc
    return {key: max((layers.get("l7") or layers["l4"]).values())
            for key, layers in per.items()}


def node_split(pairs: Mapping[PairKey, float]) -> tuple[float, float]:
    """(inter-node, intra-node) bytes, as the analysis counts them (src_node != dst_node)."""
    inter = sum(v for (_, _, a, b), v in pairs.items() if a != b)
    return inter, sum(pairs.values()) - inter


def _frame(totals: Mapping[PairKey, float]) -> pd.DataFrame:
    rows = [dict(zip(TELEMETRY_KEYS, key, strict=True), bytes=round(v))
            for key, v in sorted(totals.items())]
    return pd.DataFrame(rows, columns=[*TELEMETRY_KEYS, "bytes"]).astype({"bytes": "int64"})


def _target(labels: Mapping[str, str]) -> tuple[str, str]:
    return labels.get("job", ""), labels.get("instance", "")


def target_scope(template: str, namespace: str) -> str:
    """``template`` (with ``{}`` for the matchers of ``up``) over the targets of the
    scrape jobs that report the namespace's counters, and the targets in the namespace."""
    own = f"group by (job) ({series_selector(namespace)})"
    every, in_ns = template.replace("{}", ""), [
        template.replace("{}", f'{{{label}="{namespace}"}}')
        for label in ("namespace", "kubernetes_namespace")]
    return f"({every} and on (job) {own}) or {in_ns[0]} or {in_ns[1]}"


@dataclass
class MeshMeter:
    """Cumulative bytes per workload/node pair, one interval per `snapshot` call."""

    query: Query
    namespace: str
    scrape_timeout_s: float = 90.0
    poll_s: float = 0.5
    lookback_s: float = 60.0  # how far before the previous cut to look for late series
    cancelled: threading.Event | None = None
    clock: Callable[[], float] = time.monotonic
    tracker: CounterTracker = field(default_factory=CounterTracker)
    totals: dict[PairKey, float] = field(default_factory=lambda: defaultdict(float))

    def snapshot(self, workloads: Workloads, pods: Iterable[str] = ()) -> pd.DataFrame:
        """Add the bytes counted since the previous snapshot; return the totals.
        ``pods``: the namespace's running pods (see `lagging`)."""
        cut, asked = self.prometheus_time(), self.clock()
        series = self.wait_scraped(cut, asked, list(pods))
        for key, v in pair_bytes(((s.labels, inc) for s, inc in self.tracker.advance(series, cut)),
                                 workloads).items():
            self.totals[key] += v
        return _frame(self.totals)

    def prometheus_time(self) -> float:
        """Now, on Prometheus' clock (the one its scrape timestamps use)."""
        return parse_scalar(self.query("time()", None), "time()")

    def fetch(self, cut: float, asked: float) -> list[Series]:
        """Raw samples of every series, from a little before the previous cut to now."""
        since = (self.tracker.cut if self.tracker.cut is not None else cut) - self.lookback_s
        span = cut + (self.clock() - asked) + 1.0 - since
        selector = f"{series_selector(self.namespace)}[{math.ceil(span * 1000)}ms]"
        return parse_matrix(self.query(selector, None))

    def lagging(self, cut: float, pods: Iterable[str] = ()) -> list[str]:
        """Scrape targets not yet scraped at or after ``cut``; [] when all are past it.

        Waited for: every target of a scrape job that reports these counters (a new
        sidecar or ztunnel may report them for the first time) and every target in the
        namespace, when healthy; a target that reported them, even when failing. A target
        that went away is stale in Prometheus and not waited for. When the namespace's
        pods are scrape targets (sidecars), each of ``pods`` must be one (new pods are
        discovered with a delay).
        """
        ns = self.namespace
        own = {_target(labels) for labels, _ in parse_vector(
            self.query(f"group by (job, instance) ({series_selector(ns)})", None))}
        stamps = parse_vector(self.query(target_scope("timestamp(up{})", ns), None))
        health = {_target(labels): v for labels, v in
                  parse_vector(self.query(target_scope("up{}", ns), None))}
        late = {" ".join(t) for labels, ts in stamps for t in [_target(labels)]
                if (t in own or health.get(t) == 1) and (ts < cut or health.get(t) != 1)}
        in_ns = {labels.get("pod") or labels.get("kubernetes_pod_name") or ""
                 for labels, _ in stamps if ns in (labels.get("namespace"),
                                                   labels.get("kubernetes_namespace"))}
        if in_ns - {""}:
            late |= {f"pod {pod} (not scraped yet)" for pod in set(pods) - in_ns}
        return sorted(late)

    def wait_scraped(self, cut: float, asked: float, pods: Iterable[str] = ()) -> list[Series]:
        """Poll until every live target has been scraped at or after ``cut``; the series
        then. Past ``scrape_timeout_s``: warn and use what there is."""
        deadline = asked + self.scrape_timeout_s
        cancelled = self.cancelled or threading.Event()
        while True:
            late = self.lagging(cut, pods)
            if not late:
                return self.fetch(cut, asked)
            if self.clock() >= deadline:
                warnings.warn(
                    f"Prometheus has not scraped {', '.join(late)} since the snapshot "
                    f"{self.scrape_timeout_s:.0f} s ago: bytes they counted since their last "
                    f"scrape will count in the next interval", RuntimeWarning, stacklevel=3)
                return self.fetch(cut, asked)
            if cancelled.wait(self.poll_s):
                raise PrometheusError("cancelled while waiting for Prometheus to scrape")

