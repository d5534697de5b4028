#!/usr/bin/env python3
"""One-hop latency and throughput: a settlers service vs a bare echo server.

For each protocol (HTTP, gRPC) this starts, as separate processes on loopback,
  * a settlers producer with no inputs (`settlers serve --item water`), and
  * a bare echo server speaking the same wire format (aiohttp / grpc.aio handler that
    returns count*size bytes and nothing else: no validation, trace or metrics),
and measures both through the same settlers.client, interleaved request by request, so the
ratio is the cost of the service's own work. Then closed-loop orders/s at
concurrency 1, 8 and 64.

    python3 bench/hop.py                 # full run, writes bench/results/hop.json
    python3 bench/hop.py --quick         # a fast smoke run
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from rich.console import Console
from rich.table import Table

from settlers.client import ProducerClient, open_client
from settlers.testing import start_service
from settlers.wire import PROTOCOLS, WireProtocol, parse_protocol

SIZES = [16, 256, 4096, 65536, 1048576]
CONCURRENCY = [1, 8, 64]
RESULTS = Path(__file__).resolve().parent / "results" / "hop.json"

app = typer.Typer(add_completion=False, pretty_exceptions_show_locals=False)
console = Console()


# --------------------------------------------------------------------------- echo servers

def _new_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:  # pragma: no cover
        return asyncio.new_event_loop()
    loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    return loop


async def _echo_http() -> None:
    from aiohttp import web

    cache: dict[int, bytes] = {}

    async def produce(request: web.Request) -> web.Response:
        order = json.loads(await request.read())
        n = order["count"] * order["size"]
        body = cache.get(n)
        if body is None:
            body = cache[n] = bytes(n)
        return web.Response(body=body, content_type="application/octet-stream")

    app_ = web.Application()
    app_.router.add_post("/produce", produce)
    runner = web.AppRunner(app_, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    print(f"echo ready on 127.0.0.1:{runner.addresses[0][1]} (inputs", flush=True)
    await asyncio.Event().wait()


async def _echo_grpc() -> None:
    import grpc

    from settlers.proto import settlers_pb2, settlers_pb2_grpc

    cache: dict[int, bytes] = {}

    class Echo(settlers_pb2_grpc.ProducerServicer):
        async def Produce(self, request: Any, context: Any) -> Any:
            n = request.count * request.size
            body = cache.get(n)
            if body is None:
                body = cache[n] = bytes(n)
            return settlers_pb2.ProduceResponse(item=request.item, count=request.count,
                                                payload=body)

    server = grpc.aio.server(options=[("grpc.max_send_message_length", 64 * 2**20)])
    settlers_pb2_grpc.add_ProducerServicer_to_server(Echo(), server)  # type: ignore[no-untyped-call]
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    print(f"echo ready on 127.0.0.1:{port} (inputs", flush=True)
    await server.wait_for_termination()


@app.command(hidden=True)
def echo(protocol: str) -> None:
    """Run a bare echo server (used by the benchmark itself)."""
    main = _echo_http if protocol == "http" else _echo_grpc
    with asyncio.Runner(loop_factory=_new_loop) as runner:
        runner.run(main())


class _EchoProcess:
    def __init__(self, protocol: WireProtocol) -> None:
        self.proc = subprocess.Popen([sys.executable, __file__, "echo", protocol],
                                     stdout=subprocess.PIPE)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().decode()
        if " on " not in line:
            self.stop()
            raise RuntimeError(f"echo server did not start: {line!r}")
        self.address = line.split(" on ")[1].split()[0]

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


# --------------------------------------------------------------------------- measurement

async def _latencies(client: ProducerClient, size: int, n: int) -> list[float]:
    out = []
    for _ in range(n):
        result = await client.produce("water", 1, size)
        assert result.payload_bytes == size
        out.append(result.latency_s * 1000.0)
    return out


async def _throughput(client: ProducerClient, concurrency: int, size: int,
                      seconds: float) -> float:
    done = 0
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            await client.produce("water", 1, size)
            done += 1

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return done / (time.perf_counter() - start)


def _summary(samples: list[float]) -> dict[str, float]:
    arr = np.asarray(samples)
    return {"n": len(samples), "p50_ms": float(np.percentile(arr, 50)),
            "p90_ms": float(np.percentile(arr, 90)), "p99_ms": float(np.percentile(arr, 99)),
            "mean_ms": float(arr.mean()), "min_ms": float(arr.min()),
            "max_ms": float(arr.max())}


async def _measure_protocol(protocol: WireProtocol, targets: dict[str, str], sizes: list[int],
                            requests: int,
                            seconds: float, tp_size: int,
                            progress: Callable[[str], None]) -> dict[str, Any]:
    clients = {name: open_client(addr, protocol) for name, addr in targets.items()}
    try:
        latency: dict[str, dict[str, Any]] = {}
        for size in sizes:
            samples: dict[str, list[float]] = {name: [] for name in clients}
            for client in clients.values():  # warm-up: connections, caches
                await _latencies(client, size, 50)
            # Interleaved request by request (the order flipped every time): drift in
            # the machine's load, which other work on it causes, hits all targets alike.
            forward = list(clients.items())
            for i in range(requests):
                for name, client in (forward if i % 2 == 0 else forward[::-1]):
                    samples[name].extend(await _latencies(client, size, 1))
            latency[str(size)] = {name: {**_summary(s), "samples_ms": [round(x, 4) for x in s]}
                                  for name, s in samples.items()}
            row = latency[str(size)]
            s50, a50, e50 = (row[n]["p50_ms"] for n in ("settlers", "settlers_asyncio", "echo"))
            progress(f"{protocol} {size:>8} B: p50 settlers {s50:.3f} ms (asyncio loop "
                     f"{a50:.3f}), echo {e50:.3f} ms, ratio {s50 / e50:.2f}")
        throughput: dict[str, dict[str, float]] = {}
        for c in CONCURRENCY:
            # Three alternating slices per target, for the same reason as above.
            rates: dict[str, list[float]] = {name: [] for name in clients}
            forward = list(clients.items())
            for s in range(3):
                for name, client in (forward if s % 2 == 0 else forward[::-1]):
                    rates[name].append(await _throughput(client, c, tp_size, seconds / 3))
            throughput[str(c)] = {name: statistics.mean(r) for name, r in rates.items()}
            progress(f"{protocol} concurrency {c:>2}: " + ", ".join(
                f"{n} {v:.0f}/s" for n, v in throughput[str(c)].items()))
        return {"latency": latency, "throughput": throughput}
    finally:
        for client in clients.values():
            await client.close()


def _machine() -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import aiohttp
    import grpc

    try:
        from importlib.metadata import version

        loop = f"uvloop {version('uvloop')}"
    except ImportError:
        loop = "asyncio"
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(),
            "aiohttp": aiohttp.__version__, "grpcio": grpc.__version__, "loop": loop,
            "platform": platform.platform()}


@app.command()
def run(
    requests: Annotated[int, typer.Option(help="Latency samples per size and target.")] = 400,
    seconds: Annotated[float, typer.Option(help="Duration of each throughput run.")] = 3.0,
    tp_size: Annotated[int, typer.Option(help="Payload size for throughput runs.")] = 16,
    quick: Annotated[bool, typer.Option(help="Few samples: a smoke run.")] = False,
    protocol: Annotated[list[str] | None, typer.Option(
        help="Only this protocol (repeatable) [default: http and grpc].")] = None,
    sizes: Annotated[str, typer.Option(help="Comma-separated payload sizes in bytes."
                                       )] = ",".join(map(str, SIZES)),
    out: Annotated[Path, typer.Option(help="Where to write the raw results.")] = RESULTS,
) -> None:
    """Measure settlers vs bare echo, one hop, both protocols; write results JSON."""
    if quick:
        requests, seconds = 40, 0.5
    sizes_list = [int(s) for s in sizes.split(",")]
    result: dict[str, Any] = {
        "benchmark": "hop", "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": _machine(), "load_before": os.getloadavg(),
        "params": {"requests": requests, "seconds": seconds,
                   "tp_size": tp_size, "sizes": sizes_list, "concurrency": CONCURRENCY},
        "protocols": {},
    }
    protocols: list[WireProtocol] = []
    for name in protocol or PROTOCOLS:
        try:
            protocols.append(parse_protocol(name))
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--protocol") from None
    for proto in protocols:
        with ExitStack() as stack:
            svc = start_service("water", proto)  # uvloop when installed (the default)
            stack.callback(svc.stop)
            plain = start_service("water", proto, pod="water-asyncio",
                                  args=["--loop", "asyncio"])
            stack.callback(plain.stop)
            echo_proc = _EchoProcess(proto)
            stack.callback(echo_proc.stop)
            targets = {"settlers": svc.address, "settlers_asyncio": plain.address,
                       "echo": echo_proc.address}
            with asyncio.Runner(loop_factory=_new_loop) as runner:
                result["protocols"][proto] = runner.run(_measure_protocol(
                    proto, targets, sizes_list, requests, seconds, tp_size, console.print))
    result["load_after"] = os.getloadavg()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    console.print(_table(result))
    console.print(f"wrote {out}")
    print(markdown(result))  # plain print: no wrapping, ready to paste


def _table(result: dict[str, Any]) -> Table:
    table = Table(title="one hop: settlers vs bare echo (ms)")
    for col in ("protocol", "size", "settlers p50", "echo p50", "ratio", "settlers p99",
                "echo p99"):
        table.add_column(col, justify="right")
    for protocol, data in result["protocols"].items():
        for size, row in data["latency"].items():
            s, e = row["settlers"], row["echo"]
            table.add_row(protocol, size, f"{s['p50_ms']:.3f}", f"{e['p50_ms']:.3f}",
                          f"{s['p50_ms'] / e['p50_ms']:.2f}", f"{s['p99_ms']:.3f}",
                          f"{e['p99_ms']:.3f}")
    return table


def markdown(result: dict[str, Any]) -> str:
    """The BENCHMARKS.md tables for a result."""
    lines = ["| protocol | size (B) | settlers p50 | echo p50 | p50 ratio | settlers p99 "
             "| echo p99 | settlers p50, asyncio loop |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for protocol, data in result["protocols"].items():
        for size, row in data["latency"].items():
            s, e = row["settlers"], row["echo"]
            lines.append(f"| {protocol} | {size} | {s['p50_ms']:.3f} | {e['p50_ms']:.3f} | "
                         f"**{s['p50_ms'] / e['p50_ms']:.2f}** | {s['p99_ms']:.3f} | "
                         f"{e['p99_ms']:.3f} | {row['settlers_asyncio']['p50_ms']:.3f} |")
    lines += ["", "| protocol | concurrency | settlers orders/s | echo orders/s | ratio "
              "| settlers orders/s, asyncio loop |", "|---|---:|---:|---:|---:|---:|"]
    for protocol, data in result["protocols"].items():
        for c, row in data["throughput"].items():
            lines.append(f"| {protocol} | {c} | {row['settlers']:.0f} | {row['echo']:.0f} | "
                         f"{row['settlers'] / row['echo']:.2f} | {row['settlers_asyncio']:.0f} |")
    ratios = [row["settlers"]["p50_ms"] / row["echo"]["p50_ms"]
              for data in result["protocols"].values() for row in data["latency"].values()]
    lines += ["", f"Worst p50 ratio: {max(ratios):.2f} (median over sizes and protocols "
              f"{statistics.median(ratios):.2f})."]
    return "\n".join(lines)


if __name__ == "__main__":
    app()
