"""The average since t0 against a real Prometheus, on a recorded scenario with counter resets.

The scenario (written as OpenMetrics, loaded with ``promtool tsdb create-blocks-from``,
so no timing depends on this machine): Istio L4 counters, both reporters, 5 s scrapes.

- bread -> flour: 100 B/s requests + 900 B/s responses from t0 to t0+60 s (the
  warm-up); its pod restarts at t0+27.5 s, so the *same series* drops to 0 and
  counts again (a counter reset); the bytes between the scrape at t0+25 s and the
  restart are never seen;
- pig -> water: 10 + 90 B/s; at t0+30 s the water pod is recreated under a new
  name, so its series ends and a new one (another ``pod`` label) starts at 0;
- then nothing until t0+300 s (the kube_default phase: no orders flow).

The answers are also stored as ``tests/unit/data/prometheus_since.json``, which the
unit tests replay without Prometheus. ``SETTLERS_RECORD=1`` rewrites that file from
this test's run.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NoReturn

import pytest

from schedulers import TrafficMatrix
from schedulers.promtraffic import Interval, queries_at
from settlers import promql

pytestmark = [pytest.mark.prometheus, pytest.mark.slow]

RECORDING = Path(__file__).resolve().parents[1] / "unit" / "data" / "prometheus_since.json"
STEP = 5
# (relative time, interval) of every evaluation the unit tests replay.
EVALUATIONS: list[tuple[int, str, float]] = [
    (60, "since", 0), (300, "since", 0), (300, "window", 60), (60, "window", 60)]


def _counter(rate: float, t: float, *, start: float = 0, stop: float = 60,
             restart: float | None = None) -> float:
    """Bytes counted at ``t`` by a counter that grows at ``rate`` from ``start`` to
    ``stop``, restarting from 0 at ``restart``."""
    begin = start if restart is None or t < restart else restart
    return rate * max(0.0, min(t, stop) - begin)


def scenario(t0: int) -> str:
    """The OpenMetrics text of the scenario (samples from t0-30 s to t0+300 s)."""
    lines: list[str] = []
    # (pod label, source, destination, samples from .. to, counter at t for 1 B/s)
    pods: list[tuple[str, str, str, range, Callable[[float], float]]] = [
        ("flour-a", "bread", "flour", range(-30, 301, STEP),
         lambda t: 1000 * _counter(1, t, restart=27.5)),
        ("water-a", "pig", "water", range(-30, 31, STEP), lambda t: 100 * _counter(1, t, stop=30)),
        ("water-b", "pig", "water", range(30, 301, STEP),
         lambda t: 100 * _counter(1, t, start=30)),
    ]
    by_metric: dict[str, list[str]] = {}
    for metric, share in (("istio_tcp_received_bytes", 0.1), ("istio_tcp_sent_bytes", 0.9)):
        for reporter in ("source", "destination"):
            for pod, src, dst, span, bytes_at in pods:
                labels = (f'reporter="{reporter}",source_workload="{src}",'
                          f'destination_workload="{dst}",pod="{pod}"')
                by_metric.setdefault(metric, []).extend(
                    f"{metric}_total{{{labels}}} {share * bytes_at(t):g} {t0 + t}" for t in span)
    for metric, samples in by_metric.items():
        lines.append(f"# TYPE {metric} counter")
        lines.extend(samples)
    lines.append("# EOF")
    return "\n".join(lines) + "\n"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def backfilled(tmp_path_factory: pytest.TempPathFactory,
               missing_tool: Callable[[str], NoReturn]) -> Iterator[tuple[str, int]]:
    """A Prometheus serving the scenario; (its URL, t0)."""
    binary, promtool = shutil.which("prometheus"), shutil.which("promtool")
    if binary is None or promtool is None:
        missing_tool("the prometheus and promtool binaries are not installed (tools/setup)")
    tmp = tmp_path_factory.mktemp("promsince")
    # Recent enough for the default 15 d retention, whole hours so blocks align.
    t0 = (int(time.time()) // 3600 - 3) * 3600
    (tmp / "scenario.om").write_text(scenario(t0))
    subprocess.run([promtool, "tsdb", "create-blocks-from", "openmetrics",
                    str(tmp / "scenario.om"), str(tmp / "data")], check=True,
                   capture_output=True)
    (tmp / "prometheus.yml").write_text("global: {scrape_interval: 5s}\n")
    port = _free_port()
    with (tmp / "prometheus.log").open("wb") as log:
        proc = subprocess.Popen(
            [binary, f"--config.file={tmp / 'prometheus.yml'}",
             f"--storage.tsdb.path={tmp / 'data'}", f"--web.listen-address=127.0.0.1:{port}"],
            stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(url + "/-/ready", timeout=1) as r:
                    if r.status == 200:
                        break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    pytest.fail((tmp / "prometheus.log").read_text()[-2000:])
                time.sleep(0.2)
        yield url, t0
    finally:
        proc.terminate()
        proc.wait(10)


def _interval(t0: int, mode: str, window: float) -> Interval:
    return Interval(since=t0) if mode == "since" else Interval(window_s=window)


def test_average_since_t0_survives_resets_and_an_idle_phase(backfilled: tuple[str, int]) -> None:
    url, t0 = backfilled
    warm = TrafficMatrix.from_prometheus(url, Interval(since=t0), metrics="l4", now=t0 + 60)
    late = TrafficMatrix.from_prometheus(url, Interval(since=t0), metrics="l4", now=t0 + 300)
    # bread<->flour: 1000 B/s for 57.5 of the 60 s seen (2.5 s lost to the restart), so
    # reset handling gives ~57 500 B; a naive last - first would give ~32 500 B.
    assert late.get("bread", "flour") == pytest.approx(57_500 / 300, rel=0.03)
    # pig<->water over two pods: 100 B/s for 60 s; Prometheus extrapolates the ended
    # series by half a scrape interval, hence the looser bound.
    assert late.get("pig", "water") == pytest.approx(6_000 / 300, rel=0.1)
    # The running average: F(t_i) = F(t_{i-1}) (t_{i-1} - t0) / (t_i - t0) + new / (t_i - t0).
    for pair in (("bread", "flour"), ("pig", "water")):
        assert late.get(*pair) == pytest.approx(warm.get(*pair) * 60 / 300, rel=0.03)
    assert (late.since, late.until) == (t0, t0 + 300)
    assert "average since" in late.source and "(L4)" in late.source
    # The old sliding window, evaluated after the idle phase, has nothing: NetMARKS
    # would abstain.
    assert not TrafficMatrix.from_prometheus(url, 60, metrics="l4", now=t0 + 300)


def test_record_the_answers_for_the_unit_tests(backfilled: tuple[str, int]) -> None:
    """The recorded JSON equals what this Prometheus answers (times relative to t0)."""
    url, t0 = backfilled
    answers: dict[str, Any] = {}
    for rel, mode, window in EVALUATIONS:
        for kind in ("l7", "l4"):
            for q in queries_at(kind, _interval(t0, mode, window), t0 + rel)[0]:
                body = promql.query_sync(url, q, t0 + rel, timeout_s=10)
                for series in body["data"]["result"]:
                    series["value"][0] -= t0
                answers[f"{rel} {q}"] = body
    if os.environ.get("SETTLERS_RECORD"):
        RECORDING.parent.mkdir(exist_ok=True)
        RECORDING.write_text(json.dumps({"step_s": STEP, "answers": answers}, indent=1,
                                        sort_keys=True) + "\n")
    recorded = json.loads(RECORDING.read_text())["answers"]
    assert recorded == answers
