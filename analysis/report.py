"""``report.md`` plus every table and figure, rebuilt from a results directory alone."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from analysis import plots, render, scenario, tables
from analysis.budget import budget_section
from analysis.paper import PAPER
from analysis.report_detail import detail
from results.config import ExperimentConfig, ItemsOrigin
from results.manifest import Manifest

__all__ = ["HEADLINE_TITLES", "PAPER", "Report", "build_report", "headline"]

@dataclass
class Report:
    path: Path
    headline: pd.DataFrame
    figures: list[Path]


def build_report(root: Path, *, figures: bool = True) -> Report:
    """Write tables/, figures/ (unless ``figures`` is False: they are the slow part)
    and report.md into ``root``. A scenario run without layout measurements gets the
    scenario's report alone (no headline); one with both gets its scenario section
    appended."""
    if scenario.is_scenario_only(Path(root)):
        only = scenario.build_scenario_report(Path(root), figures=figures)
        return Report(path=only.path, headline=pd.DataFrame(), figures=only.figures)
    full = tables.load_run(Path(root))
    if full.samples.empty:
        raise ValueError(f"{root}: no measurements yet; nothing to report (resume the run)")
    # With --load, the paper's tables are at the lowest load; the load tables span all.
    run = full.at_load(min(full.loads)) if full.loads else full
    out_t, out_f = run.root / "tables", run.root / "figures"
    base = run.baseline

    rt = tables.response_time_table(run)
    tr = tables.transfers_table(run)
    by = tables.bytes_table(run)
    lay = tables.layouts_table(run)
    sched = tables.scheduling_time_table(run)
    head = headline(run.schedulers, rt, tr, by, lay)

    md: dict[str, str] = {}
    md["rt"] = render.write_table(
        rt, render.pretty(rt, ["item", "size", "protocol"], base, unit=" (ms)"), out_t,
        "response_time", "Mean response time (ms) [95 % CI] and reduction vs the baseline (%).",
    )
    md["tr"] = render.write_table(
        tr, render.pretty(tr, ["item"], base, unit=" (%)"), out_t, "inter_node_transfers",
        "Share of transfers between pods that crossed nodes (%) [95 % CI], per item.",
    )
    md["by"] = render.write_table(
        by, render.pretty(by, ["protocol"], base, digits=2, unit=" (MiB)"), out_t,
        "inter_node_bytes",
        "Inter-node bytes per measured layout (MiB, mesh telemetry) and reduction (%).",
    )
    md["lay"] = render.write_table(lay, lay, out_t, "layouts", "Distinct layouts per scheduler.")
    md["sched"] = render.write_table(sched, sched, out_t, "scheduling_time",
                                     "Scheduling time per redeployment.")
    md["head"] = render.write_table(head, _pretty_headline(head), out_t, "headline",
                                    "Headline per scheduler.")
    more = detail(run, rt, by, lay, out_t)
    md["budget"] = budget_section(run, out_t)
    md["paper"], md["detail"] = more.beside_paper, more.section

    load_md = _load_tables(full, out_t) if full.loads else None
    largest = int(rt["size"].max())
    paths = _figures(run, rt, largest, out_f) if figures else []
    if figures and load_md is not None and not load_md[0].empty:
        paths.append(plots.save(plots.response_vs_load_plot(load_md[0]), out_f,
                                "response_time_vs_load"))

    at_largest = rt[rt["size"] == largest]
    md["rt_largest"] = render.markdown(
        render.pretty(at_largest, ["item", "protocol"], base, unit=" (ms)")
    )
    md["load"] = "" if load_md is None else _load_section(full, load_md[1])
    text = _report_text(full, head, md, paths, largest)
    if scenario.has_scenario(run.root):
        section = scenario.scenario_section(run.root, figures=figures)
        text += "\n" + section.markdown
        paths += section.figures
    path = run.root / "report.md"
    path.write_text(text)
    return Report(path=path, headline=head, figures=paths)


def _load_tables(run: tables.RunData, out: Path) -> tuple[pd.DataFrame, str]:
    """The response-time-vs-load and background-load tables; (the first, their text)."""
    rl = tables.response_time_vs_load_table(run)
    bg = tables.background_load_table(run)
    text = render.write_table(
        rl, render.pretty(rl, ["protocol", "load_rps"], run.baseline, unit=" (ms)"), out,
        "response_time_vs_load",
        "Mean response time (ms) [95 % CI] over all items and sizes against the offered "
        "background load (orders/s), and reduction vs the baseline (%).",
    )
    text += "\n" + render.write_table(
        bg, bg, out, "background_load",
        "The background load per offered rate: achieved rate, its own latencies, failures.")
    return rl, text


def _load_section(run: tables.RunData, text: str) -> str:
    lowest = min(run.loads)
    bytes_note = ("which carry no background traffic" if lowest == 0 else
                  "which include the background load's traffic (the mesh counters cannot "
                  "tell its orders from the measured ones)")
    return f"""## Response time against background load

{text}
The measured orders are the sweep above, sent one at a time while an open-loop
background load of the same items and sizes (Poisson, even weights) runs at the offered
rate. `achieved_rps` is the rate of its successful answers (each measured order's row
has it as `load_achieved_rps`), to be read against `scheduled_rps`: over a few seconds
a Poisson schedule offers about 1/sqrt(n) more or fewer orders than its rate. A large
`max_launch_lag_ms` means the load's driver (in the harness's process, on the same
cores) fell behind, not the services. Every other table of this report is at the
lowest offered load ({lowest:g} orders/s); its inter-node bytes come from those
chunks, {bytes_note}. Figure: `figures/response_time_vs_load`.

"""


def _figures(run: tables.RunData, rt: pd.DataFrame, largest: int, out: Path) -> list[Path]:
    paths = [
        plots.save(plots.response_by_item_plot(rt, largest), out, "response_time_by_item"),
        plots.save(plots.response_vs_size_plot(rt), out, "response_time_vs_size"),
        plots.save(plots.layout_frequency_plot(run.placements), out, "layout_frequency"),
    ]
    if not run.traffic.empty:
        paths.append(plots.save(plots.traffic_heatmap(run.traffic), out, "traffic_heatmap"))
    return paths


def headline(
    schedulers: list[str], rt: pd.DataFrame, tr: pd.DataFrame, by: pd.DataFrame,
    lay: pd.DataFrame,
) -> pd.DataFrame:
    """One row per scheduler: the numbers the paper quotes, measured here."""
    largest = rt["size"].max()
    rows = []
    for s in schedulers:
        r = rt[(rt["scheduler"] == s) & (rt["size"] == largest)]
        t = tr[tr["scheduler"] == s] if not tr.empty else tr
        b = by[by["scheduler"] == s] if not by.empty else by
        lay_s = lay[lay["scheduler"] == s]
        rows.append(
            {
                "scheduler": s,
                "mean_rt_largest_ms": _mean(r, "mean"),
                "rt_reduction_mean_pct": _mean(r, "reduction_pct"),
                "rt_reduction_max_pct": _max(r, "reduction_pct"),
                "inter_node_transfers_pct": _mean(t, "mean"),
                "inter_node_mib_per_layout": _mean(b, "mean"),
                "inter_node_bytes_reduction_pct": _mean(b, "reduction_pct"),
                "distinct_layouts": int(lay_s["distinct_layouts"].iloc[0]) if len(lay_s) else 0,
            }
        )
    return pd.DataFrame(rows)


HEADLINE_TITLES = {
    "scheduler": "scheduler",
    "mean_rt_largest_ms": "mean response time at the largest size (ms)",
    "rt_reduction_mean_pct": "reduction, mean over items (%)",
    "rt_reduction_max_pct": "reduction, best item (%)",
    "inter_node_transfers_pct": "inter-node transfers (%)",
    "inter_node_mib_per_layout": "inter-node MiB per layout",
    "inter_node_bytes_reduction_pct": "inter-node bytes saved (%)",
    "distinct_layouts": "distinct layouts",
}


def _pretty_headline(head: pd.DataFrame) -> pd.DataFrame:
    shown = head.copy()
    for col in shown.columns:
        if col not in ("scheduler", "distinct_layouts"):
            shown[col] = [_fmt(float(v), "") for v in shown[col]]
    return shown.rename(columns=HEADLINE_TITLES)


def _mean(frame: pd.DataFrame, col: str) -> float:
    return float(frame[col].mean()) if len(frame) else math.nan


def _max(frame: pd.DataFrame, col: str) -> float:
    return float(frame[col].max()) if len(frame) else math.nan


def _fmt(x: float, unit: str = " %") -> str:
    return "n/a" if not math.isfinite(x) else f"{x:.1f}{unit}"


def _status_text(run: tables.RunData) -> str:
    """Completeness and failures: what a reader must know before trusting the numbers."""
    planned = run.plan.chunks(run.config.protocols) * max(1, len(run.loads))
    keys = ["layout_id", "protocol"]
    if run.loads and "load_rps" in run.samples:
        keys.append("load_rps")
    done = run.samples.groupby(keys).ngroups
    kind = "(layout, protocol, load)" if len(keys) == 3 else "(layout, protocol)"
    lines = [f"- measured {done} of {planned} planned {kind} chunks"
             + ("" if done >= planned else
                " — INCOMPLETE: estimates use the measured layouts only (see coverage in "
                "`tables/response_time.csv`); continue with `harness run --resume`")]
    failed = run.samples[~run.samples["ok"].astype(bool)]
    lines.append(f"- {len(run.samples)} orders recorded, {len(failed)} failed "
                 "(failed orders are excluded from the means)")
    for error, count in failed["error"].value_counts().head(3).items():
        lines.append(f"  - {count} x {error}")
    return "\n".join(lines)


def _items_origin_text(origin: ItemsOrigin | None) -> str:
    """How the items were chosen (manifest ``items_origin``)."""
    if origin is None:
        return ""  # runs from before the record
    if origin.how == "paper":
        return " (the paper's items)"
    if origin.how != "derived":
        return ""
    picks = "; ".join(f"{p.item} ({'; '.join(p.why)})" for p in origin.picks)
    return (f"\n  items derived from economy {origin.economy!r} (its default: the paper's "
            f"items are Settlers items): {picks}")


def _loads(values: list[float] | None) -> str:
    return ", ".join(f"{v:g}" for v in values) if values else "not recorded"


def _scheduler_traffic_text(manifest: Manifest) -> str:
    """Per scheduler, the traffic it placed with (manifest ``scheduler_traffic``)."""
    used = manifest.scheduler_traffic
    if not used:
        return ""  # runs from before the record
    lines = "".join(f"\n  - {s}: {how}" for s, how in used.items())
    return f"\n- traffic each scheduler placed with (source and interval):{lines}"


def _creation_order_text(run: tables.RunData) -> str:
    """The order the redeployments created their Deployments in: the mode, and what
    ``placements.parquet`` recorded (column ``creation_order``)."""
    c = run.config
    text = f"creation order of the Deployments: `{c.order}`, {c.creation_order().describe()}"
    if run.manifest.backend.name == "kubernetes":
        text += " (sent as parallel scale-ups: the pods follow it only roughly)"
    placements = run.placements
    if "creation_order" not in placements:
        return text + " (before it was recorded per placement)"
    orders = placements["creation_order"].astype(str)
    distinct = orders.nunique()
    if distinct == 1:
        return text + f":\n  {orders.iloc[0].replace(',', ', ')}"
    return (text + f"; {distinct} distinct orders over {len(placements)} placements "
            "(`placements.parquet`, column `creation_order`)")


def _replicate_text(manifest: Manifest) -> str:
    """A replicate of a replicated run (--replicates) says so, and where the whole is."""
    if manifest.replicate is None:
        return ""
    return (f"\n- replicate {manifest.replicate} of a replicated run (seed "
            f"{manifest.config.seed}); the run's combined report: `../../report.md`")


def _scheduler_options_text(config: ExperimentConfig) -> str:
    """The models' options other than their defaults (``scheduler_options``), if any."""
    if not config.scheduler_options:
        return ""
    given = "; ".join(f"{p}: " + ", ".join(f"{k}={v}" for k, v in o.items())
                      for p, o in config.scheduler_options.items())
    return f"; options other than the defaults: {given}"


def _link_profile_text(manifest: Manifest) -> str:
    """The profile the link preset stood for, in the manifest's words (emulated links)."""
    return "" if manifest.link_profile is None else f"({manifest.link_profile})"


def _nodes_text(manifest: Manifest) -> str:
    """The nodes and their links: identical nodes behind one link, or a topology."""
    c = manifest.config
    if manifest.backend.name == "kubernetes":
        # The cluster's own nodes and network: the run's node count and link preset
        # configure only the emulated clusters.
        return "the cluster's own nodes and network"
    if c.topology is None:
        return (f"{c.nodes} identical nodes, link preset `{c.link}`\n"
                f"  {_link_profile_text(manifest)}")
    return f"topology {c.topology.describe()}"


def _capacity_text(manifest: Manifest, config: ExperimentConfig) -> str:
    """First thing a reader sees when node capacity was asked for: enforced or not."""
    if config.node_cpu is None:
        return ""
    cap = manifest.capacity
    if cap is None:
        text = (f"node capacity {config.node_cpu} CPU per node was set for the scheduler "
                "models; the data plane recorded no enforcement")
    else:
        text = str(cap.get("summary") or cap)
    mark = "" if cap is not None and cap.get("enforced") else "**not enforced**: "
    return f"\n> **Node capacity**: {mark}{text}\n"


def _sampling_text(manifest: Manifest, config: ExperimentConfig) -> str:
    """How many layouts and orders: as configured, or as the time budget decided."""
    a = manifest.allocation
    if config.time_budget is None:
        return (f"layout budget {config.layout_budget};\n  {config.repetitions} orders per "
                "item x size per layout")
    if a is None:
        return f"time budget {config.time_budget:.0f} s (no allocation recorded yet)"
    return (f"time budget {a.budget_s:.0f} s of measurement: a pilot of {a.pilot_layouts} "
            f"layouts x {a.pilot_repetitions} orders per item x size,\n  then "
            f"{a.repetitions} orders on each further layout, {a.layouts} layouts planned "
            "(see Measurement budget)")


def _or(value: object, missing: str) -> object:
    return missing if value is None else value


def _report_text(run: tables.RunData, head: pd.DataFrame, md: dict[str, str],
                 figures: list[Path], largest: int) -> str:
    m, c = run.manifest, run.config
    base = run.baseline
    machine = m.machine
    est = {s: p.estimator for s, p in run.plan.schedulers.items()}
    status = _status_text(run)
    load_line = "" if not c.load else (
        f"\n- background load during measurement: {', '.join(f'{x:g}' for x in c.load)} "
        "orders/s, open loop, mixed over the items and sizes; "
        + ("also run (at the largest) during the warm-up, so the traffic matrix includes "
           "it" if c.load_in_traffic else "not run during the warm-up, so the traffic "
           "matrix does not include it"))
    fig_lines = "\n".join(
        f"![{p.stem}](figures/{p.name})  \n`figures/{p.stem}.svg`" for p in figures
    )
    census = [s for s, e in est.items() if e == "census"]
    pps = [s for s, e in est.items() if e == "pps"]
    estimator = []
    if census:
        estimator.append(
            f"- {', '.join(census)}: every distinct layout measured (census); the estimate "
            "is the layout-frequency-weighted mean over all redeployments."
        )
    if pps:
        estimator.append(
            f"- {', '.join(pps)}: more distinct layouts than the budget, so layouts were drawn "
            "with probability proportional to their frequency, with replacement (uniform "
            "draws of redeployments); the estimate is the Hansen-Hurwitz mean over draws, "
            "unbiased for the layout-frequency-weighted mean."
        )
    return f"""# NetMARKS testbed: {' vs '.join(run.schedulers)}
{_capacity_text(m, c)}
## What was run
{_replicate_text(m)}
- schedulers: {', '.join(run.schedulers)} (baseline: {base}){_scheduler_options_text(c)}
- backend: {m.backend.name} — placements by {m.backend.places},
  measured on {m.backend.measures};
  {_nodes_text(m)}
- economy: {m.economy_name or c.economy or 'settlers2'}; items ordered:
  {', '.join(m.items)}{_items_origin_text(m.items_origin)}
- sizes (bytes per unit): {', '.join(str(s) for s in c.sizes)}; protocols:
  {', '.join(c.protocols)}; {c.count} unit(s) per order
- {c.deployments} redeployments per scheduler; {_sampling_text(m, c)}; seed {c.seed}
- {_creation_order_text(run)}
- warm-up: {c.warmup_orders} orders per item x size on a random layout;
  traffic matrix from {m.traffic_source or 'n/a'}{_scheduler_traffic_text(m)}{load_line}

## Where

- machine: {machine.cpu}, {_or(machine.cores, '?')} cores,
  {_or(machine.memory_gib, '?')} GiB, {machine.platform}
- started {m.started_at}, finished {m.finished_at or '(not finished)'}
- load average (1, 5, 15 min): {_loads(machine.load_avg_at_start)} at the start,
  {_loads(m.load_avg_at_finish)} at the finish (this machine's cores: {_or(machine.cores, '?')})
- versions: {', '.join(f'{k} {v}' for k, v in m.versions.items())}

## How

1. Warm-up orders through the mesh (random layout); NetMARKS reads the traffic
   matrix from it ({m.traffic_source or 'n/a'}).
2. {c.deployments} redeployments per scheduler, every placement recorded
   (`placements.parquet`), reduced to canonical layouts (identical nodes are
   interchangeable, `layouts.parquet`).
3. Each measured layout: the cluster is relaid out and every item x size x protocol is
   ordered {c.repetitions} times; raw samples in `samples/`, mesh byte counters per
   layout in `telemetry/`.
4. Estimator (units in `units.parquet`):
{chr(10).join(estimator)}
5. Intervals: {c.confidence * 100:.0f} % percentile bootstrap
   ({c.bootstrap} resamples) over units and over each layout's raw samples;
   reductions are computed pairwise within each resample.
6. Inter-node transfers are counted from each order's trace with the layout's placement;
   inter-node bytes come from the mesh's telemetry (byte counters per source/destination
   workload and node pair, differenced over each layout's measurement).

## Status

{status}

## Headline

{md['head']}
## This run beside the paper

{md['paper']}
UP TO rows hold the paper's best case against this run's best cell (named, with that
cell's interval; the best of many noisy cells is biased upwards, so the MEAN row over
every cell stands beside it); MEAN rows compare means over the matching cells; "not
measured" says what this run lacks. The paper's figures are NetMARKS vs the default
scheduler; the other schedulers' columns have no paper figure of their own. The paper's
testbed was a real cluster with Istio; this run's nodes are emulated on one machine
that all pods share, and its links are a userspace model (see the cluster docs). The
paper's full text was not available to us: its numbers come from the abstract (37 %,
50 %) and secondary sources (the rest).

{md['detail']}
{md['budget']}
## Response time at {largest} B per unit

{md['rt_largest']}
All sizes: `tables/response_time.md` (CSV, LaTeX beside it).

{md['load']}## Inter-node transfers

{md['tr']}
## Inter-node bytes

{md['by']}
## Layouts

{md['lay']}
## Scheduling time

{md['sched']}
## Figures

{fig_lines}
"""
