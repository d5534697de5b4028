"""Open-loop load that keeps every order: when it was due, what it was, how it ended.

A latency histogram (``order_app.openloop``) answers "how fast under this load"; a
dynamic scenario asks "how fast *when*": right after the traffic shifted, while a pod
moved. So each order is one record with its intended send time, and the caller bins
them over time. The schedule is open loop as in ``openloop``: orders leave at their
intended (Poisson) times whatever the earlier ones are doing, latency runs from the
intended time, and an order that finds ``max_in_flight`` orders outstanding is recorded
as failed with error "dropped" (never silently skipped). Every scheduled order ends as
exactly one record: answered (ok), failed (the error's kind and message) or dropped.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from order_app.openloop import intended_offsets
from settlers.client import OrderError, ProducerClient

__all__ = ["OrderRecord", "planned_orders", "run_recorded_mix"]

_LEAD_S = 0.005


@dataclass(frozen=True)
class OrderRecord:
    t_s: float           # intended send time, seconds since ``origin``
    item: str
    size: int
    latency_ms: float    # NaN when the order failed
    ok: bool
    error: str           # "" when ok


def planned_orders(items: Sequence[str], sizes: Sequence[int], *, rate: float,
                   duration_s: float, seed: int = 0) -> list[tuple[float, str, int]]:
    """The schedule: (offset from the start, item, size) of every order due in
    ``[0, duration_s)``, Poisson arrivals at ``rate``; the same for the same seed."""
    if rate <= 0 or duration_s <= 0:
        raise ValueError(f"rate and duration must be > 0 (got {rate}, {duration_s})")
    # The arrival times are openloop's Poisson schedule; what each order asks for is
    # drawn from a second stream of the same seed.
    rng = random.Random(seed)
    return [(offset, rng.choice(list(items)), rng.choice(list(sizes)))
            for offset in intended_offsets(rate, duration_s, poisson=True, seed=seed)]


async def run_recorded_mix(
    clients: Mapping[str, ProducerClient],
    items: Sequence[str],
    sizes: Sequence[int],
    *,
    rate: float,
    duration_s: float,
    origin: float,
    count: int = 1,
    seed: int = 0,
    timeout: float | None = 15.0,
    max_in_flight: int = 400,
    now: Callable[[], float] = time.perf_counter,
) -> list[OrderRecord]:
    """Poisson arrivals at ``rate`` orders/s for ``duration_s``, each order a random
    (item, size) of the mix; ``origin`` is the ``now()`` value that t_s counts from.
    Returns when every sent order has ended."""
    plan = planned_orders(items, sizes, rate=rate, duration_s=duration_s, seed=seed)
    missing = [i for i in items if i not in clients]
    if missing:
        raise ValueError(f"no client for item(s) {', '.join(missing)}")
    records: list[OrderRecord] = []
    in_flight: set[asyncio.Task[None]] = set()
    loop = asyncio.get_running_loop()

    async def one(due: float, item: str, size: int) -> None:
        start = min(due, now())
        try:
            result = await clients[item].produce(item, count=count, size=size, timeout=timeout)
        except OrderError as exc:
            records.append(OrderRecord(due - origin, item, size, float("nan"), False,
                                       f"{exc.kind}: {exc}"[:200]))
            return
        except Exception as exc:  # every order must end as a record, whatever broke
            records.append(OrderRecord(due - origin, item, size, float("nan"), False,
                                       f"client: {type(exc).__name__}: {exc}"[:200]))
            return
        if result.payload_bytes != count * size:
            records.append(OrderRecord(due - origin, item, size, float("nan"), False,
                                       "payload: wrong payload size"))
            return
        records.append(OrderRecord(due - origin, item, size, (now() - start) * 1e3, True, ""))

    t0 = now() + _LEAD_S
    try:
        for offset, item, size in plan:
            due = t0 + offset
            await asyncio.sleep(max(0.0, due - now()))
            if len(in_flight) >= max_in_flight:
                records.append(OrderRecord(due - origin, item, size, float("nan"), False,
                                           "dropped: too many orders in flight"))
            else:
                task = loop.create_task(one(due, item, size))
                in_flight.add(task)
                task.add_done_callback(in_flight.discard)
        if in_flight:
            await asyncio.gather(*list(in_flight))
    finally:
        for task in list(in_flight):
            task.cancel()
        if in_flight:
            await asyncio.gather(*list(in_flight), return_exceptions=True)
    records.sort(key=lambda r: r.t_s)
    return records
