"""Child processes that cannot outlive their owner, and free loopback ports.

Every child (pods, the mesh, Prometheus) runs in its own process group, so a
terminal's Ctrl-C reaches only the owner, which then stops them in order; and
with ``PR_SET_PDEATHSIG`` the kernel sends the child SIGTERM if its owner dies
without cleaning up (SIGKILL, crash). An atexit hook covers a normal exit that
skipped ``stop()``. Together: no process outlives the cluster that started it.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import ctypes
import ctypes.util
import os
import signal
import socket
import subprocess
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from harness.backends.emulated.errors import ClusterError

__all__ = ["Child", "free_port", "kill_group", "port_in_use", "stop_all"]

_PR_SET_PDEATHSIG = 1
_LIVE: set[Child] = set()

_prctl: Any
try:
    _prctl = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True).prctl
except (OSError, AttributeError):
    _prctl = None


def _die_with_parent() -> None:
    # Runs in the child between fork and exec; async-signal-safe calls only.
    if _prctl is not None:
        _prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


class Child:
    """A process started in its own group, logged to a file, tied to our lifetime."""

    def __init__(self, name: str, argv: Sequence[str], *, log: Path,
                 env: dict[str, str] | None = None, stdout_pipe: bool = False,
                 tied: bool = True) -> None:
        self.name = name
        self.log = log
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "ab") as logf:
            # PDEATHSIG is tied to the forking *thread*: always spawn from the loop thread.
            self.proc = subprocess.Popen(
                list(argv), stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE if stdout_pipe else logf, stderr=logf,
                env={**os.environ, **(env or {})}, start_new_session=True,
                preexec_fn=_die_with_parent if tied else None,
            )
        self.pid = self.proc.pid
        self.started = time.monotonic()
        _LIVE.add(self)

    @property
    def returncode(self) -> int | None:
        return self.proc.poll()

    def stop(self, timeout: float = 3.0) -> None:
        """SIGTERM the group, SIGKILL what is left after ``timeout``; reap."""
        if self.proc.poll() is None:
            kill_group(self.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                kill_group(self.pid, signal.SIGKILL)
                self.proc.wait(5)
        # Members of the group that outlived the leader (none expected) go too.
        kill_group(self.pid, signal.SIGKILL)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        _LIVE.discard(self)

    async def wait_ready(self, probe: Callable[[], Awaitable[bool]], *, what: str,
                         timeout: float, interval: float = 0.05) -> None:
        """Poll ``probe`` until it says ready; ClusterError if the process exits, or is not
        ready ``timeout`` seconds after it was started."""
        deadline = self.started + timeout
        while True:
            code = self.returncode
            if code is not None:
                raise ClusterError(f"{what} exited with code {code} while starting; "
                                   f"last log lines:\n{self.tail()}")
            if await probe():
                return
            if time.monotonic() > deadline:
                raise ClusterError(f"{what} not healthy after {timeout:.0f} s; "
                                   f"last log lines:\n{self.tail()}")
            await asyncio.sleep(interval)

    def tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def stop_all(children: Sequence[Child], timeout: float = 3.0) -> None:
    """Stop many children at once: signal all, then wait (not one timeout each)."""
    for child in children:
        if child.proc.poll() is None:
            kill_group(child.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for child in children:
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.proc.wait(max(0.0, deadline - time.monotonic()))
    for child in children:
        child.stop(timeout=1.0)


def kill_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def free_port(host: str = "127.0.0.1") -> int:
    """A port the kernel just handed out; the caller binds it soon (small race, retried)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


@atexit.register
def _stop_leftovers() -> None:
    stop_all(list(_LIVE), timeout=2.0)
