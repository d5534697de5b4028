"""Helpers for the host processes that run beside a kwok cluster (an extra
kube-scheduler, the NetMARKS extender, the firmament scheduler)."""

from __future__ import annotations

import contextlib
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from harness.backends.k8s.cluster import KwokError

__all__ = ["stop_process", "wait_http_ok"]


def stop_process(proc: subprocess.Popen[bytes], grace_s: float = 10.0) -> None:
    """SIGTERM, then SIGKILL after `grace_s`; always reaps the child."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(grace_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def wait_http_ok(
    url: str, proc: subprocess.Popen[bytes], log: Path | None = None, timeout: float = 60.0
) -> None:
    """Poll `url` until it answers 200; raise KwokError (with the end of `log`) if `proc`
    exits first or time runs out. https is accepted without verification: the servers
    here use self-signed certificates generated at start-up."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise KwokError(f"{_name(proc)} exited with {proc.returncode}:\n{_tail(log)}")
        with (
            contextlib.suppress(OSError, urllib.error.URLError),
            urllib.request.urlopen(url, context=ctx, timeout=2) as resp,
        ):
            if resp.status == 200:
                return
        time.sleep(0.2)
    raise KwokError(f"{_name(proc)}: {url} not OK after {timeout:.0f} s:\n{_tail(log)}")


def _name(proc: subprocess.Popen[bytes]) -> str:
    args = proc.args if isinstance(proc.args, list) else [str(proc.args)]
    return Path(str(args[0])).name


def _tail(log: Path | None, lines: int = 20) -> str:
    if log is None or not log.is_file():
        return "(no log)"
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
