"""Start real ``settlers serve`` processes on loopback, for tests and benchmarks.

    with run_chain("settlers2", "grpc", roots=["bread"]) as services:
        address = services["bread"].address   # "127.0.0.1:PORT"

Each service listens on a free port chosen by the kernel (``--port 0``) and reports
it in its ready line, so there is no race for ports. Consumers start once their
inputs are ready. Processes are always stopped on exit, even when a test fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import selectors
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from settlers.economy import Economy, load_economy
from settlers.serve import ServeConfig, serve
from settlers.wire import WireProtocol

__all__ = ["ServiceProcess", "run_chain", "serving", "start_service"]

_READY_RE = re.compile(rb" on (\S+):(\d+) \(inputs")
_METRICS_RE = re.compile(rb", /metrics on (\S+):(\d+)$")


@dataclass
class ServiceProcess:
    item: str
    protocol: WireProtocol
    pod: str
    address: str  # "127.0.0.1:PORT"
    process: subprocess.Popen[bytes]
    log: Path  # the service's stderr
    # Where /metrics is: the address (HTTP) or the side server (gRPC --metrics-port).
    metrics_address: str = ""

    @property
    def port(self) -> int:
        return int(self.address.rpartition(":")[2])

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL, as when a pod dies; no chance to say goodbye."""
        if self.alive():
            self.process.kill()
        self.process.wait(timeout=10)

    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM, then SIGKILL if it has not exited within ``timeout``."""
        if self.alive():
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        if self.process.stdout is not None:
            self.process.stdout.close()
        if self.process.returncode == 0:  # a clean exit: the log holds nothing of use
            self.log.unlink(missing_ok=True)


def start_service(item: str, protocol: WireProtocol, *,
                  economy: str | Path = "settlers2", inputs: Mapping[str, str] | None = None,
                  pod: str | None = None, args: Sequence[str] = (),
                  ready_timeout: float = 30.0) -> ServiceProcess:
    """Start ``settlers serve`` for ``item`` on 127.0.0.1 and wait until it is ready."""
    return _Starting(item, protocol, economy, inputs or {}, pod, args).wait(ready_timeout)


class _Starting:
    """A spawned service whose ready line has not been read yet."""

    def __init__(self, item: str, protocol: WireProtocol, economy: str | Path,
                 inputs: Mapping[str, str], pod: str | None, args: Sequence[str]) -> None:
        self.item, self.protocol, self.pod = item, protocol, pod or f"{item}-0"
        cmd = [sys.executable, "-m", "settlers", "serve", "--item", item,
               "--protocol", protocol, "--host", "127.0.0.1", "--port", "0",
               "--pod-name", self.pod, "--economy", str(economy),
               *(f"--input={k}={v}" for k, v in inputs.items()), *args]
        self.log = Path(tempfile.gettempdir()) / (
            f"settlers-{self.pod}-{os.getpid()}-{time.monotonic_ns()}.log")
        with self.log.open("wb") as err:
            self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err,
                                         stdin=subprocess.DEVNULL)

    def wait(self, timeout: float) -> ServiceProcess:
        proc = self.proc
        assert proc.stdout is not None
        try:
            line = _read_line(proc.stdout, timeout)
            match = _READY_RE.search(line)
            if not match:
                raise RuntimeError(
                    f"settlers serve {self.item} did not start (exit code {proc.wait(5)}): "
                    f"{self.log.read_text(errors='replace')[-2000:]}")
        except BaseException:
            self.abort()
            raise
        address = f"127.0.0.1:{int(match.group(2))}"
        side = _METRICS_RE.search(line.rstrip())
        return ServiceProcess(self.item, self.protocol, self.pod, address, proc, self.log,
                              f"127.0.0.1:{int(side.group(2))}" if side else address)

    def abort(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def _read_line(stream: IO[bytes], timeout: float) -> bytes:
    with selectors.DefaultSelector() as sel:
        sel.register(stream, selectors.EVENT_READ)
        if not sel.select(timeout):
            raise TimeoutError(f"no ready line within {timeout:g} s")
    return stream.readline()


@contextlib.contextmanager
def run_chain(economy: str | Path | Economy, protocol: WireProtocol, *,
              roots: Sequence[str] | None = None, args: Sequence[str] = (),
              economy_file: str | Path | None = None,
              ready_timeout: float = 30.0) -> Iterator[dict[str, ServiceProcess]]:
    """One service per item that ``roots`` need (all items by default), wired together.

    ``economy`` is a file, a shipped name or an Economy; the processes load
    ``economy_file`` (default: ``economy`` itself when it is a file or name).
    """
    econ = economy if isinstance(economy, Economy) else load_economy(economy)
    source = economy_file or (economy if not isinstance(economy, Economy) else None)
    if source is None:
        raise ValueError("an Economy object needs economy_file= (what the processes load)")
    names = econ.subset(list(roots)).names if roots else econ.names
    services: dict[str, ServiceProcess] = {}
    pending = list(names)  # topological order
    try:
        while pending:
            # Start every item whose inputs are all up, side by side, then wait for them.
            wave = [n for n in pending if all(s in services for s in econ[n].inputs)]
            starting = []
            try:
                for name in wave:
                    inputs = {src: services[src].address for src in econ[name].inputs}
                    starting.append(_Starting(name, protocol, source, inputs, None, args))
                for s in starting:
                    services[s.item] = s.wait(ready_timeout)
            except BaseException:
                for s in starting:
                    s.abort()
                raise
            pending = [n for n in pending if n not in services]
        yield services
    finally:
        for svc in reversed(list(services.values())):
            svc.stop()


@contextlib.asynccontextmanager
async def serving(config: ServeConfig) -> AsyncIterator[str]:
    """Run a service inside the current event loop (no process); yields its address.

    For fast tests of the service logic; the integration tests use real processes.
    """
    stop = asyncio.Event()
    ready: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    def on_ready(message: str) -> None:
        match = _READY_RE.search(message.encode())
        assert match, message
        ready.set_result(f"127.0.0.1:{int(match.group(2))}")

    task = asyncio.create_task(serve(config, ready=on_ready, stop=stop))
    try:
        waiters: list[asyncio.Future[Any]] = [task, ready]
        done, _ = await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        if task in done:
            task.result()  # raises the start-up error
        yield ready.result()
    finally:
        stop.set()
        await task
