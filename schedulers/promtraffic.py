"""NetMARKS' traffic source: Istio byte counters via the Prometheus HTTP API.

F(A,B) = (increase of request bytes A->B + increase of response bytes of those
calls) / the interval's length. The interval (:class:`Interval`) is, by default,
the paper's: everything since a start time t0 (the warm-up's start), so at t_i

    F(t_i) = (bytes_ti - bytes_t0) / (t_i - t0)
           = F(t_{i-1}) (t_{i-1} - t0) / (t_i - t0) + (new bytes) / (t_i - t0),

a time-weighted running average that keeps the warm-up's traffic however long
the scheduler waits afterwards. In PromQL that is ``increase(m[<t_i - t0>])``
evaluated at t_i (``time=`` of the query), which also handles counter resets
(a recreated pod's counters start again at 0). A sliding window (``increase(m[W])``
at t_i) is the other option: it forgets traffic older than W.

With sidecars both ends report the same call (reporter "source" and
"destination"), so per pair we take the larger of the reporters instead of
their sum. Where only L4 metrics exist (ambient meshes, our emulated
mesh) the TCP counters carry the same two directions:
``istio_tcp_received_bytes_total`` (request side) + ``istio_tcp_sent_bytes_total``
(response side). The names are :mod:`settlers.istio`'s, the client :mod:`settlers.promql`.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import aiohttp

from schedulers.traffic import TrafficError, TrafficMatrix
from settlers import istio, promql

__all__ = [
    "Interval",
    "MetricsKind",
    "fetch_async",
    "fetch_sync",
    "iso_time",
    "parse_time",
    "queries",
    "queries_at",
]

MetricsKind = Literal["auto", "l7", "l4"]


def iso_time(unix_s: float) -> str:
    """``2026-12-01T22:50:03Z`` (UTC, milliseconds when not a whole second)."""
    t = datetime.fromtimestamp(unix_s, UTC)
    text = t.isoformat(timespec="milliseconds" if t.microsecond else "seconds")
    return text.replace("+00:00", "Z")


def parse_time(text: str) -> float:
    """Unix seconds from ``1764629403.5`` or an ISO 8601 time with a zone
    (``2026-12-01T22:50:03Z``, ``...+01:00``). Raises ValueError with the reason."""
    text = text.strip()
    try:
        value = float(text)
    except ValueError:
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(f"{text!r} is neither unix seconds nor an ISO 8601 time "
                             "(e.g. 2026-12-01T22:50:03Z)") from None
        if parsed.tzinfo is None:
            raise ValueError(f"{text!r} has no time zone; add Z (UTC) or an offset "
                             "like +01:00") from None
        value = parsed.timestamp()
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{text!r} is not a time after 1970")
    return value


@dataclass(frozen=True)
class Interval:
    """What F(A,B) averages over: since ``since`` (unix seconds; the paper's definition)
    or over the last ``window_s`` seconds (a sliding window). Exactly one is set."""

    since: float | None = None
    window_s: float | None = None

    def __post_init__(self) -> None:
        if (self.since is None) == (self.window_s is None):
            raise ValueError("an interval is either since a start time or a sliding window")
        if self.since is not None and not (math.isfinite(self.since) and self.since >= 0):
            raise ValueError(f"since must be unix seconds >= 0, got {self.since}")
        if self.window_s is not None and not (math.isfinite(self.window_s)
                                              and self.window_s > 0):
            raise ValueError(f"window must be > 0 s, got {self.window_s}")

    @property
    def mode(self) -> Literal["since", "window"]:
        return "since" if self.since is not None else "window"

    def seconds_at(self, now: float) -> float:
        """Length of the range that ends at ``now`` (the divisor of F)."""
        if self.window_s is not None:
            return self.window_s
        assert self.since is not None
        if now <= self.since:
            raise TrafficError(f"the traffic start time {iso_time(self.since)} is not in the "
                               f"past (now {iso_time(now)}): no traffic to average yet")
        return now - self.since

    def describe(self) -> str:
        if self.since is not None:
            return f"average since {iso_time(self.since)}"
        return f"sliding window of {self.window_s:g} s"

    def as_json(self) -> dict[str, Any]:
        return {"mode": self.mode, "since": self.since,
                "since_iso": None if self.since is None else iso_time(self.since),
                "window_s": self.window_s}


def queries(kind: Literal["l7", "l4"], window_s: float,
            namespace: str | None = None) -> list[str]:
    """The PromQL NetMARKS runs: bytes per (source, destination, reporter) over the window;
    with ``namespace``, only the calls into that namespace's workloads (workload names
    are only unique within a namespace)."""
    if window_s <= 0:
        raise ValueError(f"window must be > 0 s, got {window_s}")
    window = f"{max(1, round(window_s * 1000))}ms"
    by = f"{istio.SOURCE_WORKLOAD}, {istio.DESTINATION_WORKLOAD}, {istio.REPORTER}"
    where = (f'{{{istio.DESTINATION_WORKLOAD_NAMESPACE}="{_escape(namespace)}"}}'
             if namespace else "")
    return [
        f"sum by ({by}) (increase({metric}{where}[{window}]))"
        for metric in (istio.L7_BYTES if kind == "l7" else istio.L4_BYTES)
    ]


def _escape(value: str) -> str:
    """A PromQL string literal's body (double-quoted)."""
    return value.replace("\\", "\\\\").replace('"', '\\"')


def _range_ms(interval: Interval, now: float) -> int:
    return max(1, round(interval.seconds_at(now) * 1000))


def queries_at(kind: Literal["l7", "l4"], interval: Interval,
               now: float, namespace: str | None = None) -> tuple[list[str], float]:
    """The PromQL to evaluate at ``now`` (``time=now``) and the seconds its range covers.

    Since t0: ``increase(m[<now - t0>])`` at now = the bytes since t0, counter resets
    included; divided by (now - t0) it is the paper's running average.
    """
    ms = _range_ms(interval, now)
    return queries(kind, ms / 1000, namespace), ms / 1000


def _combine(results: Iterable[list[dict[str, Any]]], window_s: float,
             source: str, *, until: float | None = None) -> TrafficMatrix:
    # (src, dst) -> reporter -> bytes; summed over the metrics of one call direction set.
    per_reporter: dict[tuple[str, str], dict[str, float]] = {}
    for result in results:
        for series in result:
            labels = series.get("metric", {})
            src = labels.get(istio.SOURCE_WORKLOAD, "")
            dst = labels.get(istio.DESTINATION_WORKLOAD, "")
            if src in istio.OUTSIDE_WORKLOADS or dst in istio.OUTSIDE_WORKLOADS:
                continue
            try:
                value = float(series["value"][1])
            except (KeyError, IndexError, TypeError, ValueError):
                continue
            if value != value or value < 0:  # NaN (no samples) or counter oddities
                continue
            rep = per_reporter.setdefault((src, dst), {})
            reporter = labels.get(istio.REPORTER, "")
            rep[reporter] = rep.get(reporter, 0.0) + value
    rates = {pair: max(by_rep.values()) / window_s for pair, by_rep in per_reporter.items()}
    since = None if until is None else until - window_s
    return TrafficMatrix(rates, source=source, since=since, until=until)


def _vector(body: Any, url: str) -> list[dict[str, Any]]:
    try:
        return promql.vector_result(body)
    except promql.PrometheusError as exc:
        raise TrafficError(f"{url}: {exc}") from None


def _interval(span: Interval | float) -> Interval:
    return span if isinstance(span, Interval) else Interval(window_s=float(span))


def _label(url: str, kind: str, interval: Interval) -> str:
    return f"prometheus {url} ({kind.upper()}), {interval.describe()}"


def fetch_sync(url: str, interval: Interval | float, *, timeout_s: float = 2.0,
               metrics: MetricsKind = "auto", now: float | None = None,
               namespace: str | None = None) -> TrafficMatrix:
    """Blocking fetch (CLI use) of F over ``interval`` (a number: a sliding window of
    that many seconds), evaluated at ``now`` (default: this machine's clock). Raises
    :class:`TrafficError` when Prometheus fails."""
    span = _interval(interval)
    at = time.time() if now is None else now
    range_s = _range_ms(span, at) / 1000

    def run(kind: Literal["l7", "l4"]) -> list[list[dict[str, Any]]]:
        out = []
        for q in queries_at(kind, span, at, namespace)[0]:
            try:
                body = promql.query_sync(url, q, at, timeout_s=timeout_s)
            except promql.PrometheusError as exc:
                raise TrafficError(str(exc)) from exc
            out.append(_vector(body, url))
        return out

    return _pick(run, url, span, range_s, at, metrics)


async def fetch_async(session: aiohttp.ClientSession, url: str, interval: Interval | float, *,
                      timeout_s: float = 1.0, metrics: MetricsKind = "auto",
                      now: float | None = None, namespace: str | None = None) -> TrafficMatrix:
    """Non-blocking fetch with a hard overall timeout (the extender's path)."""
    span = _interval(interval)
    at = time.time() if now is None else now
    range_s = _range_ms(span, at) / 1000

    async def one(q: str) -> list[dict[str, Any]]:
        return _vector(await promql.query_async(session, url, q, at), url)

    async def run(kind: Literal["l7", "l4"]) -> list[list[dict[str, Any]]]:
        asked = queries_at(kind, span, at, namespace)[0]
        return list(await asyncio.gather(*(one(q) for q in asked)))

    try:
        async with asyncio.timeout(timeout_s):
            if metrics != "auto":
                return _combine(await run(metrics), range_s, _label(url, metrics, span),
                                until=at)
            l7, l4 = await asyncio.gather(run("l7"), run("l4"))
    except TimeoutError as exc:
        raise TrafficError(f"{url}: Prometheus did not answer within {timeout_s} s") from exc
    except promql.PrometheusError as exc:
        raise TrafficError(str(exc)) from exc
    matrix = _combine(l7, range_s, _label(url, "l7", span), until=at)
    return matrix if matrix else _combine(l4, range_s, _label(url, "l4", span), until=at)


def _pick(run: Any, url: str, span: Interval, range_s: float, at: float,
          metrics: MetricsKind) -> TrafficMatrix:
    if metrics != "auto":
        return _combine(run(metrics), range_s, _label(url, metrics, span), until=at)
    matrix = _combine(run("l7"), range_s, _label(url, "l7", span), until=at)
    return matrix if matrix else _combine(run("l4"), range_s, _label(url, "l4", span), until=at)
