"""The open-loop driver: orders sent on a fixed schedule, timed from when they were due.

A closed-loop driver (send, wait for the answer, send the next) slows down exactly
when the service does, so it sends fewer orders during a stall and never measures
the orders that *would* have waited: that is *coordinated omission*, and it hides
the tail. Here every order has an intended send time fixed in advance (constant
rate, or Poisson arrivals), is launched at that time as its own task whatever the
earlier orders are doing, and its latency runs from the intended time to the
answer, so time spent queued behind a slow order counts, as in wrk2. Latencies go
into an HdrHistogram (microsecond resolution, 3 significant digits).

In-flight orders are bounded (``max_in_flight``) so that a dead service cannot make
the driver open unbounded connections; orders due while at the bound are *dropped*
(never sent) and counted, as k6 counts dropped iterations: with drops, the
percentiles describe only the orders that were sent and are optimistic.
"""

from __future__ import annotations

import asyncio
import io
import json
import random
import re
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hdrh.histogram import HdrHistogram

from settlers.client import OrderError, ProducerClient

__all__ = [
    "PERCENTILES",
    "OpenLoopReport",
    "intended_offsets",
    "new_histogram",
    "run_open_loop",
    "write_histogram",
]

PERCENTILES = (50.0, 90.0, 99.0, 99.9)
# Recorded in microseconds, from 1 us to 1 hour: anything longer is a timeout anyway.
_LOWEST_US, _HIGHEST_US, _DIGITS = 1, 3_600_000_000, 3
# Orders start this long after the schedule is made, so the first one is not late
# by the time it takes to set up.
_LEAD_S = 0.005


def new_histogram() -> HdrHistogram:
    return HdrHistogram(_LOWEST_US, _HIGHEST_US, _DIGITS)


def intended_offsets(rps: float, duration_s: float, *, poisson: bool = False,
                     seed: int | None = None) -> Iterator[float]:
    """Send times (seconds from the start) of the orders due in ``[0, duration_s)``.

    Constant rate: exactly ``i / rps``. Poisson: exponential gaps with mean
    ``1 / rps`` (seeded for a reproducible schedule), the arrival process of many
    independent clients.
    """
    if rps <= 0 or duration_s <= 0:
        raise ValueError(f"rate and duration must be positive (got {rps}, {duration_s})")
    if not poisson:
        n = int(rps * duration_s - 1e-9) + 1  # i / rps < duration_s, robust to rounding
        for i in range(n):
            yield i / rps
        return
    rng = random.Random(seed)
    t = rng.expovariate(rps)
    while t < duration_s:
        yield t
        t += rng.expovariate(rps)


@dataclass
class OpenLoopReport:
    """What an open-loop run did; latencies in the histogram are microseconds."""

    item: str
    size: int
    count: int
    protocol: str
    offered_rps: float
    duration_s: float
    scheduled: int = 0
    sent: int = 0
    dropped: int = 0
    ok: int = 0
    errors: int = 0
    elapsed_s: float = 0.0
    max_launch_lag_ms: float = 0.0
    error_messages: Counter[str] = field(default_factory=Counter)
    histogram: HdrHistogram = field(default_factory=new_histogram, repr=False)

    @property
    def achieved_rps(self) -> float:
        """Successful answers per second over the run (at least the schedule's length)."""
        return self.ok / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def percentiles_ms(self) -> dict[str, float]:
        """p50/p90/p99/p99.9/max (and mean) in ms; zeros when nothing succeeded."""
        hist = self.histogram
        if hist.get_total_count() == 0:
            return {**{f"p{p:g}": 0.0 for p in PERCENTILES}, "max": 0.0, "mean": 0.0}
        out = {f"p{p:g}": hist.get_value_at_percentile(p) / 1e3 for p in PERCENTILES}
        out["max"] = hist.get_max_value() / 1e3
        out["mean"] = hist.get_mean_value() / 1e3
        return out

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary, with the whole histogram in HdrHistogram's encoding."""
        return {
            "item": self.item, "size": self.size, "count": self.count,
            "protocol": self.protocol, "duration_s": self.duration_s,
            "offered_rps": self.offered_rps, "achieved_rps": round(self.achieved_rps, 3),
            "scheduled": self.scheduled, "sent": self.sent, "dropped": self.dropped,
            "ok": self.ok, "errors": self.errors, "elapsed_s": round(self.elapsed_s, 4),
            "max_launch_lag_ms": round(self.max_launch_lag_ms, 3),
            "latency_ms": {k: round(v, 3) for k, v in self.percentiles_ms().items()},
            "error_messages": dict(self.error_messages.most_common(10)),
            "latency_unit": "measured from the intended send time",
            "histogram_us": self.histogram.encode().decode("ascii"),
        }


async def run_open_loop(
    client: ProducerClient,
    item: str,
    *,
    size: int,
    count: int = 1,
    rps: float,
    duration_s: float,
    protocol: str = "",
    poisson: bool = False,
    seed: int | None = None,
    max_in_flight: int = 1000,
    timeout: float | None = None,
    on_launch: Callable[[], None] | None = None,
    stop: asyncio.Event | None = None,
) -> OpenLoopReport:
    """Send orders to ``client`` at ``rps`` for ``duration_s`` seconds, open loop.

    Returns once every sent order has been answered or failed (the client's
    ``timeout`` bounds that). ``on_launch`` is called for every due order (sent or
    dropped), e.g. to advance a progress bar. ``stop``, when set, ends the schedule
    early (a background load that runs until its caller is done): the orders due
    after it are not sent, and the rate is over the time the schedule really ran.
    """
    if max_in_flight < 1:
        raise ValueError(f"max_in_flight must be >= 1 (got {max_in_flight})")
    report = OpenLoopReport(item=item, size=size, count=count, protocol=protocol,
                            offered_rps=rps, duration_s=duration_s)
    loop = asyncio.get_running_loop()
    # perf_counter, not loop.time(): uvloop's clock only ticks in whole milliseconds.
    now = time.perf_counter
    in_flight: set[asyncio.Task[None]] = set()
    last_done = 0.0

    async def one(due: float) -> None:
        nonlocal last_done
        # Timed from the intended send time; but an order the timer woke a little early
        # for (uvloop's timers have 1 ms granularity) is timed from when it really
        # left, so no latency is ever shorter than the round trip itself.
        start = min(due, now())
        try:
            result = await client.produce(item, count=count, size=size, timeout=timeout)
        except OrderError as exc:
            report.errors += 1
            report.error_messages[f"{exc.kind}: {exc}"] += 1
        else:
            if result.payload_bytes != count * size:
                report.errors += 1
                report.error_messages["payload: wrong payload size"] += 1
            else:
                report.ok += 1
                latency_us = round((now() - start) * 1e6)
                report.histogram.record_value(min(max(latency_us, _LOWEST_US), _HIGHEST_US))
                last_done = max(last_done, now())

    t0 = now() + _LEAD_S
    window = duration_s
    try:
        for offset in intended_offsets(rps, duration_s, poisson=poisson, seed=seed):
            due = t0 + offset
            # Always yield, even when behind schedule: the orders already launched must
            # get to run instead of piling up until the whole schedule has been walked.
            if stop is None:
                await asyncio.sleep(max(0.0, due - now()))
            elif await _stopped(stop, due - now()):
                window = max(0.0, now() - t0)
                break
            report.scheduled += 1
            # How late the driver itself was: large values mean this process (not the
            # service) is the bottleneck, and the run should be repeated with less load.
            report.max_launch_lag_ms = max(report.max_launch_lag_ms, (now() - due) * 1e3)
            if on_launch is not None:
                on_launch()
            if len(in_flight) >= max_in_flight:
                report.dropped += 1
                continue
            report.sent += 1
            task = loop.create_task(one(due))
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)
        if in_flight:
            await asyncio.gather(*in_flight)
    finally:
        # Cancelled (the caller gave up, e.g. a measurement that failed): the orders
        # still in flight go too, before the caller closes their client under them.
        # Copies: each task's done callback discards it from the set.
        for task in list(in_flight):
            task.cancel()
        if in_flight:
            await asyncio.gather(*list(in_flight), return_exceptions=True)
    # A few late timeouts must not make the rate look lower than it was: the window
    # is the schedule's length, or longer only if successful answers kept coming.
    report.elapsed_s = max(window, last_done - t0)
    return report


async def _stopped(stop: asyncio.Event, wait_s: float) -> bool:
    """Wait ``wait_s`` (at least one yield) or until ``stop`` is set; whether it is."""
    if stop.is_set():
        return True
    try:
        await asyncio.wait_for(stop.wait(), timeout=max(0.0, wait_s))
    except TimeoutError:
        return False
    return True


def write_histogram(report: OpenLoopReport, path: Path) -> list[Path]:
    """Write ``.hgrm`` (percentile distribution in ms) and/or ``.json`` (summary).

    ``run.hgrm`` writes both ``run.hgrm`` and ``run.json``; ``run.json`` only the
    summary, which still holds the full encoded histogram.
    """
    suffix = path.suffix.lower()
    if suffix not in (".hgrm", ".json"):
        raise ValueError(f"histogram file {path} must end in .hgrm or .json")
    path.parent.mkdir(parents=True, exist_ok=True)
    written = []
    if suffix == ".hgrm":
        buffer = io.BytesIO()
        # Values are microseconds; a ratio of 1000 prints milliseconds.
        report.histogram.output_percentile_distribution(buffer, 1000.0)
        path.write_text(_fix_stddev(buffer.getvalue().decode(), report.histogram))
        written.append(path)
    summary = path.with_suffix(".json")
    summary.write_text(json.dumps(report.to_dict(), indent=2) + "\n")
    written.append(summary)
    return written


def _fix_stddev(text: str, hist: HdrHistogram) -> str:
    # hdrhistogram 0.10 scales every value of the footer by the unit ratio except the
    # standard deviation, which it prints in raw microseconds.
    scaled = f"StdDeviation   = {hist.get_stddev() / 1000.0:12.{_DIGITS}f}]"
    return re.sub(r"StdDeviation   = +[0-9.]+\]", scaled, text, count=1)
