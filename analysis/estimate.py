"""Scheduler-level estimates from per-layout measurements, with bootstrap intervals.

Every estimate is the mean over a scheduler's *units* (see ``results.layouts``) of the
value measured on each unit's layout: the layout-frequency-weighted mean for a census,
the Hansen-Hurwitz estimator for a PPS sample. Intervals come from a two-stage
bootstrap that mirrors how the numbers were produced: units are resampled (which
layouts the scheduler would produce), and each layout's raw samples are resampled
(measurement noise) in blocks of neighbours in time (``block_indices``: a layout's
orders of one cell are sent back to back and share the machine's moment). The layout
resamples are shared by all schedulers, so a reduction versus the baseline is computed
pairwise on the same replicate.

``estimate_group`` is the same estimator and bootstrap over a group of cells (every item
at one size, say): the mean over the cells of each cell's estimate and of each cell's
reduction, with one resample of a scheduler's units shared by all the group's cells,
as all of them were measured on the same layouts.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = ["Estimate", "block_indices", "block_length", "estimate_cell", "estimate_group"]

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
    layouts, means, boot_means = _layout_means(values, rng, resamples)
    index = {lid: k for k, lid in enumerate(layouts)}

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


def estimate_group(
    cells: Sequence[Mapping[str, Sequence[float]]],
    units: Mapping[str, Sequence[str]],
    *,
    baseline: str,
    resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> list[Estimate]:
    """Over a group of cells, each as ``estimate_cell`` takes it (layout id -> raw samples).

    ``mean`` is the mean over the cells of each cell's estimate, ``reduction`` the mean
    over the cells of each cell's reduction vs the baseline: every cell (an item at a
    size, say) weighs the same, as in the headline's mean over items. A scheduler's
    cells without data are left out of its mean, and cells where it or the baseline has
    none out of its reduction. ``units`` is the largest number of the scheduler's units
    with data in one cell; ``coverage`` the mean over cells of the share that has data.

    Each bootstrap resample draws the scheduler's units once for the whole group (the
    same multinomial draw as ``estimate_cell``, over units instead of layouts, which is
    the same distribution) and each layout's samples per cell; every cell's reduction is
    computed pairwise inside the resample, then averaged over the cells.
    """
    rng = np.random.default_rng(seed)
    boots = [_layout_means(cell, rng, resamples) for cell in cells]
    cell_points: dict[str, FloatArray] = {}  # scheduler -> (C,)
    cell_reps: dict[str, FloatArray] = {}  # scheduler -> (C, B)
    counts: dict[str, tuple[int, float]] = {}
    for scheduler, unit_layouts in units.items():
        n = len(unit_layouts)
        draws = (rng.multinomial(n, np.full(n, 1.0 / n), size=resamples) if n
                 else np.zeros((resamples, 0), dtype=np.int64))  # (B, n)
        pts = np.full(len(cells), np.nan)
        reps = np.full((len(cells), resamples), np.nan)
        with_data, shares = 0, []
        for c, (layouts, means, boot_means) in enumerate(boots):
            index = {lid: k for k, lid in enumerate(layouts)}
            idx = np.array([index.get(u, -1) for u in unit_layouts], dtype=int)
            has = idx >= 0
            shares.append(float(has.mean()) if n else 0.0)
            with_data = max(with_data, int(has.sum()))
            if not has.any():
                continue
            pts[c] = float(means[idx[has]].mean())
            drawn = draws[:, has]  # (B, h): how often each unit with data was drawn
            total = drawn.sum(axis=1).astype(float)
            with np.errstate(divide="ignore", invalid="ignore"):
                reps[c] = np.einsum("bh,hb->b", drawn, boot_means[idx[has]]) / total
            reps[c][total == 0] = np.nan
        cell_points[scheduler], cell_reps[scheduler] = pts, reps
        counts[scheduler] = (with_data, float(np.mean(shares)) if shares else 0.0)

    alpha = (1.0 - confidence) / 2.0
    base_pts, base_reps = cell_points.get(baseline), cell_reps.get(baseline)
    out = []
    for scheduler in units:
        pts, reps = cell_points[scheduler], cell_reps[scheduler]
        mean = float(np.mean(pts[np.isfinite(pts)])) if np.isfinite(pts).any() else np.nan
        low, high = _percentiles(_mean_over_cells(reps), alpha)
        if scheduler == baseline or base_pts is None or base_reps is None:
            red, red_low, red_high = 0.0, 0.0, 0.0
        else:
            with np.errstate(divide="ignore", invalid="ignore"):
                cell_red = 1.0 - pts / base_pts
                rep_red = 1.0 - reps / base_reps
            both = np.isfinite(cell_red)
            red = float(np.mean(cell_red[both])) if both.any() else float("nan")
            red_low, red_high = _percentiles(_mean_over_cells(rep_red[both]), alpha)
        n, coverage = counts[scheduler]
        out.append(Estimate(scheduler, mean, low, high, red, red_low, red_high, n, coverage))
    return out


def _mean_over_cells(reps: FloatArray) -> FloatArray:
    """(C, B) -> (B,): each resample's mean over the cells it has a value for."""
    if reps.size == 0:
        return np.full(reps.shape[1] if reps.ndim == 2 else 0, np.nan)
    finite = np.isfinite(reps)
    with np.errstate(divide="ignore", invalid="ignore"):
        out: FloatArray = np.where(finite, reps, 0.0).sum(axis=0) / finite.sum(axis=0)
    return out


def _layout_means(
    values: Mapping[str, Sequence[float]], rng: np.random.Generator, resamples: int,
) -> tuple[list[str], FloatArray, FloatArray]:
    """The layouts with data, their means and (K, B) bootstrap means of their samples."""
    layouts = [lid for lid, v in values.items() if len(v) > 0]
    means = np.array([float(np.mean(values[lid])) for lid in layouts])
    boot_means = np.empty((len(layouts), resamples))
    for k, lid in enumerate(layouts):
        x = np.asarray(values[lid], dtype=float)
        boot_means[k] = x[block_indices(len(x), rng, resamples)].mean(axis=1)
    return layouts, means, boot_means


def block_length(n: int) -> int:
    """Orders per block for ``n`` consecutive orders: about n^(1/3), the usual rate for
    the moving-block bootstrap of a mean (1 for up to 3 orders, 2 for 4-15, 3 for 16-42)."""
    return max(1, round(math.pow(n, 1 / 3)))


def block_indices(n: int, rng: np.random.Generator, resamples: int) -> npt.NDArray[np.int64]:
    """(resamples, n) indices of a moving-block bootstrap of ``n`` samples in time order.

    A layout's orders of one cell are sent one after another, so neighbours share the
    machine's moment (a busy second slows several in a row). Resampling them one by one
    would treat them as independent and understate the layout's noise; drawing runs of
    ``block_length(n)`` neighbours keeps that dependence. Blocks never wrap around.
    """
    b = block_length(n)
    if b == 1:
        return rng.integers(0, n, size=(resamples, n))
    blocks = -(-n // b)
    starts = rng.integers(0, n - b + 1, size=(resamples, blocks))
    idx = (starts[:, :, None] + np.arange(b)).reshape(resamples, blocks * b)
    return idx[:, :n]


def _percentiles(x: FloatArray, alpha: float) -> tuple[float, float]:
    x = x[np.isfinite(x)]
    if len(x) == 0:
        return float("nan"), float("nan")
    lo, hi = np.quantile(x, [alpha, 1.0 - alpha])
    return float(lo), float(hi)
