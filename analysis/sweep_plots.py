"""One figure per headline metric of a sweep: the metric against one factor's levels, a
colour per scheduler, a panel per combination of the other factors, each point's
interval as its error bar."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure

__all__ = ["sweep_metric_plot"]


def sweep_metric_plot(table: pd.DataFrame, metric: str, title: str,
                      factors: Sequence[str], levels: dict[str, list[str]]) -> Figure:
    """``table``: the sweep table's rows of ``metric`` (factor columns as labels, scheduler,
    mean, low, high); x is the first factor, panels are the others' combinations."""
    sns.set_theme(style="whitegrid", context="paper")
    x_factor, rest = factors[0], list(factors[1:])
    panels = [()] if not rest else list(dict.fromkeys(
        tuple(r) for r in table[rest].itertuples(index=False)))
    schedulers = list(dict.fromkeys(table["scheduler"]))
    palette = dict(zip(schedulers, sns.color_palette("colorblind", len(schedulers)),
                       strict=True))
    x_levels = levels[x_factor]
    fig, axes = plt.subplots(1, len(panels), figsize=(1.4 + 1.1 * len(x_levels) * len(panels)
                                                      + 1.2 * len(panels), 3.4),
                             squeeze=False, sharey=True)
    step = 0.6 / max(len(schedulers), 1)
    for ax, panel in zip(axes[0], panels, strict=True):
        sub = table
        for factor, value in zip(rest, panel, strict=True):
            sub = sub[sub[factor] == value]
        for j, scheduler in enumerate(schedulers):
            s = sub[sub["scheduler"] == scheduler].set_index(x_factor).reindex(x_levels)
            x = np.arange(len(x_levels)) + (j - (len(schedulers) - 1) / 2) * step
            mean, low, high = (s[c].to_numpy(dtype=float) for c in ("mean", "low", "high"))
            err = np.vstack([np.nan_to_num(mean - low), np.nan_to_num(high - mean)]).clip(min=0)
            ax.errorbar(x, mean, yerr=err, fmt="o-", ms=4, lw=1, capsize=3,
                        color=palette[scheduler], label=scheduler)
        ax.set_xticks(np.arange(len(x_levels)), x_levels)
        ax.set_xlim(-0.5, len(x_levels) - 0.5)
        ax.set_xlabel(x_factor)
        ax.set_title(", ".join(f"{f}={v}" for f, v in zip(rest, panel, strict=True))
                     or "all points")
    axes[0][0].set_ylabel(title)
    axes[0][0].legend(title="scheduler", fontsize="small")
    fig.tight_layout()
    return fig
