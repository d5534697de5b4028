"""Scheduler-level estimates from per-layout measurements, with bootstrap intervals.

Every estimate is the mean over a scheduler's *units* (see ``results.layouts``) of the
value measured on each unit's layout: the layout-frequency-weighted mean for a census,
the Hansen-Hurwitz estimator for a PPS sample. Intervals come from a two-stage
bootstrap that mirrors how the numbers were produced: units are resampled (which
layouts the scheduler would produce), and each layout's raw samples are resampled
(measurement noise). The layout resamples are shared by all schedulers, so a
reduction versus the baseline is computed pairwise on the same replicate.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = ["Estimate", "estimate_cell"]

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Estimate:
    scheduler: str
    mean: float
    low: float
    high: float
    reduction: float  # relative to the baseline: 1 - mean / baseline mean; 0 for it
    reduction_low: float
    reduction_high: float
    units: int  # units whose layout has data
    coverage: float  # share of the scheduler's units that have data


def estimate_cell(
    values: Mapping[str, Sequence[float]],
    units: Mapping[str, Sequence[str]],
    *,
    baseline: str,
    resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> list[Estimate]:
    """``values``: layout id -> raw samples; ``units``: scheduler -> layout id per unit."""
    rng = np.random.default_rng(seed)
    layouts = [lid for lid, v in values.items() if len(v) > 0]
    index = {lid: k for k, lid in enumerate(layouts)}
    means = np.array([float(np.mean(values[lid])) for lid in layouts])
    # (K, B): each layout's bootstrap means.
    boot_means = np.empty((len(layouts), resamples))
    for k, lid in enumerate(layouts):
        x = np.asarray(values[lid], dtype=float)
        boot_means[k] = x[rng.integers(0, len(x), size=(resamples, len(x)))].mean(axis=1)

    point: dict[str, float] = {}
    reps: dict[str, FloatArray] = {}
    counts: dict[str, tuple[int, float]] = {}
    for scheduler, unit_layouts in units.items():
        idx = np.array([index[u] for u in unit_layouts if u in index], dtype=int)
        counts[scheduler] = (len(idx), len(idx) / max(len(unit_layouts), 1))
        if len(idx) == 0:
            point[scheduler] = float("nan")
            reps[scheduler] = np.full(resamples, np.nan)
            continue
        c = np.bincount(idx, minlength=len(layouts)).astype(float)
        point[scheduler] = float(c @ means / len(idx))
        draws = rng.multinomial(len(idx), c / len(idx), size=resamples)  # (B, K)
        reps[scheduler] = np.einsum("bk,kb->b", draws, boot_means) / len(idx)

    alpha = (1.0 - confidence) / 2.0
    out = []
    base_point, base_reps = point.get(baseline, np.nan), reps.get(baseline)
    for scheduler in units:
        low, high = _percentiles(reps[scheduler], alpha)
        if scheduler == baseline or base_reps is None:
            red, red_low, red_high = 0.0, 0.0, 0.0
        else:
            red = 1.0 - point[scheduler] / base_point if base_point else float("nan")
            with np.errstate(divide="ignore", invalid="ignore"):
                red_low, red_high = _percentiles(1.0 - reps[scheduler] / base_reps, alpha)
        n, coverage = counts[scheduler]
        out.append(
            Estimate(scheduler, point[scheduler], low, high, red, red_low, red_high, n, coverage)
        )
    return out


def _percentiles(x: FloatArray, alpha: float) -> tuple[float, float]:
    x = x[np.isfinite(x)]
    if len(x) == 0:
        return float("nan"), float("nan")
    lo, hi = np.quantile(x, [alpha, 1.0 - alpha])
    return float(lo), float(hi)
