"""Shared normalisation helpers (``pkg/scheduler/framework/plugins/helper``)."""

from __future__ import annotations

__all__ = ["MAX_NODE_SCORE", "default_normalize", "go_round"]

MAX_NODE_SCORE = 100


def default_normalize(scores: list[int], *, reverse: bool) -> list[int]:
    """helper.DefaultNormalizeScore: scale to [0, 100] by the maximum (optionally reversed)."""
    top = max(scores, default=0)
    if top <= 0:
        return [MAX_NODE_SCORE if reverse else 0 for _ in scores]
    out = [MAX_NODE_SCORE * s // top for s in scores]
    return [MAX_NODE_SCORE - s for s in out] if reverse else out


def go_round(x: float) -> int:
    """Go's math.Round (half away from zero), unlike Python's banker's round."""
    return int(x + 0.5) if x >= 0 else -int(-x + 0.5)
