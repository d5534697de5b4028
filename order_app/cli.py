"""`order-app`: send orders to Settlers producer services and measure the answers."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine, Iterator
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, TypeVar

import pandas as pd
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from order_app.load import run_locust
from order_app.openloop import OpenLoopReport, run_open_loop, write_histogram
from order_app.output import check_table_path, write_table
from order_app.params import (
    PAPER_SIZES,
    UsageError,
    check_count,
    check_protocol,
    check_target,
    parse_duration,
    parse_size,
    parse_sizes,
    resolve_targets,
)
from order_app.probe import TargetError, probe
from order_app.sweep import run_sweep, summarize, to_frame
from settlers.client import OrderError, open_client
from settlers.wire import WireProtocol

__all__ = ["app", "main"]

T = TypeVar("T")
out = Console(soft_wrap=True)  # paths and messages stay on one line in logs
err = Console(stderr=True, soft_wrap=True)

app = typer.Typer(
    name="order-app",
    help=(
        "Send orders to Settlers producer services and measure the answers.\n\n"
        "sweep: latency of single orders over items x message sizes (the paper's sweep).\n\n"
        "rate: open-loop load at a fixed rate; tail latency without coordinated omission.\n\n"
        "load: locust users (HTTP or gRPC), headless, with CSV output.\n\n"
        "Example, a two-service chain and a sweep over the five paper sizes:\n\n"
        "settlers serve --item grain --host 127.0.0.1 --port 9001 &\n\n"
        "settlers serve --item flour --host 127.0.0.1 --port 9002 "
        "--input grain=127.0.0.1:9001 &\n\n"
        "order-app sweep --target 127.0.0.1:9002 --item flour --out flour.csv"
    ),
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    add_completion=False,
)


class ProtocolChoice(StrEnum):
    http = "http"
    grpc = "grpc"


ProtocolOpt = Annotated[ProtocolChoice, typer.Option(
    "--protocol", "-p", help="Wire protocol of the services.")]
TimeoutOpt = Annotated[float, typer.Option(
    "--timeout", min=0.001, help="Seconds to wait for one order before it counts as failed.")]


def _run(coro: Coroutine[Any, Any, T]) -> T:
    """Run with uvloop when available: its timers are tighter under load."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        return asyncio.run(coro)
    result: T = uvloop.run(coro)
    return result


def _fail(message: str, code: int = 2) -> typer.Exit:
    err.print(f"[bold red]error:[/] {message}", highlight=False)
    return typer.Exit(code)


@contextlib.contextmanager
def _user_errors() -> Iterator[None]:
    """Bad arguments (exit 2) and wrong targets (exit 1) end as one sentence, no traceback."""
    try:
        yield
    except UsageError as exc:
        raise _fail(str(exc)) from None
    except TargetError as exc:
        raise _fail(str(exc), 1) from None


@app.command(
    epilog=(
        "Examples:\n\n"
        "  order-app sweep -t 127.0.0.1:9002 -i flour --out flour.csv\n\n"
        "  order-app sweep -p grpc -t flour=127.0.0.1:9002 -t bread=127.0.0.1:9003 "
        "--sizes 16,64KiB,1MiB --repeat 50 --out sweep.parquet"
    ),
)
def sweep(
    target: Annotated[list[str], typer.Option(
        "--target", "-t", help="HOST:PORT for every item, or ITEM=HOST:PORT (repeatable).")],
    protocol: ProtocolOpt = ProtocolChoice.http,
    item: Annotated[list[str] | None, typer.Option(
        "--item", "-i", help="Item to order (repeatable; default: the items named in "
        "--target ITEM=...).")] = None,
    sizes: Annotated[str, typer.Option(
        help="Comma-separated bytes per unit; KiB/MiB suffixes allowed, at most 16 MiB.")
    ] = ",".join(map(str, PAPER_SIZES)),
    count: Annotated[int, typer.Option(help="Units per order.")] = 1,
    repeat: Annotated[int, typer.Option(min=1, help="Recorded orders per item x size.")] = 10,
    warmup: Annotated[int, typer.Option(
        min=0, help="Unrecorded orders sent first per item x size.")] = 2,
    timeout: TimeoutOpt = 30.0,
    out_file: Annotated[Path | None, typer.Option(
        "--out", "-o", help="Write one row per order: .csv or .parquet.")] = None,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
) -> None:
    """Order each item at each size, one order at a time, and record every latency.

    One row per order: item, size, protocol, count, repeat, latency_ms, ok, error,
    payload_bytes, hops, pods (the distinct pods that served it) and trace (JSON).
    Prints the median and p99 per item x size.
    """
    with _user_errors():
        targets = resolve_targets(target, item or [])
        size_list = parse_sizes(sizes)
        check_count(count, size_list)
        if out_file is not None:
            check_table_path(out_file)
        rows: list[dict[str, Any]] = []
        interrupted = False
        try:
            _run(run_sweep(targets, check_protocol(protocol.value), list(targets), size_list,
                           count=count, repeat=repeat, warmup=warmup, progress=progress,
                           timeout=timeout, collect=rows))
        except KeyboardInterrupt:
            # Keep what was measured: a long sweep stopped by Ctrl-C still writes its rows.
            interrupted = True
    frame = to_frame(rows)
    if out_file is not None:
        write_table(frame, out_file)
        err.print(f"wrote {len(frame)} orders to {out_file}")
    out.print(_summary_table(summarize(frame)))
    if interrupted:
        raise _fail(f"interrupted after {len(frame)} orders", 130)
    if not frame["ok"].all():
        failed = frame[~frame["ok"]]
        err.print(f"[yellow]{len(failed)} of {len(frame)} orders failed[/], first: "
                  f"{failed['error'].iloc[0]}", highlight=False)


def _summary_table(summary: pd.DataFrame) -> Table:
    table = Table("protocol", "item", "size (B)", "orders", "errors", "median ms", "p99 ms",
                  title="latency per item x size")
    for row in summary.itertuples(index=False):
        table.add_row(str(row.protocol), str(row.item), f"{row.size:,}", str(row.orders),
                      str(row.errors), f"{row.median_ms:.3f}", f"{row.p99_ms:.3f}")
    return table


@app.command(
    epilog=(
        "Examples:\n\n"
        "  order-app rate -t 127.0.0.1:9002 -i flour --rps 200 --duration 30s\n\n"
        "  order-app rate -p grpc -t 127.0.0.1:9002 -i flour --size 64KiB --rps 50 "
        "--poisson --duration 1m --out flour.hgrm"
    ),
)
def rate(
    target: Annotated[str, typer.Option("--target", "-t", help="HOST:PORT of the service.")],
    item: Annotated[str, typer.Option("--item", "-i", help="Item to order.")],
    rps: Annotated[float, typer.Option(min=0.001, help="Orders per second to offer.")],
    protocol: ProtocolOpt = ProtocolChoice.http,
    size: Annotated[str, typer.Option(help="Bytes per unit (KiB/MiB allowed).")] = "16",
    count: Annotated[int, typer.Option(help="Units per order.")] = 1,
    duration: Annotated[str, typer.Option(help="How long to send: 30s, 2m, 1m30s.")] = "10s",
    poisson: Annotated[bool, typer.Option(
        help="Poisson arrivals (exponential gaps) instead of a constant rate.")] = False,
    seed: Annotated[int | None, typer.Option(help="Seed of the Poisson schedule.")] = None,
    max_in_flight: Annotated[int, typer.Option(
        min=1, help="Orders outstanding at once; orders due beyond it are dropped, counted."
    )] = 1000,
    warmup: Annotated[int, typer.Option(
        min=0, help="Orders sent one by one before the run (not recorded).")] = 10,
    timeout: TimeoutOpt = 30.0,
    out_file: Annotated[Path | None, typer.Option(
        "--out", "-o", help="Histogram file: run.hgrm (percentiles + run.json) or run.json."
    )] = None,
) -> None:
    """Offer orders at a fixed rate (open loop) and report the latency distribution.

    Each order has an intended send time fixed in advance and is sent at that time
    even if earlier orders are still waiting; its latency runs from the intended
    time, not from when it was actually sent. A closed-loop tool (send, wait, send)
    quietly sends less while the service stalls and so never records the orders
    that would have waited: *coordinated omission*, which hides the tail. Reports
    offered vs achieved rate, errors, dropped orders and p50/p90/p99/p99.9/max.
    """
    with _user_errors():
        addr = check_target(target)
        unit = parse_size(size)
        check_count(count, [unit])
        seconds = parse_duration(duration)
        if out_file is not None and out_file.suffix.lower() not in (".hgrm", ".json"):
            raise UsageError(f"--out {out_file} must end in .hgrm or .json")
        report = _run(_rate(addr, check_protocol(protocol.value), item, unit, count, rps,
                            seconds, poisson, seed, max_in_flight, warmup, timeout))
    out.print(_rate_table(report))
    if report.error_messages:
        message, n = report.error_messages.most_common(1)[0]
        err.print(f"[yellow]{report.errors} orders failed[/], most often ({n}x): {message}",
                  highlight=False)
    if out_file is not None:
        for path in write_histogram(report, out_file):
            err.print(f"wrote {path}")


async def _rate(target: str, protocol: WireProtocol, item: str, size: int, count: int,
                rps: float, seconds: float, poisson: bool, seed: int | None,
                max_in_flight: int, warmup: int, timeout: float) -> OpenLoopReport:
    async with open_client(target, protocol, timeout=timeout) as client:
        await probe(client, item, target, protocol, size=size, count=count)
        for _ in range(warmup):
            # Warm-up failures are not measured; the run itself will count any that persist.
            with contextlib.suppress(OrderError):
                await client.produce(item, count=count, size=size)
        columns = (TextColumn("[bold]open loop"), BarColumn(), MofNCompleteColumn(),
                   TimeElapsedColumn())
        with Progress(*columns, console=err) as bar:
            task = bar.add_task("orders", total=int(rps * seconds))
            return await run_open_loop(
                client, item, size=size, count=count, rps=rps, duration_s=seconds,
                protocol=protocol, poisson=poisson, seed=seed, max_in_flight=max_in_flight,
                on_launch=lambda: bar.advance(task))


def _rate_table(report: OpenLoopReport) -> Table:
    table = Table("", "value", title=f"open loop: {report.item} {report.size} B x{report.count} "
                  f"over {report.protocol}, {report.duration_s:g} s", show_header=False)
    table.add_row("offered rate", f"{report.offered_rps:.1f} orders/s")
    table.add_row("achieved rate", f"{report.achieved_rps:.1f} orders/s")
    table.add_row("sent / due", f"{report.sent} / {report.scheduled}")
    table.add_row("ok / errors / dropped", f"{report.ok} / {report.errors} / {report.dropped}")
    for name, value in report.percentiles_ms().items():
        table.add_row(f"latency {name}", f"{value:.3f} ms")
    table.add_row("driver max launch lag", f"{report.max_launch_lag_ms:.3f} ms")
    return table


@app.command(
    epilog=(
        "Example:\n\n"
        "  order-app load -t 127.0.0.1:9002 -i flour --size 4096 --users 20 "
        "--spawn-rate 10 --run-time 30s --csv runs/flour"
    ),
)
def load(
    target: Annotated[str, typer.Option("--target", "-t", help="HOST:PORT of the service.")],
    protocol: ProtocolOpt = ProtocolChoice.http,
    item: Annotated[str, typer.Option(
        "--item", "-i", help="Item to order (default: whatever the target produces).")] = "",
    size: Annotated[str, typer.Option(help="Bytes per unit (KiB/MiB allowed).")] = "16",
    count: Annotated[int, typer.Option(help="Units per order.")] = 1,
    users: Annotated[int, typer.Option(min=1, help="Concurrent locust users.")] = 10,
    spawn_rate: Annotated[float, typer.Option(
        min=0.001, help="Users started per second.")] = 5.0,
    run_time: Annotated[str, typer.Option(help="How long to run: 30s, 2m, 1h.")] = "30s",
    csv: Annotated[Path, typer.Option(
        help="CSV prefix: writes PREFIX_stats.csv, PREFIX_stats_history.csv, ...")
    ] = Path("load"),
) -> None:
    """Run the locust users headless against a service and keep locust's CSV files.

    Locust users are closed loop (each waits for its answer, no think time), good for
    seeing how a service behaves under N concurrent clients; use `rate` for tail
    latencies. Exits with locust's exit code (1 if any order failed).
    """
    with _user_errors():
        addr = check_target(target)
        unit = parse_size(size)
        check_count(count, [unit])
        seconds = parse_duration(run_time)
        _run(_probe_once(addr, check_protocol(protocol.value), item, unit, count))
    result = run_locust(addr, check_protocol(protocol.value), item=item, size=unit,
                        count=count, users=users, spawn_rate=spawn_rate,
                        run_time=f"{max(1, round(seconds))}s", csv_prefix=csv)
    if result.stats.empty:
        raise _fail(f"locust exited with code {result.returncode} and wrote no "
                    f"{csv}_stats.csv; see its output above", 1)
    total = result.stats.iloc[-1]
    # locust rewrites its CSV once a second, so these can trail its console totals slightly
    err.print(f"locust CSV: {int(total['Request Count'])} orders, "
              f"{int(total['Failure Count'])} failed, {total['Requests/s']:.1f} orders/s, "
              f"median {total['Median Response Time']:g} ms, p99 {total['99%']:g} ms")
    for path in result.csv_files:
        out.print(f"wrote {path}")
    if result.returncode != 0:
        raise typer.Exit(result.returncode)


async def _probe_once(target: str, protocol: WireProtocol, item: str, size: int,
                      count: int) -> None:
    async with open_client(target, protocol, timeout=10.0) as client:
        await probe(client, item, target, protocol, size=size, count=count)


def main() -> None:
    app()
