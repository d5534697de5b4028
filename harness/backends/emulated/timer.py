"""Sub-millisecond timers for the asyncio loop, from a Linux timerfd.

asyncio's own timers wake up through epoll_wait, whose timeout is whole
milliseconds (uvloop's libuv timers too), so a 0.3 ms link delay would come out
anywhere between 0.3 and 1.3 ms. A timerfd armed at an absolute CLOCK_MONOTONIC
time (nanosecond resolution) and watched with ``loop.add_reader`` wakes the loop
when it should. Times are ``time.monotonic()`` seconds (CLOCK_MONOTONIC on Linux).
Where timerfd is missing (not Linux), it falls back to ``loop.call_at``.

Even a timerfd wakes a process some tens of microseconds late (more on a busy
or virtualised machine, where an idle CPU is halted). The scheduler measures its
own lateness and arms that much early (an exponentially weighted mean, capped),
so callbacks run on time *on average* instead of always late.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import heapq
import itertools
import logging
import os
import time
from collections.abc import Callable
from typing import Any

__all__ = ["PreciseScheduler"]

_CLOCK_MONOTONIC = 1
_TFD_NONBLOCK = os.O_NONBLOCK
_TFD_CLOEXEC = os.O_CLOEXEC
_TFD_TIMER_ABSTIME = 1
_MAX_LEAD_S = 0.0005   # never arm more than 0.5 ms early, whatever a hiccup measured
_LEAD_WEIGHT = 0.05


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


class _Itimerspec(ctypes.Structure):
    _fields_ = [("it_interval", _Timespec), ("it_value", _Timespec)]


log = logging.getLogger(__name__)


def _load_libc() -> Any:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.timerfd_create  # noqa: B018 - probe: AttributeError where there is none
        return libc
    except (OSError, AttributeError):
        return None


_LIBC = _load_libc()


class PreciseScheduler:
    """``call_at(when, fn, *args)`` with callbacks run in time order (FIFO on ties)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._heap: list[tuple[float, int, Callable[..., None], tuple[Any, ...]]] = []
        self._seq = itertools.count()
        self._armed = float("inf")
        self.lead = 0.0   # how early to arm: the mean lateness measured so far
        self._fd = -1
        self._fallback: asyncio.TimerHandle | None = None
        if _LIBC is not None:
            fd = _LIBC.timerfd_create(_CLOCK_MONOTONIC, _TFD_NONBLOCK | _TFD_CLOEXEC)
            if fd >= 0:
                self._fd = fd
                loop.add_reader(fd, self._fire)

    @property
    def precise(self) -> bool:
        return self._fd >= 0

    def call_at(self, when: float, fn: Callable[..., None], *args: Any) -> None:
        heapq.heappush(self._heap, (when, next(self._seq), fn, args))
        if when < self._armed:
            self._arm(when)

    def _arm(self, when: float) -> None:
        self._armed = when
        if self._fd >= 0:
            spec = _Itimerspec()
            if when != float("inf"):
                # A zero it_value disarms, so never pass exactly 0.
                at = when - self.lead
                sec = int(at)
                spec.it_value.tv_sec = sec
                spec.it_value.tv_nsec = max(1, int((at - sec) * 1e9))
            _LIBC.timerfd_settime(self._fd, _TFD_TIMER_ABSTIME, ctypes.byref(spec), None)
        else:
            if self._fallback is not None:
                self._fallback.cancel()
                self._fallback = None
            if when != float("inf"):
                delay = max(0.0, when - time.monotonic())
                self._fallback = self._loop.call_at(self._loop.time() + delay, self._fire)

    def _fire(self) -> None:
        now = time.monotonic()
        if self._fd >= 0:
            try:
                os.read(self._fd, 8)
            except BlockingIOError:   # woken for nothing
                return
            if self._armed != float("inf"):
                late = min(_MAX_LEAD_S, max(0.0, now - (self._armed - self.lead)))
                self.lead += _LEAD_WEIGHT * (late - self.lead)
        heap = self._heap
        due = now + self.lead
        try:
            while heap and heap[0][0] <= due:
                _, _, fn, args = heapq.heappop(heap)
                try:
                    fn(*args)
                except Exception:
                    # One failing delivery must not stop the clock: an exception that
                    # escaped here used to leave the timer disarmed, and every later
                    # cross-node byte waited forever (the whole mesh hung).
                    log.exception("mesh timer callback %r failed", fn)
        finally:
            self._arm(heap[0][0] if heap else float("inf"))

    def close(self) -> None:
        self._heap.clear()
        if self._fd >= 0:
            self._loop.remove_reader(self._fd)
            os.close(self._fd)
            self._fd = -1
        if self._fallback is not None:
            self._fallback.cancel()
