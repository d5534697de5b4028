"""The background load (open loop mixed over items and sizes, until stopped) at the
client seam; against real services in tests/integration/test_harness_run.py."""

from __future__ import annotations

import asyncio
import math
import time
from collections import Counter

import pytest

from order_app.background import LoadSummary, run_background_load
from order_app.openloop import run_open_loop
from settlers.client import ProducerClient, ProduceResult
from settlers.trace import Hop


class Fake:
    def __init__(self, service_s: float = 0.001) -> None:
        self.service_s = service_s
        self.calls: Counter[tuple[str, int]] = Counter()
        self.closed = False

    async def produce(self, item: str, count: int = 1, size: int = 16, *, caller: str = "",
                      timeout: float | None = None) -> ProduceResult:
        self.calls[(item, size)] += 1
        await asyncio.sleep(self.service_s)
        return ProduceResult(item, count, size, count * size,
                             [Hop(item, f"{item}-0", "", size, 1.0)], self.service_s)

    async def close(self) -> None:
        self.closed = True


async def _until(cond: object, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


async def test_open_loop_stops_when_told_and_rates_over_the_time_it_ran() -> None:
    client = Fake()
    stop = asyncio.Event()
    task = asyncio.ensure_future(run_open_loop(client, "flour", size=16, rps=200,  # type: ignore[arg-type]
                                               duration_s=3600, stop=stop))
    await _until(lambda: sum(client.calls.values()) >= 20)
    stop.set()
    report = await asyncio.wait_for(task, 10)
    assert report.ok == report.sent == sum(client.calls.values())
    assert report.elapsed_s < 60  # the window it ran, not the hour it was scheduled for
    assert report.achieved_rps == pytest.approx(report.ok / report.elapsed_s)


async def test_background_load_mixes_evenly_over_items_and_sizes_and_stops() -> None:
    clients: dict[str, Fake] = {}

    def factory(target: str, protocol: str, timeout: float) -> ProducerClient:
        clients[target] = Fake()
        return clients[target]  # type: ignore[return-value]

    stop = asyncio.Event()
    targets = {"flour": "a:1", "boat": "b:1"}
    task = asyncio.ensure_future(run_background_load(
        targets, "http", ["flour", "boat"], [16, 4096], rps=400, count=1, stop=stop, seed=3,
        client_factory=factory))
    await _until(lambda: len(clients) == 2 and all(
        sum(c.calls.values()) >= 60 for c in clients.values()))
    stop.set()
    summary = await asyncio.wait_for(task, 10)
    calls = clients["a:1"].calls + clients["b:1"].calls
    assert set(calls) == {(i, s) for i in targets for s in (16, 4096)}  # every pair
    assert all(c.closed for c in clients.values())
    assert summary.offered_rps == 400
    assert summary.ok == summary.sent == sum(calls.values())
    assert summary.achieved_rps > 0 and summary.errors == summary.dropped == 0
    assert 0 < summary.p50_ms <= summary.p99_ms


async def test_zero_load_sends_nothing_and_waits_for_stop() -> None:
    stop = asyncio.Event()

    def factory(target: str, protocol: str, timeout: float) -> ProducerClient:
        raise AssertionError("no client for a zero load")

    task = asyncio.ensure_future(run_background_load(
        {"flour": "a:1"}, "http", ["flour"], [16], rps=0, count=1, stop=stop,
        client_factory=factory))
    await asyncio.sleep(0)
    assert not task.done()
    stop.set()
    summary = await task
    assert summary == LoadSummary(offered_rps=0)
    assert summary.achieved_rps == 0 and math.isnan(summary.p50_ms)


@pytest.mark.parametrize("rps", [-1.0, math.nan, math.inf])
async def test_background_load_refuses_bad_rates(rps: float) -> None:
    with pytest.raises(ValueError, match="finite rate"):
        await run_background_load({"flour": "a:1"}, "http", ["flour"], [16], rps=rps,
                                  count=1, stop=asyncio.Event())
