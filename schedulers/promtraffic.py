"""NetMARKS' traffic source: Istio byte counters over a window, via the Prometheus HTTP API.

F(A,B) = (increase of request bytes A->B + increase of response bytes of those
calls) / window. With sidecars both ends report the same call (reporter
"source" and "destination"), so per pair we take the larger of the reporters
instead of their sum. Where only L4 metrics exist (ambient meshes, our emulated
mesh) the TCP counters carry the same two directions:
``istio_tcp_received_bytes_total`` (request side) + ``istio_tcp_sent_bytes_total``
(response side).
"""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable
from typing import Any, Literal

import aiohttp

from schedulers.traffic import TrafficError, TrafficMatrix

__all__ = ["MetricsKind", "fetch_async", "fetch_sync", "queries"]

MetricsKind = Literal["auto", "l7", "l4"]

_L7 = ("istio_request_bytes_sum", "istio_response_bytes_sum")
_L4 = ("istio_tcp_received_bytes_total", "istio_tcp_sent_bytes_total")
_IGNORED_WORKLOADS = {"", "unknown"}


def queries(kind: Literal["l7", "l4"], window_s: float) -> list[str]:
    """The PromQL NetMARKS runs: bytes per (source, destination, reporter) over the window."""
    if window_s <= 0:
        raise ValueError(f"window must be > 0 s, got {window_s}")
    window = f"{max(1, round(window_s * 1000))}ms"
    return [
        f"sum by (source_workload, destination_workload, reporter) "
        f"(increase({metric}[{window}]))"
        for metric in (_L7 if kind == "l7" else _L4)
    ]


def _combine(results: Iterable[list[dict[str, Any]]], window_s: float,
             source: str) -> TrafficMatrix:
    # (src, dst) -> reporter -> bytes; summed over the metrics of one call direction set.
    per_reporter: dict[tuple[str, str], dict[str, float]] = {}
    for result in results:
        for series in result:
            labels = series.get("metric", {})
            src = labels.get("source_workload", "")
            dst = labels.get("destination_workload", "")
            if src in _IGNORED_WORKLOADS or dst in _IGNORED_WORKLOADS:
                continue
            try:
                value = float(series["value"][1])
            except (KeyError, IndexError, TypeError, ValueError):
                continue
            if value != value or value < 0:  # NaN (no samples) or counter oddities
                continue
            rep = per_reporter.setdefault((src, dst), {})
            reporter = labels.get("reporter", "")
            rep[reporter] = rep.get(reporter, 0.0) + value
    rates = {pair: max(by_rep.values()) / window_s for pair, by_rep in per_reporter.items()}
    return TrafficMatrix(rates, source=source)


def _vector(body: Any, url: str) -> list[dict[str, Any]]:
    if not isinstance(body, dict) or body.get("status") != "success":
        err = body.get("error") if isinstance(body, dict) else body
        raise TrafficError(f"{url}: Prometheus query failed: {err}")
    data = body.get("data") or {}
    if data.get("resultType") != "vector":
        raise TrafficError(f"{url}: expected an instant vector, got {data.get('resultType')}")
    result = data.get("result")
    return result if isinstance(result, list) else []


def _query_url(base: str, promql: str) -> str:
    return base.rstrip("/") + "/api/v1/query?" + urllib.parse.urlencode({"query": promql})


def fetch_sync(url: str, window_s: float, *, timeout_s: float = 2.0,
               metrics: MetricsKind = "auto") -> TrafficMatrix:
    """Blocking fetch (CLI use). Raises :class:`TrafficError` when Prometheus fails."""

    def run(kind: Literal["l7", "l4"]) -> list[list[dict[str, Any]]]:
        out = []
        for q in queries(kind, window_s):
            try:
                with urllib.request.urlopen(_query_url(url, q), timeout=timeout_s) as resp:
                    body = json.loads(resp.read())
            except urllib.error.HTTPError as exc:
                try:
                    body = json.loads(exc.read())
                except ValueError:
                    raise TrafficError(f"{url}: Prometheus answered HTTP {exc.code}") from exc
            except (OSError, ValueError) as exc:
                raise TrafficError(f"{url}: cannot query Prometheus: {exc}") from exc
            out.append(_vector(body, url))
        return out

    return _pick(run, url, window_s, metrics)


async def fetch_async(session: aiohttp.ClientSession, url: str, window_s: float, *,
                      timeout_s: float = 1.0, metrics: MetricsKind = "auto") -> TrafficMatrix:
    """Non-blocking fetch with a hard overall timeout (the extender's path)."""

    async def one(q: str) -> list[dict[str, Any]]:
        async with session.get(_query_url(url, q)) as resp:
            return _vector(await resp.json(content_type=None), url)

    async def run(kind: Literal["l7", "l4"]) -> list[list[dict[str, Any]]]:
        return list(await asyncio.gather(*(one(q) for q in queries(kind, window_s))))

    try:
        async with asyncio.timeout(timeout_s):
            if metrics != "auto":
                return _combine(await run(metrics), window_s, f"prometheus {url}")
            l7, l4 = await asyncio.gather(run("l7"), run("l4"))
    except TimeoutError as exc:
        raise TrafficError(f"{url}: Prometheus did not answer within {timeout_s} s") from exc
    except (aiohttp.ClientError, ValueError) as exc:
        raise TrafficError(f"{url}: cannot query Prometheus: {exc}") from exc
    matrix = _combine(l7, window_s, f"prometheus {url} (L7)")
    return matrix if matrix else _combine(l4, window_s, f"prometheus {url} (L4)")


def _pick(run: Any, url: str, window_s: float, metrics: MetricsKind) -> TrafficMatrix:
    if metrics != "auto":
        return _combine(run(metrics), window_s, f"prometheus {url} ({metrics.upper()})")
    matrix = _combine(run("l7"), window_s, f"prometheus {url} (L7)")
    return matrix if matrix else _combine(run("l4"), window_s, f"prometheus {url} (L4)")
