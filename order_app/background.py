"""A background load: open-loop orders mixed over items and sizes, until told to stop.

The measured sweep sends one order at a time, so the services never contend. A
background load keeps them busy meanwhile: ``rps`` orders per second in all, spread
evenly over every (item, size) pair of the measured mix, each pair an independent
Poisson stream of the open-loop driver (``order_app.openloop``), so the sum is a
Poisson stream at ``rps`` and no order waits for another (no coordinated omission).
It runs until ``stop`` is set; the summary says what was offered, what was achieved
(successful answers per second) and the background orders' own latencies.

It runs as asyncio tasks in the caller's process, beside the measured sweep: the load
starts and stops exactly around the measured orders and shares their clients' code,
with no second process to start, synchronise and collect from. The price is that
both share one event loop: at high rates the driver itself adds delay, which
``max_launch_lag_ms`` shows (large values: the driver, not the services, was the
bottleneck).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from order_app.openloop import OpenLoopReport, new_histogram, run_open_loop
from settlers.client import ProducerClient, open_client
from settlers.wire import WireProtocol

__all__ = ["LoadSummary", "run_background_load"]

# A schedule long enough never to end on its own: the caller's stop ends it.
_FOREVER_S = 7 * 24 * 3600.0
# Orders in flight per (item, size) stream before the driver drops due orders
# (counted): a stalled service must not make the load open unbounded connections.
_MAX_IN_FLIGHT = 256


@dataclass(frozen=True)
class LoadSummary:
    """What a background load did (latencies in ms, from the intended send time)."""

    offered_rps: float
    achieved_rps: float = 0.0
    # Poisson arrivals: over a few seconds the schedule itself offers more or fewer
    # orders than the rate (about +-1/sqrt(n)); compare the achieved rate with this.
    scheduled_rps: float = 0.0
    seconds: float = 0.0
    sent: int = 0
    ok: int = 0
    errors: int = 0
    dropped: int = 0
    p50_ms: float = math.nan
    p99_ms: float = math.nan
    mean_ms: float = math.nan
    max_launch_lag_ms: float = 0.0

    def to_row(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def merged(cls, offered_rps: float, reports: Sequence[OpenLoopReport]) -> LoadSummary:
        """One summary of the streams' reports: counts added, histograms merged."""
        if not reports:
            return cls(offered_rps=offered_rps)
        hist = new_histogram()
        for report in reports:
            hist.add(report.histogram)
        seconds = max(r.elapsed_s for r in reports)
        ok = sum(r.ok for r in reports)
        empty = hist.get_total_count() == 0
        return cls(
            offered_rps=offered_rps,
            achieved_rps=ok / seconds if seconds > 0 else 0.0,
            scheduled_rps=sum(r.scheduled for r in reports) / seconds if seconds > 0 else 0.0,
            seconds=seconds,
            sent=sum(r.sent for r in reports),
            ok=ok,
            errors=sum(r.errors for r in reports),
            dropped=sum(r.dropped for r in reports),
            p50_ms=math.nan if empty else hist.get_value_at_percentile(50.0) / 1e3,
            p99_ms=math.nan if empty else hist.get_value_at_percentile(99.0) / 1e3,
            mean_ms=math.nan if empty else hist.get_mean_value() / 1e3,
            max_launch_lag_ms=max(r.max_launch_lag_ms for r in reports),
        )


ClientFactory = Callable[[str, WireProtocol, float], ProducerClient]


def _open(target: str, protocol: WireProtocol, timeout: float) -> ProducerClient:
    return open_client(target, protocol, timeout=timeout)


async def run_background_load(
    targets: Mapping[str, str],
    protocol: WireProtocol,
    items: Sequence[str],
    sizes: Sequence[int],
    *,
    rps: float,
    count: int,
    stop: asyncio.Event,
    seed: int = 0,
    timeout: float = 30.0,
    client_factory: ClientFactory = _open,
) -> LoadSummary:
    """Order the mix of ``items`` x ``sizes`` at ``rps`` in all until ``stop`` is set."""
    if not math.isfinite(rps) or rps < 0:
        raise ValueError(f"background load must be a finite rate >= 0 (got {rps})")
    pairs = [(item, size) for item in items for size in sizes]
    if rps == 0 or not pairs:
        await stop.wait()
        return LoadSummary(offered_rps=rps)
    clients: dict[str, ProducerClient] = {}
    try:
        for item in items:
            target = targets[item]
            if target not in clients:
                clients[target] = client_factory(target, protocol, timeout)
        streams = [
            run_open_loop(
                clients[targets[item]], item, size=size, count=count,
                rps=rps / len(pairs), duration_s=_FOREVER_S, protocol=protocol,
                poisson=True, seed=seed * 10_007 + i, max_in_flight=_MAX_IN_FLIGHT,
                timeout=timeout, stop=stop,
            )
            for i, (item, size) in enumerate(pairs)
        ]
        reports = await asyncio.gather(*streams)
    finally:
        for client in clients.values():
            await client.close()
    return LoadSummary.merged(rps, reports)
