"""The recorded open-loop mix: every scheduled order ends as exactly one record."""

from __future__ import annotations

import asyncio
import math

import pytest

from order_app.timeline import planned_orders, run_recorded_mix
from settlers.client import OrderError, ProduceResult


class _Client:
    """Answers flour, fails board, breaks on boat, hangs on bread (until released)."""

    def __init__(self) -> None:
        self.release = asyncio.Event()

    async def produce(self, item: str, count: int = 1, size: int = 16, *, caller: str = "",
                      timeout: float | None = None) -> ProduceResult:
        if item == "board":
            raise OrderError("upstream", "log is down")
        if item == "boat":
            raise RuntimeError("socket gone")
        if item == "bread":
            await self.release.wait()
        return ProduceResult(item, count, size, count * size, [], 0.0)

    async def close(self) -> None:
        return None


def test_plan_is_seeded_and_poisson() -> None:
    a = planned_orders(["flour", "board"], [16, 256], rate=50, duration_s=2, seed=3)
    assert a == planned_orders(["flour", "board"], [16, 256], rate=50, duration_s=2, seed=3)
    assert a != planned_orders(["flour", "board"], [16, 256], rate=50, duration_s=2, seed=4)
    assert 50 < len(a) < 150 and all(0 <= t < 2 for t, _, _ in a)
    assert {i for _, i, _ in a} == {"flour", "board"} and {s for _, _, s in a} == {16, 256}
    with pytest.raises(ValueError, match="must be > 0"):
        planned_orders(["flour"], [16], rate=0, duration_s=1)


def test_every_order_is_recorded_once_ok_failed_or_dropped() -> None:
    async def go() -> list:  # type: ignore[type-arg]
        client = _Client()
        clients = {i: client for i in ("flour", "board", "boat", "bread")}
        loop = asyncio.get_running_loop()
        loop.call_later(0.6, client.release.set)
        return await run_recorded_mix(clients, list(clients), [16], rate=200, duration_s=0.4,
                                      origin=0.0, seed=5, max_in_flight=3,
                                      now=lambda: loop.time())

    records = asyncio.run(go())
    plan = planned_orders(["flour", "board", "boat", "bread"], [16], rate=200, duration_s=0.4,
                          seed=5)
    assert len(records) == len(plan)
    assert sorted((r.item, r.size) for r in records) == sorted((i, s) for _, i, s in plan)
    kinds = {r.item: set() for r in records}  # type: dict[str, set[str]]
    for r in records:
        kinds[r.item].add("ok" if r.ok else r.error.split(":")[0])
        assert r.ok == (r.error == "") and r.ok != math.isnan(r.latency_ms)
    assert kinds["flour"] <= {"ok", "dropped"} and "ok" in kinds["flour"]
    assert "upstream" in kinds["board"] and "client" in kinds["boat"]
    # bread hangs until released: the bound of 3 in flight drops later orders, visibly.
    assert any(r.error.startswith("dropped") for r in records)
    assert [r.t_s for r in records] == sorted(r.t_s for r in records)
