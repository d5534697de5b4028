"""The sweep and the open-loop driver against a fake client at the client seam.

The fake stands in for `settlers.client` only; the same drivers are tested against
real `settlers serve` processes in tests/integration/test_order_app.py.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from order_app.openloop import intended_offsets, run_open_loop, write_histogram
from order_app.params import UsageError
from order_app.probe import TargetError
from order_app.sweep import COLUMNS, run_sweep, summarize, to_frame
from settlers.client import OrderError, ProducerClient, ProduceResult
from settlers.trace import Hop, decode_trace


class FakeClient:
    """Answers after ``service_s``; with ``serial`` one order at a time, like a
    single-worker server, so that orders queue behind each other."""

    def __init__(self, target: str = "127.0.0.1:1", *, service_s: float = 0.0,
                 serial: bool = False, fail: Callable[[int], OrderError | None] | None = None,
                 short_payload: bool = False) -> None:
        self.target = target
        self.service_s = service_s
        self.lock = asyncio.Lock() if serial else None
        self.fail = fail
        self.short_payload = short_payload
        self.calls: list[tuple[str, int, int]] = []
        self.closed = False

    async def produce(self, item: str, count: int = 1, size: int = 16, *, caller: str = "",
                      timeout: float | None = None) -> ProduceResult:
        n = len(self.calls)
        self.calls.append((item, count, size))
        if self.lock is not None:
            async with self.lock:
                await asyncio.sleep(self.service_s)
        else:
            await asyncio.sleep(self.service_s)
        error = self.fail(n) if self.fail else None
        if error is not None:
            raise error
        trace = [Hop(item, f"{item}-0", "", count * size, 1.0),
                 Hop("grain", "grain-0", f"{item}-0", count * size, 0.5),
                 Hop("grain", "grain-0", f"{item}-0", count * size, 0.5)]
        nbytes = count * size - (1 if self.short_payload else 0)
        return ProduceResult(item, count, size, nbytes, trace, self.service_s)

    async def close(self) -> None:
        self.closed = True

    async def __aenter__(self) -> ProducerClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


# ---------------------------------------------------------------- sweep


async def test_sweep_rows_one_per_order() -> None:
    clients: dict[str, FakeClient] = {}

    def factory(target: str, protocol: str, timeout: float) -> FakeClient:
        clients[target] = FakeClient(target)
        return clients[target]

    targets = {"flour": "127.0.0.1:9001", "bread": "127.0.0.1:9002"}
    frame = await run_sweep(targets, "grpc", ["flour", "bread"], [16, 4096], count=2,
                            repeat=3, warmup=2, progress=False, client_factory=factory)
    assert list(frame.columns) == COLUMNS
    assert len(frame) == 2 * 2 * 3
    # warm-up orders are sent but not recorded
    assert len(clients["127.0.0.1:9001"].calls) == 2 * (2 + 3)
    assert all(c.closed for c in clients.values())
    first = frame.iloc[0]
    assert (first["item"], first["size"], first["protocol"], first["count"]) == (
        "flour", 16, "grpc", 2)
    assert list(frame["repeat"][:3]) == [0, 1, 2]
    assert frame["ok"].all() and (frame["error"] == "").all()
    assert first["hops"] == 3 and first["pods"] == "flour-0,grain-0"
    assert [h.pod for h in decode_trace(first["trace"])] == ["flour-0", "grain-0", "grain-0"]
    assert list(frame["payload_bytes"]) == [2 * s for s in frame["size"]]
    assert (frame["latency_ms"] >= 0).all()


async def test_an_interrupted_sweep_keeps_what_it_measured() -> None:
    class Interrupted(FakeClient):
        async def produce(self, item: str, count: int = 1, size: int = 16, *,
                          caller: str = "", timeout: float | None = None) -> ProduceResult:
            if len(self.calls) == 6:  # as Ctrl-C does to the running task
                raise asyncio.CancelledError
            return await super().produce(item, count, size)

    client = Interrupted()
    rows: list[dict[str, object]] = []
    with pytest.raises(asyncio.CancelledError):
        await run_sweep({"flour": "h:1"}, "http", ["flour"], [16], repeat=10, warmup=2,
                        progress=False, client_factory=lambda t, p, to: client, collect=rows)
    assert client.closed
    frame = to_frame(rows)
    assert list(frame.columns) == COLUMNS and list(frame["repeat"]) == [0, 1, 2, 3]
    assert frame["ok"].all() and frame["latency_ms"].dtype == float


async def test_sweep_records_failures_after_the_first_order() -> None:
    def fail(n: int) -> OrderError | None:
        return OrderError("upstream", "HTTP 502: input grain failed") if n % 2 else None

    frame = await run_sweep({"flour": "h:1"}, "http", ["flour"], [16], repeat=4, warmup=0,
                            progress=False,
                            client_factory=lambda t, p, to: FakeClient(t, fail=fail))
    assert list(frame["ok"]) == [True, False, True, False]
    assert frame["error"][1] == "HTTP 502: input grain failed"
    assert frame["pods"][1] == "" and frame["hops"][1] == 0
    summary = summarize(frame)
    assert summary.loc[0, "orders"] == 2 and summary.loc[0, "errors"] == 2


async def test_a_broken_connection_on_the_first_order_is_a_failed_row_not_a_wrong_target(
) -> None:
    # An overloaded service resets connections; it is there, so the sweep goes on.
    def fail(n: int) -> OrderError | None:
        return OrderError("broken", "ClientOSError: Connection reset by peer") if n == 0 \
            else None

    frame = await run_sweep({"flour": "h:1"}, "http", ["flour"], [16], repeat=3, warmup=0,
                            progress=False,
                            client_factory=lambda t, p, to: FakeClient(t, fail=fail))
    assert list(frame["ok"]) == [False, True, True]
    assert "Connection reset by peer" in frame["error"][0]


async def test_sweep_flags_wrong_payload_size() -> None:
    frame = await run_sweep({"flour": "h:1"}, "http", ["flour"], [16], repeat=1, warmup=0,
                            progress=False, client_factory=lambda t, p, to: FakeClient(
                                t, short_payload=True))
    assert not frame["ok"][0]
    assert frame["error"][0] == "payload was 15 bytes, expected 16"


@pytest.mark.parametrize(("kind", "message"), [
    ("connect", "cannot reach the 'flour' service at h:1 over http"),
    ("invalid", "the 'flour' service at h:1 refused the order: no such item"),
])
async def test_sweep_stops_on_a_wrong_target(kind: str, message: str) -> None:
    error = OrderError(kind, "no such item")  # type: ignore[arg-type]
    with pytest.raises(TargetError, match=message):
        await run_sweep({"flour": "h:1"}, "http", ["flour"], [16], progress=False,
                        client_factory=lambda t, p, to: FakeClient(t, fail=lambda n: error))


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"protocol": "quic"}, "unknown protocol"),
    ({"items": ["bread"]}, "no target address for item 'bread'"),
    ({"sizes": [32 * 2**20]}, "above the 16 MiB limit"),
    ({"repeat": 0}, "repeat must be >= 1"),
])
async def test_sweep_checks_its_arguments(kwargs: dict[str, object], message: str) -> None:
    args: dict[str, object] = {"targets": {"flour": "h:1"}, "protocol": "http",
                               "items": ["flour"], "sizes": [16], **kwargs}
    with pytest.raises(UsageError, match=message):
        await run_sweep(**args, progress=False,  # type: ignore[arg-type]
                        client_factory=lambda t, p, to: FakeClient(t))


# ---------------------------------------------------------------- open loop


def test_constant_schedule_is_exact() -> None:
    offsets = list(intended_offsets(100, 1.0))
    assert len(offsets) == 100
    assert offsets[:3] == [0.0, 0.01, 0.02] and offsets[-1] == pytest.approx(0.99)
    assert len(list(intended_offsets(3, 1.0))) == 3
    assert len(list(intended_offsets(0.5, 1.0))) == 1  # t=0 only


def test_poisson_schedule_has_the_right_rate_and_is_reproducible() -> None:
    a = list(intended_offsets(1000, 20.0, poisson=True, seed=7))
    assert a == list(intended_offsets(1000, 20.0, poisson=True, seed=7))
    assert a != list(intended_offsets(1000, 20.0, poisson=True, seed=8))
    assert len(a) == pytest.approx(20_000, rel=0.03)
    gaps = [b - a_ for a_, b in itertools.pairwise(a)]
    # exponential gaps: mean == standard deviation == 1 / rate
    assert statistics.mean(gaps) == pytest.approx(1e-3, rel=0.03)
    assert statistics.stdev(gaps) == pytest.approx(1e-3, rel=0.05)
    assert all(0 <= t < 20.0 for t in a) and a == sorted(a)


async def test_open_loop_keeps_the_schedule_when_the_service_is_slow() -> None:
    # 200 ms per order but no queueing: 50 orders/s must all go out on time, with
    # ~10 in flight at once, each measured at ~200 ms.
    client = FakeClient(service_s=0.2)
    report = await run_open_loop(client, "flour", size=16, rps=50, duration_s=1.0)
    assert report.scheduled == report.sent == report.ok == 50
    assert report.dropped == 0 and report.errors == 0
    p = report.percentiles_ms()
    # Bounds leave room for a busy CI machine; the point is "about 200 ms, not more".
    assert 195 <= p["p50"] <= 350 and p["max"] < 700
    assert report.max_launch_lag_ms < 200
    assert report.achieved_rps == pytest.approx(50, rel=0.3)


async def test_open_loop_shows_queueing_that_a_closed_loop_would_hide() -> None:
    # A single-worker service at 20 ms per order can do 50/s; offered 100/s, the
    # queue grows for the whole second. Each order's own service time is still
    # 20 ms (what a closed-loop driver would report), but timed from the intended
    # send time the latency grows with the queue, towards ~1 s for the last order.
    client = FakeClient(service_s=0.02, serial=True)
    report = await run_open_loop(client, "flour", size=16, rps=100, duration_s=1.0)
    assert report.sent == report.ok == 100
    p = report.percentiles_ms()
    assert p["p50"] > 200, p
    assert p["p99"] > 700, p
    assert p["max"] >= 0.8 * (100 * 20 - 990)  # last order: done at 2 s, due at 0.99 s
    # the driver itself was (about) on time: the delay is the service's queue, not ours
    assert report.max_launch_lag_ms < 200
    assert report.achieved_rps < 60  # the service's capacity, not the offered 100


async def test_open_loop_runs_launched_orders_even_when_the_driver_is_behind() -> None:
    # A driver that spends 2 ms per launch at 1000 orders/s is always behind schedule;
    # the orders it has launched must still start at once, not after the last launch.
    launches: list[float] = []

    def slow_launch() -> None:
        launches.append(time.perf_counter())
        end = launches[-1] + 0.002
        while time.perf_counter() < end:
            pass

    starts: list[float] = []

    class Recording(FakeClient):
        async def produce(self, item: str, count: int = 1, size: int = 16, *,
                          caller: str = "", timeout: float | None = None) -> ProduceResult:
            starts.append(time.perf_counter())
            return await super().produce(item, count, size)

    report = await run_open_loop(Recording(), "flour", size=16, rps=1000, duration_s=0.1,
                                 on_launch=slow_launch)
    assert report.ok == 100
    assert starts[0] < launches[1]  # the first order ran before the second launch
    assert report.max_launch_lag_ms > 50  # and the driver's own lateness is reported
    assert report.percentiles_ms()["max"] >= 0.8 * report.max_launch_lag_ms


async def test_open_loop_drops_and_counts_orders_beyond_max_in_flight() -> None:
    client = FakeClient(service_s=0.5)
    report = await run_open_loop(client, "flour", size=16, rps=100, duration_s=0.3,
                                 max_in_flight=5)
    assert report.scheduled == 30
    assert report.sent == 5 and report.dropped == 25 and report.ok == 5
    assert len(client.calls) == 5


async def test_open_loop_counts_errors_apart_from_latencies() -> None:
    def fail(n: int) -> OrderError | None:
        return OrderError("timeout", "no answer within 1 s") if n % 4 == 0 else None

    report = await run_open_loop(FakeClient(fail=fail), "flour", size=16, rps=200,
                                 duration_s=0.2)
    assert report.scheduled == 40
    assert report.errors == 10 and report.ok == 30
    assert report.histogram.get_total_count() == 30
    assert report.error_messages == {"timeout: no answer within 1 s": 10}


async def test_a_cancelled_open_loop_cancels_its_orders_in_flight() -> None:
    # Its caller gave up (a failed measurement) and will close the client: no order may
    # still be running against it ("Task exception was never retrieved").
    never = asyncio.Event()
    started: list[asyncio.Task[object] | None] = []

    class Hanging(FakeClient):
        async def produce(self, item: str, count: int = 1, size: int = 16, *,
                          caller: str = "", timeout: float | None = None) -> ProduceResult:
            started.append(asyncio.current_task())
            await never.wait()
            raise AssertionError("unreachable")

    driver = asyncio.create_task(run_open_loop(Hanging(), "flour", size=16, rps=200,
                                               duration_s=10))
    deadline = time.monotonic() + 10
    while len(started) < 3 and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    assert len(started) >= 3
    driver.cancel()
    with pytest.raises(asyncio.CancelledError):
        await driver
    assert all(t is not None and t.done() for t in started)


async def test_histogram_files(tmp_path: Path) -> None:
    report = await run_open_loop(FakeClient(service_s=0.01), "flour", size=16, rps=100,
                                 duration_s=0.2, protocol="http")
    written = write_histogram(report, tmp_path / "run.hgrm")
    assert written == [tmp_path / "run.hgrm", tmp_path / "run.json"]
    text = (tmp_path / "run.hgrm").read_text()
    assert text.split()[:4] == ["Value", "Percentile", "TotalCount", "1/(1-Percentile)"]
    assert "#[Max" in text and "TotalCount     =       20.000]" in text
    summary = json.loads((tmp_path / "run.json").read_text())
    assert summary["ok"] == 20 and summary["offered_rps"] == 100
    assert 9 <= summary["latency_ms"]["p50"] <= 60
    # the encoded histogram decodes to the same counts
    from hdrh.histogram import HdrHistogram

    decoded = HdrHistogram.decode(summary["histogram_us"])
    assert decoded.get_total_count() == 20
    with pytest.raises(ValueError, match=r"must end in \.hgrm or \.json"):
        write_histogram(report, tmp_path / "run.txt")
