"""The latency sweep: every item x size, one order at a time, every order kept.

Orders are sent one after another (closed loop, one in flight) because the sweep
measures the response time of a single order through the supply chain, as the
NetMARKS evaluation does, not the throughput of the services. Each (item, size)
cell first sends ``warmup`` orders that are not recorded (connections, buffers and
the services' first allocations of that size), then ``repeat`` recorded ones.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import pandas as pd
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from order_app.params import (
    UsageError,
    check_count,
    check_protocol,
    check_size,
    check_targets,
)
from order_app.probe import FATAL_KINDS, TargetError, describe_failure
from settlers.client import OrderError, ProducerClient, open_client
from settlers.trace import encode_trace
from settlers.wire import WireProtocol

__all__ = ["COLUMNS", "ClientFactory", "run_sweep", "summarize", "to_frame"]

# One row per order, in this column order (CSV and Parquet alike).
COLUMNS = [
    "item", "size", "protocol", "count", "repeat", "latency_ms", "ok", "error",
    "payload_bytes", "hops", "pods", "trace",
]

ClientFactory = Callable[[str, WireProtocol, float], ProducerClient]


def _open(target: str, protocol: WireProtocol, timeout: float) -> ProducerClient:
    return open_client(target, protocol, timeout=timeout)


async def run_sweep(
    targets: Mapping[str, str],
    protocol: WireProtocol,
    items: Sequence[str],
    sizes: Sequence[int],
    *,
    count: int = 1,
    repeat: int = 10,
    warmup: int = 2,
    progress: bool = True,
    timeout: float = 30.0,
    client_factory: ClientFactory = _open,
    collect: list[dict[str, Any]] | None = None,
) -> pd.DataFrame:
    """Order every item at every size ``repeat`` times; one row per recorded order.

    Rows are appended to ``collect`` (when given) as orders complete, so a caller
    interrupted half way (Ctrl-C) still has what was measured: ``to_frame(collect)``.

    ``targets`` maps each item to the ``host:port`` its orders go to. Failed orders
    are rows too (``ok`` False, ``error`` says why), except that the first order of
    each (item, size) failing to connect or being refused as invalid raises
    :class:`~order_app.probe.TargetError`: that is a wrong address or a wrong item,
    and repeating it would only fill the table with the same error.
    """
    protocol = check_protocol(protocol)
    check_targets(targets, items)
    for size in sizes:
        check_size(size)
    check_count(count, sizes)
    if repeat < 1 or warmup < 0:
        raise UsageError(f"repeat must be >= 1 and warmup >= 0 (got {repeat}, {warmup})")

    rows: list[dict[str, Any]] = [] if collect is None else collect
    clients: dict[str, ProducerClient] = {}
    total = len(items) * len(sizes) * (warmup + repeat)
    try:
        with _progress_bar(progress, total) as advance:
            for item in items:
                target = targets[item]
                if target not in clients:
                    clients[target] = client_factory(target, protocol, timeout)
                client = clients[target]
                for size in sizes:
                    advance(f"{item} {size} B")
                    for i in range(warmup + repeat):
                        row = await _order(client, item, size, count, protocol)
                        if i == 0 and not row["ok"] and row["kind"] in FATAL_KINDS:
                            raise TargetError(describe_failure(
                                item, target, protocol, row["kind"], row["error"]))
                        if i >= warmup:
                            row["repeat"] = i - warmup
                            rows.append(row)
                        advance(None)
    finally:
        for client in clients.values():
            await client.close()
    return to_frame(rows)


def to_frame(rows: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """The order table (``COLUMNS``, stable dtypes) from rows of :func:`run_sweep`."""
    frame = pd.DataFrame(list(rows), columns=COLUMNS)
    return frame.astype({"size": "int64", "count": "int64", "repeat": "int64",
                         "latency_ms": "float64", "ok": "bool", "payload_bytes": "int64",
                         "hops": "int64"})


async def _order(client: ProducerClient, item: str, size: int, count: int,
                 protocol: WireProtocol) -> dict[str, Any]:
    row: dict[str, Any] = {"item": item, "size": size, "protocol": protocol, "count": count,
                           "repeat": -1, "ok": True, "error": "", "kind": "",
                           "payload_bytes": 0, "hops": 0, "pods": "", "trace": ""}
    start = time.perf_counter()
    try:
        result = await client.produce(item, count=count, size=size)
    except OrderError as exc:
        row.update(latency_ms=(time.perf_counter() - start) * 1e3, ok=False,
                   error=str(exc), kind=exc.kind)
        return row
    row["latency_ms"] = (time.perf_counter() - start) * 1e3
    row.update(payload_bytes=result.payload_bytes, hops=len(result.trace),
               pods=",".join(dict.fromkeys(hop.pod for hop in result.trace)),
               trace=encode_trace(result.trace))
    if result.payload_bytes != count * size:
        # A short or long payload is a broken service, not a measurement: flag it.
        row.update(ok=False, kind="payload",
                   error=f"payload was {result.payload_bytes} bytes, expected {count * size}")
    return row


@contextmanager
def _progress_bar(enabled: bool, total: int) -> Iterator[Callable[[str | None], None]]:
    """Yield ``advance(label)``: a label renames the bar, ``None`` counts one order."""
    if not enabled:
        yield lambda _label: None
        return
    bar = Progress(
        TextColumn("[bold]{task.description:<20}"), BarColumn(), MofNCompleteColumn(),
        TimeElapsedColumn(), TimeRemainingColumn(), console=Console(stderr=True),
    )
    task = bar.add_task("orders", total=total)

    def advance(label: str | None) -> None:
        if label is None:
            bar.advance(task)
        else:
            bar.update(task, description=label)

    with bar:
        yield advance


def summarize(frame: pd.DataFrame) -> pd.DataFrame:
    """Median and p99 latency (ms) of the successful orders per protocol x item x size."""
    keys = ["protocol", "item", "size"]
    ok = frame[frame["ok"]]
    grouped = ok.groupby(keys, sort=False)["latency_ms"]
    table = pd.DataFrame({
        "orders": grouped.size(),
        "median_ms": grouped.median(),
        "p99_ms": grouped.quantile(0.99),
    })
    errors = (~frame["ok"]).groupby([frame[k] for k in keys], sort=False).sum()
    table = table.join(errors.rename("errors"), how="outer")
    table[["orders", "errors"]] = table[["orders", "errors"]].fillna(0).astype("int64")
    return table.reset_index()
