"""Scheduler estimates: exact for a census, coverage when layouts are missing, sane CIs."""

from __future__ import annotations

import math

import numpy as np
import pytest

from analysis.estimate import estimate_cell


def test_census_estimate_is_the_frequency_weighted_mean() -> None:
    values = {"A": [10.0, 10.0], "B": [20.0, 20.0]}
    units = {"base": ["A", "A", "B", "B"], "new": ["A", "A", "A", "B"]}
    est = {e.scheduler: e for e in estimate_cell(values, units, baseline="base", seed=1)}
    assert est["base"].mean == pytest.approx(15.0)
    assert est["new"].mean == pytest.approx(12.5)
    assert est["new"].reduction == pytest.approx(1 - 12.5 / 15)
    assert est["base"].reduction == 0.0
    assert est["new"].low <= 12.5 <= est["new"].high


def test_interval_covers_the_truth_under_noise() -> None:
    rng = np.random.default_rng(2)
    values = {"A": list(rng.normal(100, 5, 30)), "B": list(rng.normal(50, 5, 30))}
    units = {"base": ["A"] * 50 + ["B"] * 50}
    (est,) = estimate_cell(values, units, baseline="base", resamples=500, seed=3)
    assert est.low < 75 < est.high
    assert est.high - est.low < 30


def test_missing_layouts_lower_coverage_and_all_missing_is_nan() -> None:
    units = {"base": ["A", "Z"], "new": ["Z"]}
    est = {e.scheduler: e for e in estimate_cell({"A": [1.0]}, units, baseline="base")}
    assert est["base"].coverage == 0.5 and est["base"].mean == 1.0
    assert math.isnan(est["new"].mean) and est["new"].units == 0


def test_block_indices_are_runs_of_neighbours_that_never_wrap() -> None:
    from analysis.estimate import block_indices, block_length

    assert [block_length(n) for n in (1, 3, 4, 5, 15, 16, 42, 43)] == [1, 1, 2, 2, 2, 3, 3, 4]
    rng = np.random.default_rng(0)
    idx = block_indices(5, rng, 200)
    assert idx.shape == (200, 5) and idx.min() >= 0 and idx.max() <= 4
    # Blocks of two: positions 0-1 and 2-3 are neighbours in time.
    assert (idx[:, 1] == idx[:, 0] + 1).all() and (idx[:, 3] == idx[:, 2] + 1).all()
    assert (block_indices(3, rng, 50) < 3).all()  # one order per block up to 3 orders


def test_block_bootstrap_keeps_the_noise_of_neighbours_that_move_together() -> None:
    from analysis.estimate import block_indices

    # A layout whose orders were slow for a while: neighbours are alike. Resampled one
    # by one the mean looks steadier than it is; in blocks it keeps more of its spread.
    x = np.array([0.0, 0, 0, 0, 1, 1, 1, 1])
    rng = np.random.default_rng(1)
    blocked = x[block_indices(len(x), rng, 20_000)].mean(axis=1).var()
    single = x[rng.integers(0, len(x), size=(20_000, len(x)))].mean(axis=1).var()
    assert blocked > 1.3 * single
