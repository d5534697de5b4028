"""The order app against real `settlers serve` processes on loopback.

One chain per protocol (grain -> flour, water, and bread consuming flour + water),
started once per module: orders at all five sizes, the CLI commands as a user runs
them, and the failure paths a user meets first.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from order_app.output import read_table, write_table
from order_app.params import PAPER_SIZES
from order_app.probe import TargetError
from order_app.sweep import COLUMNS, run_sweep
from settlers.tables import read_parquet
from settlers.testing import ServiceProcess, run_chain, start_service
from settlers.trace import decode_trace
from settlers.wire import PROTOCOLS, WireProtocol

pytestmark = pytest.mark.slow

Chain = dict[str, ServiceProcess]


@pytest.fixture(scope="module", params=PROTOCOLS)
def chain(request: pytest.FixtureRequest) -> Iterator[Chain]:
    protocol: WireProtocol = request.param
    with run_chain("settlers2", protocol, roots=["bread"]) as services:
        yield services


def order_app(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "order_app", *args], capture_output=True,
                          text=True, timeout=timeout, check=False)


async def test_sweep_all_sizes_through_the_chain(chain: Chain, tmp_path: Path) -> None:
    protocol = chain["bread"].protocol
    targets = {"bread": chain["bread"].address, "flour": chain["flour"].address}
    frame = await run_sweep(targets, protocol, ["bread", "flour"], PAPER_SIZES,  # type: ignore[arg-type]
                            count=2, repeat=2, warmup=1, progress=False)
    assert list(frame.columns) == COLUMNS
    assert len(frame) == 2 * len(PAPER_SIZES) * 2
    assert frame["ok"].all(), frame[~frame["ok"]]["error"].tolist()
    assert (frame["payload_bytes"] == 2 * frame["size"]).all()
    assert set(frame["protocol"]) == {protocol}
    bread = frame[frame["item"] == "bread"]
    assert set(bread["pods"]) == {"bread-0,flour-0,grain-0,water-0"}
    assert (bread["hops"] == 4).all()
    trace = decode_trace(bread["trace"].iloc[0])
    assert [(h.pod, h.caller) for h in trace] == [
        ("bread-0", ""), ("flour-0", "bread-0"), ("grain-0", "flour-0"), ("water-0", "bread-0")]
    flour = frame[frame["item"] == "flour"]
    assert set(flour["pods"]) == {"flour-0,grain-0"} and (flour["hops"] == 2).all()
    # Latency grows with the payload: 1 MiB x 2 through three hops costs more than 16 B.
    by_size = frame.groupby("size")["latency_ms"].median()
    assert by_size[1048576] > by_size[16]
    for name in ("orders.csv", "orders.parquet"):
        back = read_table(write_table(frame, tmp_path / name))
        pd.testing.assert_frame_equal(back, frame, check_dtype=False)


def test_cli_sweep_writes_a_table_pandas_reads(chain: Chain, tmp_path: Path) -> None:
    protocol = chain["bread"].protocol
    out = tmp_path / "sweep.parquet"
    run = order_app("sweep", "--protocol", protocol, "--target",
                    f"bread={chain['bread'].address}", "--sizes", "16,4KiB,1MiB",
                    "--repeat", "3", "--warmup", "1", "--out", str(out))
    assert run.returncode == 0, run.stderr
    assert "latency per item x size" in run.stdout and "1,048,576" in run.stdout
    assert f"wrote 9 orders to {out}" in run.stderr
    frame = read_parquet(out)
    assert list(frame.columns) == COLUMNS
    assert frame["ok"].all() and sorted(set(frame["size"])) == [16, 4096, 1048576]
    assert list(frame["repeat"][:3]) == [0, 1, 2]


def test_cli_rate_writes_histograms(chain: Chain, tmp_path: Path) -> None:
    protocol = chain["flour"].protocol
    run = order_app("rate", "-p", protocol, "-t", chain["flour"].address, "-i", "flour",
                    "--rps", "40", "--duration", "1s", "--size", "4KiB", "--warmup", "2",
                    "--out", str(tmp_path / "flour.hgrm"))
    assert run.returncode == 0, run.stderr
    assert "offered rate" in run.stdout and "latency p99.9" in run.stdout
    summary = json.loads((tmp_path / "flour.json").read_text())
    assert summary["scheduled"] == summary["sent"] == 40
    assert summary["ok"] == 40 and summary["errors"] == 0 and summary["dropped"] == 0
    assert summary["protocol"] == protocol and summary["size"] == 4096
    lat = summary["latency_ms"]
    assert 0 < lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["p99.9"] <= lat["max"]
    hgrm = (tmp_path / "flour.hgrm").read_text()
    assert "#[Max" in hgrm and "TotalCount     =       40.000]" in hgrm


def test_cli_load_runs_locust_and_keeps_its_csv(chain: Chain, tmp_path: Path) -> None:
    protocol = chain["flour"].protocol
    prefix = tmp_path / "load" / "flour"
    run = order_app("load", "-p", protocol, "-t", chain["flour"].address, "-i", "flour",
                    "--size", "256", "--users", "2", "--spawn-rate", "2", "--run-time", "2s",
                    "--csv", str(prefix))
    assert run.returncode == 0, run.stdout + run.stderr
    stats = pd.read_csv(f"{prefix}_stats.csv")
    assert list(stats["Name"]) == ["flour 256B x1", "Aggregated"]
    total = stats.iloc[-1]
    assert total["Request Count"] > 0 and total["Failure Count"] == 0
    assert stats.iloc[0]["Type"] == ("POST" if protocol == "http" else "grpc")
    assert stats.iloc[0]["Average Content Size"] == 256
    assert f"wrote {prefix}_stats_history.csv" in run.stdout


@pytest.mark.cli
@pytest.mark.parametrize(("command", "protocol"), [
    (["sweep", "--repeat", "1"], "http"), (["rate", "--rps", "5"], "grpc"), (["load"], "http")])
def test_unreachable_target_is_a_message_not_a_traceback(command: list[str],
                                                         protocol: str) -> None:
    run = order_app(*command, "-p", protocol, "-t", "127.0.0.1:9", "-i", "flour")
    assert run.returncode == 1, run.stderr
    assert f"cannot reach the 'flour' service at 127.0.0.1:9 over {protocol}" in run.stderr
    assert "Traceback" not in run.stderr


async def test_wrong_item_for_the_target_is_refused_clearly(chain: Chain) -> None:
    flour = chain["flour"]
    with pytest.raises(TargetError, match=f"the 'bread' service at {flour.address} refused"):
        await run_sweep({"bread": flour.address}, flour.protocol, ["bread"], [16],  # type: ignore[arg-type]
                        progress=False)


async def test_a_dead_input_becomes_rows_naming_it(chain: Chain) -> None:
    # Nothing listens on port 9: the service answers, but with an upstream error that
    # names its input, quickly; the sweep records those as failed rows.
    protocol = chain["flour"].protocol
    flour = start_service("flour", protocol, pod="flour-9",  # type: ignore[arg-type]
                          inputs={"grain": "127.0.0.1:9"}, args=["--timeout", "2"])
    try:
        frame = await run_sweep({"flour": flour.address}, protocol, ["flour"], [16, 4096],  # type: ignore[arg-type]
                                repeat=2, warmup=0, progress=False, timeout=10)
    finally:
        flour.stop()
    assert len(frame) == 4 and not frame["ok"].any()
    assert all("grain" in e for e in frame["error"]), frame["error"].tolist()
    assert (frame["latency_ms"] < 5000).all()  # an upstream error, not a hang
