"""The figures, as PNG and SVG: Fig. 4 of the paper and the plots that explain it."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure

__all__ = [
    "layout_frequency_plot",
    "response_by_item_plot",
    "response_vs_load_plot",
    "response_vs_size_plot",
    "save",
    "traffic_heatmap",
]


def save(fig: Figure, out: Path, name: str) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    for ext in ("png", "svg"):
        fig.savefig(out / f"{name}.{ext}", dpi=150, bbox_inches="tight")
    plt.close(fig)
    return out / f"{name}.png"


def response_by_item_plot(rt: pd.DataFrame, size: int) -> Figure:
    """Mean response time per item and scheduler at one size, with CI bars (paper Fig. 4)."""
    sns.set_theme(style="whitegrid", context="paper")
    data = rt[rt["size"] == size]
    protocols = sorted(data["protocol"].unique())
    schedulers = list(dict.fromkeys(data["scheduler"]))
    items = list(dict.fromkeys(data["item"]))
    palette = sns.color_palette("colorblind", len(schedulers))
    fig, axes = plt.subplots(1, len(protocols), figsize=(1.2 + 0.9 * len(items) * len(protocols),
                             3.6), squeeze=False, sharey=True)
    width = 0.8 / max(len(schedulers), 1)
    for ax, protocol in zip(axes[0], protocols, strict=True):
        sub = data[data["protocol"] == protocol]
        for j, scheduler in enumerate(schedulers):
            s = sub[sub["scheduler"] == scheduler].set_index("item").reindex(items)
            x = np.arange(len(items)) + (j - (len(schedulers) - 1) / 2) * width
            err = np.vstack([s["mean"] - s["ci_low"], s["ci_high"] - s["mean"]]).clip(min=0)
            ax.bar(x, s["mean"], width, yerr=err, capsize=2, label=scheduler, color=palette[j])
        ax.set_xticks(np.arange(len(items)), items, rotation=30)
        ax.set_title(f"{protocol}, {_size_label(size)} per unit")
        ax.set_ylabel("mean response time (ms)")
    axes[0][0].legend(title="scheduler", fontsize="small")
    return fig


def response_vs_size_plot(rt: pd.DataFrame) -> Figure:
    """Mean response time against message size (log x), one panel per item."""
    sns.set_theme(style="whitegrid", context="paper")
    items = list(dict.fromkeys(rt["item"]))
    cols = min(4, len(items))
    rows = -(-len(items) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.6 * rows), squeeze=False)
    schedulers = list(dict.fromkeys(rt["scheduler"]))
    palette = dict(zip(schedulers, sns.color_palette("colorblind", len(schedulers)), strict=True))
    styles = {"http": "-", "grpc": "--"}
    for ax, item in zip(axes.flat, items, strict=False):
        sub = rt[rt["item"] == item]
        for (scheduler, protocol), g in sub.groupby(["scheduler", "protocol"], sort=False):
            g = g.sort_values("size")
            ax.plot(g["size"], g["mean"], styles.get(str(protocol), ":"), marker="o",
                    ms=3, color=palette[str(scheduler)], label=f"{scheduler} ({protocol})")
            ax.fill_between(g["size"], g["ci_low"], g["ci_high"], alpha=0.2,
                            color=palette[str(scheduler)])
        ax.set_xscale("log", base=2)
        ax.set_title(item)
        ax.set_xlabel("bytes per unit")
        ax.set_ylabel("ms")
    for ax in list(axes.flat)[len(items):]:
        ax.set_visible(False)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", ncol=min(4, len(labels)),
               bbox_to_anchor=(0.5, 1.04), fontsize="small")
    fig.tight_layout()
    return fig


def response_vs_load_plot(rl: pd.DataFrame) -> Figure:
    """Mean response time against offered background load, one line per scheduler with
    its CI band, one panel per protocol: where packing starts to hurt."""
    sns.set_theme(style="whitegrid", context="paper")
    protocols = sorted(rl["protocol"].unique())
    schedulers = list(dict.fromkeys(rl["scheduler"]))
    palette = dict(zip(schedulers, sns.color_palette("colorblind", len(schedulers)), strict=True))
    fig, axes = plt.subplots(1, len(protocols), figsize=(4.2 * len(protocols), 3.4),
                             squeeze=False, sharey=True)
    for ax, protocol in zip(axes[0], protocols, strict=True):
        sub = rl[rl["protocol"] == protocol]
        for scheduler in schedulers:
            g = sub[sub["scheduler"] == scheduler].sort_values("load_rps")
            ax.plot(g["load_rps"], g["mean"], marker="o", ms=4, color=palette[scheduler],
                    label=scheduler)
            ax.fill_between(g["load_rps"], g["ci_low"], g["ci_high"], alpha=0.2,
                            color=palette[scheduler])
        ax.set_title(f"{protocol}: all items and sizes")
        ax.set_xlabel("offered background load (orders/s)")
        ax.set_ylabel("mean response time (ms)")
    axes[0][0].legend(title="scheduler", fontsize="small")
    fig.tight_layout()
    return fig


def layout_frequency_plot(placements: pd.DataFrame, top: int = 20) -> Figure:
    """How often each scheduler produced its most frequent layouts (share of redeployments)."""
    sns.set_theme(style="whitegrid", context="paper")
    schedulers = list(dict.fromkeys(placements["scheduler"]))
    fig, axes = plt.subplots(1, len(schedulers), figsize=(3.4 * len(schedulers), 3.0),
                             squeeze=False, sharey=True)
    for ax, scheduler in zip(axes[0], schedulers, strict=True):
        freq = placements.loc[placements["scheduler"] == scheduler, "layout_id"].value_counts(
            normalize=True
        )
        shown = freq.head(top)
        ax.bar(np.arange(1, len(shown) + 1), 100 * shown.to_numpy(),
               color=sns.color_palette("colorblind")[0])
        ax.set_title(f"{scheduler}: {len(freq)} distinct layouts")
        ax.set_xlabel(f"layout rank (top {len(shown)})")
        ax.set_ylabel("% of redeployments")
    return fig


def traffic_heatmap(traffic: pd.DataFrame) -> Figure:
    """Bytes/s between workloads during the warm-up: what NetMARKS scheduled with."""
    sns.set_theme(style="white", context="paper")
    cols = list(traffic.columns)
    src, dst, val = cols[0], cols[1], cols[2]
    matrix = traffic.pivot_table(index=src, columns=dst, values=val, aggfunc="sum", fill_value=0)
    names = sorted(set(matrix.index) | set(matrix.columns))
    matrix = matrix.reindex(index=names, columns=names, fill_value=0) / 1e3
    fig, ax = plt.subplots(figsize=(0.45 * len(names) + 2, 0.4 * len(names) + 1.5))
    sns.heatmap(matrix, ax=ax, cmap="rocket_r", cbar_kws={"label": "kB/s"}, square=True)
    ax.set_xlabel("destination workload")
    ax.set_ylabel("source workload")
    return fig


def _size_label(size: int) -> str:
    for unit, factor in (("MiB", 2**20), ("KiB", 2**10)):
        if size >= factor and size % factor == 0:
            return f"{size // factor} {unit}"
    return f"{size} B"
