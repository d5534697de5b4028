"""Where the extender gets F(A,B): a fixed matrix, or Prometheus with a short cache.

Prometheus answers average over an :class:`~schedulers.promtraffic.Interval`: by
default the paper's, everything since a start time t0 (``--since``; without it, the
process's start), or a sliding window (``--window``). ``info()`` says which, and
what the last refresh returned (served as ``GET /traffic``).

The Prometheus path must never make kube-scheduler wait: one query round has a
hard timeout (1 s by default, the extender's httpTimeout is 5 s), a failure is
logged and cached like a success (so the next requests answer at once, all
zero = no vote), and concurrent requests share one refresh.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from typing import Any, Protocol

import aiohttp

from schedulers import promtraffic
from schedulers.traffic import TrafficError, TrafficMatrix

__all__ = ["STATUS_MARK", "PrometheusTraffic", "StaticTraffic", "TrafficSource"]

log = logging.getLogger("schedulers.extender")
# Starts the log line (then JSON) written when the traffic seen appears or vanishes.
STATUS_MARK = "netmarks-status"


class TrafficSource(Protocol):
    errors: int
    # Unix time of the last refresh (a Prometheus query, successful or not); None: none yet.
    last_refresh: float | None

    async def get(self) -> TrafficMatrix: ...

    def info(self) -> dict[str, Any]:
        """What traffic this source serves and over which interval (JSON-able)."""
        ...

    async def close(self) -> None: ...


def _matrix_info(matrix: TrafficMatrix) -> dict[str, Any]:
    return {"source": matrix.source, "pairs": len(matrix), "bytes_per_s": matrix.total(),
            "since": matrix.since, "until": matrix.until}


class StaticTraffic:
    def __init__(self, matrix: TrafficMatrix) -> None:
        self.matrix = matrix
        self.errors = 0
        self.last_refresh: float | None = time.time()

    async def get(self) -> TrafficMatrix:
        return self.matrix

    def info(self) -> dict[str, Any]:
        return {"kind": "fixed", "description": f"fixed traffic matrix ({self.matrix.source})",
                "last": _matrix_info(self.matrix)}

    async def close(self) -> None:
        return None


class PrometheusTraffic:
    """``interval`` (or the shorthand ``window_s``, a sliding window) defaults to the
    average since this object was made."""

    def __init__(self, url: str, *, interval: promtraffic.Interval | None = None,
                 window_s: float | None = None, ttl_s: float = 5.0,
                 timeout_s: float = 1.0, metrics: promtraffic.MetricsKind = "auto",
                 namespace: str | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        if interval is not None and window_s is not None:
            raise ValueError("give interval or window_s, not both")
        if interval is None:
            interval = (promtraffic.Interval(window_s=window_s) if window_s is not None
                        else promtraffic.Interval(since=clock()))
        self._clock = clock
        self.url = url
        self.interval = interval
        self.ttl_s = ttl_s
        self.timeout_s = timeout_s
        self.metrics: promtraffic.MetricsKind = metrics
        self.namespace = namespace
        self.errors = 0
        self.last_refresh: float | None = None
        self._seen: bool | None = None  # traffic_seen at the last refresh (for the log)
        self._matrix = TrafficMatrix(source="none yet")
        self._expires = 0.0
        self._lock = asyncio.Lock()
        self._session: aiohttp.ClientSession | None = None

    async def get(self) -> TrafficMatrix:
        if time.monotonic() < self._expires:
            return self._matrix
        async with self._lock:
            if time.monotonic() < self._expires:  # another request refreshed it
                return self._matrix
            if self._session is None:
                self._session = aiohttp.ClientSession(
                    timeout=aiohttp.ClientTimeout(total=self.timeout_s))
            try:
                self._matrix = await promtraffic.fetch_async(
                    self._session, self.url, self.interval, timeout_s=self.timeout_s,
                    metrics=self.metrics, now=self._clock(), namespace=self.namespace)
            except TrafficError as exc:
                self.errors += 1
                log.warning("%s; scoring all nodes 0 (no vote) for %.0f s", exc, self.ttl_s)
                self._matrix = TrafficMatrix(source=f"unavailable: {exc}")
            self.last_refresh = self._clock()
            self._expires = time.monotonic() + self.ttl_s
            self._log_change()
            return self._matrix

    def _log_change(self) -> None:
        """One STATUS_MARK line whenever traffic appears or disappears: a run that reads
        this log (the kubernetes backend) can tell an extender that saw no traffic, and
        so abstained from every vote, from one that placed by traffic."""
        seen = bool(self._matrix)
        if seen == self._seen:
            return
        self._seen = seen
        line = json.dumps({"traffic_seen": seen, "pairs": len(self._matrix),
                           "source": self._matrix.source, "errors": self.errors})
        if seen:
            log.info("%s %s", STATUS_MARK, line)
        else:
            log.warning("%s %s (no traffic in %s: every score is 0, NetMARKS does not vote; "
                        "GET /status)", STATUS_MARK, line, self.describe())

    def describe(self) -> str:
        where = f", namespace {self.namespace}" if self.namespace else ""
        return (f"Prometheus {self.url} ({self.metrics} metrics{where}), "
                f"{self.interval.describe()}")

    def info(self) -> dict[str, Any]:
        return {"kind": "prometheus", "url": self.url, "metrics": self.metrics,
                "namespace": self.namespace,
                "interval": self.interval.as_json(), "description": self.describe(),
                "last": _matrix_info(self._matrix)}

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
