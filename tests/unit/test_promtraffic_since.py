"""NetMARKS' traffic interval: the average since t0 (the paper's F, the default) or a
sliding window; the PromQL it builds, and the averaging replayed on Prometheus answers
recorded from a real Prometheus (tests/integration/test_prometheus_since.py: a counter
reset, a recreated pod, then an idle phase)."""

from __future__ import annotations

import json
import threading
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from schedulers import TrafficError, TrafficMatrix
from schedulers.extender import Placements, PrometheusTraffic, StaticTraffic, make_app
from schedulers.promtraffic import Interval, fetch_sync, iso_time, parse_time, queries_at

RECORDING = Path(__file__).parent / "data" / "prometheus_since.json"
T0 = 1_764_629_403.0  # 2025-12-01T22:50:03Z; the recording's times are relative to it


def test_since_t0_queries_the_whole_range_up_to_now() -> None:
    qs, seconds = queries_at("l4", Interval(since=T0), T0 + 1234.5678)
    assert seconds == 1234.568
    assert qs == [
        "sum by (source_workload, destination_workload, reporter) "
        "(increase(istio_tcp_received_bytes_total[1234568ms]))",
        "sum by (source_workload, destination_workload, reporter) "
        "(increase(istio_tcp_sent_bytes_total[1234568ms]))",
    ]
    # A sliding window does not grow with time.
    assert queries_at("l7", Interval(window_s=300), T0 + 5000)[1] == 300
    assert "[300000ms]" in queries_at("l7", Interval(window_s=300), T0 + 5000)[0][0]
    with pytest.raises(TrafficError, match="not in the past"):
        queries_at("l4", Interval(since=T0), T0)


def test_interval_is_one_of_since_or_window() -> None:
    with pytest.raises(ValueError, match="either since"):
        Interval()
    with pytest.raises(ValueError, match="either since"):
        Interval(since=T0, window_s=10)
    with pytest.raises(ValueError, match="window must be > 0"):
        Interval(window_s=0)
    with pytest.raises(ValueError, match="since must be"):
        Interval(since=-1)
    assert Interval(since=T0).describe() == "average since 2025-12-01T22:50:03Z"
    assert Interval(window_s=300).describe() == "sliding window of 300 s"
    assert Interval(since=T0).as_json()["since_iso"] == "2025-12-01T22:50:03Z"


def test_times_in_unix_seconds_or_iso_8601() -> None:
    assert parse_time("1764629403") == T0
    assert parse_time("1764629403.25") == T0 + 0.25
    assert parse_time("2025-12-01T22:50:03Z") == T0
    assert parse_time("2025-12-01T23:50:03+01:00") == T0
    assert iso_time(T0 + 0.25) == "2025-12-01T22:50:03.250Z"
    with pytest.raises(ValueError, match="no time zone"):
        parse_time("2025-12-01T22:50:03")
    with pytest.raises(ValueError, match="neither unix seconds nor"):
        parse_time("yesterday")
    with pytest.raises(ValueError, match="after 1970"):
        parse_time("-5")


@pytest.fixture(scope="module")
def replay() -> Iterator[str]:
    """A stand-in Prometheus answering the recorded queries (and 400 for any other)."""
    answers = json.loads(RECORDING.read_text())["answers"]

    class Prom(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            params = urllib.parse.parse_qs(urllib.parse.urlparse(self.path).query)
            rel = round(float(params["time"][0]) - T0)
            answer = answers.get(f"{rel} {params['query'][0]}")
            if answer is None:
                status, body = 400, {"status": "error", "error": f"not recorded: {self.path}"}
            else:
                status, body = 200, json.loads(json.dumps(answer))
                for series in body["data"]["result"]:
                    series["value"][0] += T0
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Prom)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def test_average_since_t0_counts_across_a_counter_reset(replay: str) -> None:
    late = fetch_sync(replay, Interval(since=T0), now=T0 + 300)
    # L7 series are absent, so auto falls back to the L4 counters.
    assert "(L4)" in late.source and "average since 2025-12-01T22:50:03Z" in late.source
    # bread->flour: 1000 B/s for the 57.5 s its counters saw (the pod restarted at
    # 27.5 s; 25..27.5 s was never scraped); each reporter counted once.
    assert late.get("bread", "flour") == pytest.approx(57_500 / 300)
    # pig->water over the old and the recreated pod: 100 B/s for 60 s, plus
    # Prometheus' extrapolation of the ended series by half a scrape interval.
    assert late.get("pig", "water") == pytest.approx(6_000 / 300, rel=0.1)
    assert (late.since, late.until) == (T0, T0 + 300)


def test_the_average_is_a_time_weighted_running_average(replay: str) -> None:
    warm = fetch_sync(replay, Interval(since=T0), now=T0 + 60)
    late = fetch_sync(replay, Interval(since=T0), now=T0 + 300)
    # F(t_i) = F(t_{i-1}) (t_{i-1} - t0) / (t_i - t0) + new bytes / (t_i - t0); no new
    # bytes between 60 s and 300 s (the kube_default phase).
    for pair in (("bread", "flour"), ("pig", "water")):
        assert late.get(*pair) == pytest.approx(warm.get(*pair) * 60 / 300)
    assert warm.get("bread", "flour") == pytest.approx(57_500 / 60)


def test_a_sliding_window_forgets_the_warm_up(replay: str) -> None:
    # Over the warm-up the two agree; 240 s of silence later the window is empty.
    assert fetch_sync(replay, 60, now=T0 + 60).get("bread", "flour") == pytest.approx(
        fetch_sync(replay, Interval(since=T0), now=T0 + 60).get("bread", "flour"))
    late = fetch_sync(replay, Interval(window_s=60), now=T0 + 300)
    assert not late and "sliding window of 60 s" in late.source


async def test_extender_source_serves_its_interval_on_traffic(replay: str) -> None:
    source = PrometheusTraffic(replay, interval=Interval(since=T0), clock=lambda: T0 + 300)
    async with TestClient(TestServer(make_app(source, Placements("app")))) as client:
        resp = await client.get("/traffic")
        assert resp.status == 200
        info = await resp.json()
    assert info["kind"] == "prometheus" and info["metrics"] == "auto"
    assert info["interval"] == {"mode": "since", "since": T0,
                                "since_iso": "2025-12-01T22:50:03Z", "window_s": None}
    assert info["description"].endswith("average since 2025-12-01T22:50:03Z")
    assert info["last"]["pairs"] == 2 and info["last"]["since"] == T0
    window = PrometheusTraffic(replay, window_s=60, clock=lambda: T0 + 300)
    try:
        assert not await window.get() and window.info()["interval"]["mode"] == "window"
    finally:
        await window.close()
    # Without an interval the source averages since it was made.
    assert PrometheusTraffic(replay, clock=lambda: T0 + 7).interval == Interval(since=T0 + 7)
    fixed = StaticTraffic(TrafficMatrix({("a", "b"): 1.0}, source="t.csv")).info()
    assert fixed["kind"] == "fixed" and "t.csv" in fixed["description"]
