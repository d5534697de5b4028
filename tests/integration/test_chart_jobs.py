"""The chart's Job scripts, run for real: `order-app sweep` against a real producer.

The order-app Job's script (charts/settlers-testbed/files/order-app-job.sh) must leave
the raw table in its log between marker lines, and the backend must read it back;
the `helm test` script must pass on a good order and fail when the service is down.
The scripts run here exactly as the pods run them (`/bin/sh -c SCRIPT NAME ARGS...`).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.backends.kubernetes import CHART_DIR, OrderJobError, parse_job_log

pytestmark = pytest.mark.slow

FILES = CHART_DIR / "files"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def water() -> Iterator[str]:
    """A real `settlers serve` for a raw item (no inputs), on loopback."""
    port = free_port()
    bindir = Path(sys.executable).parent
    proc = subprocess.Popen(
        [str(bindir / "settlers"), "serve", "--item", "water", "--protocol", "http",
         "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    pytest.fail("settlers serve did not become healthy")
                time.sleep(0.1)
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)


def run_script(name: str, args: list[str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, TMPDIR=str(tmp_path),
               PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    script = (FILES / name).read_text()
    # stderr folded into stdout: a pod log carries both streams.
    return subprocess.run(["/bin/sh", "-c", script, name, *args], env=env, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)


def test_order_job_log_carries_the_raw_table(water: str, tmp_path: Path) -> None:
    proc = run_script("order-app-job.sh", ["-p", "http", "-t", f"water={water}",
                                           "--sizes", "16,4096", "--repeat", "2",
                                           "--warmup", "1"], tmp_path)
    assert proc.returncode == 0, proc.stdout
    frame = parse_job_log(proc.stdout)
    assert len(frame) == 4
    assert frame["ok"].all()
    assert sorted(frame["size"].unique()) == [16, 4096]
    assert set(frame["item"]) == {"water"}
    assert (frame["latency_ms"] > 0).all()


def test_order_job_failure_keeps_the_exit_code(tmp_path: Path) -> None:
    proc = run_script("order-app-job.sh", ["-p", "http", "-t", f"water=127.0.0.1:{free_port()}",
                                           "--sizes", "16", "--repeat", "1"], tmp_path)
    assert proc.returncode != 0
    with pytest.raises(OrderJobError, match=r"empty results table|no results"):
        parse_job_log(proc.stdout)


def test_helm_test_script_passes_on_a_good_order(water: str, tmp_path: Path) -> None:
    proc = run_script("order-test.sh", ["-p", "http", "-t", f"water={water}", "--sizes", "16",
                                        "--repeat", "1", "--warmup", "0"], tmp_path)
    assert proc.returncode == 0, proc.stdout
    assert "order water x16 B: ok=True" in proc.stdout


def test_helm_test_script_fails_when_the_service_is_down(tmp_path: Path) -> None:
    proc = run_script("order-test.sh", ["-p", "http", "-t", f"water=127.0.0.1:{free_port()}",
                                        "--sizes", "16", "--repeat", "1", "--warmup", "0"],
                      tmp_path)
    assert proc.returncode != 0


def test_parse_job_log_says_what_is_missing() -> None:
    with pytest.raises(OrderJobError, match="no marker lines"):
        parse_job_log("Traceback (most recent call last):\n  boom\n")
