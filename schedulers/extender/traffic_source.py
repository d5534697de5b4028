"""Where the extender gets F(A,B): a fixed matrix, or Prometheus with a short cache.

The Prometheus path must never make kube-scheduler wait: one query round has a
hard timeout (1 s by default, the extender's httpTimeout is 5 s), a failure is
logged and cached like a success (so the next requests answer at once, all
zero = no vote), and concurrent requests share one refresh.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Protocol

import aiohttp

from schedulers import promtraffic
from schedulers.traffic import TrafficError, TrafficMatrix

__all__ = ["PrometheusTraffic", "StaticTraffic", "TrafficSource"]

log = logging.getLogger("schedulers.extender")


class TrafficSource(Protocol):
    errors: int

    async def get(self) -> TrafficMatrix: ...

    async def close(self) -> None: ...


class StaticTraffic:
    def __init__(self, matrix: TrafficMatrix) -> None:
        self.matrix = matrix
        self.errors = 0

    async def get(self) -> TrafficMatrix:
        return self.matrix

    async def close(self) -> None:
        return None


class PrometheusTraffic:
    def __init__(self, url: str, *, window_s: float = 300.0, ttl_s: float = 5.0,
                 timeout_s: float = 1.0, metrics: promtraffic.MetricsKind = "auto") -> None:
        self.url = url
        self.window_s = window_s
        self.ttl_s = ttl_s
        self.timeout_s = timeout_s
        self.metrics: promtraffic.MetricsKind = metrics
        self.errors = 0
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
                    self._session, self.url, self.window_s, timeout_s=self.timeout_s,
                    metrics=self.metrics)
            except TrafficError as exc:
                self.errors += 1
                log.warning("%s; scoring all nodes 0 (no vote) for %.0f s", exc, self.ttl_s)
                self._matrix = TrafficMatrix(source=f"unavailable: {exc}")
            self._expires = time.monotonic() + self.ttl_s
            return self._matrix

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
