"""What every rebalancer shares: the Move it proposes, its interface, its input checks.

A rebalancer looks at the pods running now and the traffic of a recent window and
proposes moves; the runner (``harness.scenario``) carries them out with the
rebalancer's ``strategy`` and calls it again after ``rebalance_interval_s``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

from schedulers.model import Node, Pod
from schedulers.traffic import TrafficMatrix

__all__ = [
    "DEFAULT_WINDOW_S",
    "STRATEGIES",
    "Move",
    "Rebalancer",
    "Strategy",
    "check_layout",
    "check_max_moves",
    "check_number",
    "natural",
]

Strategy = Literal["make-before-break", "evict"]
STRATEGIES: tuple[Strategy, ...] = ("make-before-break", "evict")
# The traffic window the runner hands over unless told otherwise (seconds).
DEFAULT_WINDOW_S = 20.0


@dataclass(frozen=True)
class Move:
    """Move the running pod ``pod`` from node ``src`` to node ``dst``; ``reason`` is a
    short text for the report (why this pod, why there)."""

    pod: str
    src: str
    dst: str
    reason: str


@runtime_checkable
class Rebalancer(Protocol):
    name: str
    # How the runner moves a pod: start the new one first ("make-before-break") or
    # stop the old one first ("evict", as a descheduler or Poseidon does).
    strategy: Strategy
    # The traffic window (s) the runner measures and hands to plan().
    window_s: float
    # At most this many moves per plan().
    max_moves: int

    def plan(self, running: Sequence[tuple[Pod, str]], nodes: Sequence[Node],
             traffic: TrafficMatrix) -> list[Move]:
        """Moves for the pods ``running`` (pod, node) on ``nodes`` (cordoned ones
        included, ``unschedulable=True``: never a destination), given ``traffic``
        between workloads over the last ``window_s``; [] when nothing is worth it."""
        ...


def check_layout(running: Sequence[tuple[Pod, str]], nodes: Sequence[Node]) -> None:
    """ValueError unless every pod runs once, on one of ``nodes``."""
    names = {n.name for n in nodes}
    if len(names) != len(nodes):
        raise ValueError("node names must be unique")
    seen: set[str] = set()
    for pod, node in running:
        if node not in names:
            raise ValueError(f"pod {pod.name} runs on node {node!r}, which is not among "
                             f"the nodes ({', '.join(sorted(names, key=natural))})")
        if pod.name in seen:
            raise ValueError(f"pod {pod.name} is listed as running twice")
        seen.add(pod.name)


def check_number(who: str, option: str, value: object, *, low: float, high: float = math.inf,
                 low_open: bool = False, high_open: bool = False, why: str = "") -> float:
    """``value`` as a float if it is a finite number in the range, else a ValueError
    naming ``who``'s ``option``, the range and ``why`` that range."""
    left = "(" if low_open else "["
    right = ")" if high_open or high == math.inf else "]"
    top = "inf" if high == math.inf else f"{high:g}"
    bad = ValueError(f"{who} rebalancer: {option} must be a number in "
                     f"{left}{low:g}, {top}{right}, got {value!r}" + (f" ({why})" if why else ""))
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise bad
    v = float(value)
    if not (math.isfinite(v) and (v > low if low_open else v >= low)
            and (v < high if high_open else v <= high)):
        raise bad
    return v


def check_max_moves(who: str, value: object) -> int:
    """``value`` if it is an int >= 1, else a ValueError."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{who} rebalancer: max_moves must be an integer >= 1, got {value!r}")
    return value


def natural(name: str) -> tuple[object, ...]:
    """node-2 before node-10 (pod and node names in a stable, readable order)."""
    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in re.split(r"(\d+)", name))
