"""SIGTERM handling for backends that own state outside this process.

A kwok control plane or a Helm release outlives the harness unless the harness cleans
up. Ctrl-C (KeyboardInterrupt) already unwinds through every ``finally`` and
``backend.close()``; `sigterm_as_interrupt` makes ``kill <pid>`` (CI timeouts,
``timeout(1)``, systemd) take the same path.
"""

from __future__ import annotations

import signal
import threading

__all__ = ["sigterm_as_interrupt"]

_installed = False


def sigterm_as_interrupt() -> None:
    """Turn SIGTERM into KeyboardInterrupt in the main thread, once, unless someone
    else (a test runner, an embedding program) already handles SIGTERM."""
    global _installed
    if _installed or threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        return

    def _raise(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, _raise)
    _installed = True
