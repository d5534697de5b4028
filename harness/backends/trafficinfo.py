"""How the traffic a scheduler placed with is described in a run's manifest and report.

Every backend states, per scheduler, where its traffic came from and over which
interval (``traffic_description(scheduler, traffic)``; the experiment records it as
the manifest's ``scheduler_traffic``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from schedulers import TrafficMatrix

__all__ = ["describe_matrix"]


def describe_matrix(traffic: TrafficMatrix | None) -> str:
    """E.g. ``prometheus http://127.0.0.1:9090 (L4), average since
    2026-12-01T22:50:03Z (23 s), 24 pairs``."""
    from schedulers.promtraffic import iso_time

    if traffic is None or not traffic:
        return "empty (no warm-up traffic: scores 0, no vote)"
    span = ""
    if traffic.since is not None:
        if "since" not in traffic.source:
            span = f", average since {iso_time(traffic.since)}"
        if traffic.until is not None:
            span += f" ({traffic.until - traffic.since:.0f} s)"
    return f"{traffic.source}{span}, {len(traffic)} pairs"
