"""The report of a scenario run (``harness run --scenario``): phases, migrations,
recovery and inter-node bytes, from ``<root>/scenario/`` alone.

Files written into the results directory:

- ``tables/scenario_phases``, ``scenario_migrations``, ``scenario_recovery``,
  ``scenario_bytes``, ``scenario_moves`` (``.csv`` raw, ``.md`` and ``.tex`` shown);
- ``figures/scenario-timeline.png`` / ``.svg``;
- ``report.md``: the scenario section alone (:func:`write_scenario_report`, a results
  directory with no layout measurements), or appended to the layout report
  (:func:`analysis.report.build_report`, which calls :func:`scenario_section`).

The computations are in :mod:`analysis.scenario_metrics`, the figure in
:mod:`analysis.scenario_plots`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from analysis import plots, render
from analysis import scenario_metrics as sm
from analysis.scenario_metrics import PhaseSpan
from analysis.scenario_plots import timeline_plot
from results import scenario as store
from results.scenario import STATIC_SUFFIX, Event, Scenario

__all__ = [
    "BASELINE",
    "TABLES",
    "ScenarioData",
    "ScenarioReport",
    "ScenarioSection",
    "build_scenario_report",
    "has_scenario",
    "is_scenario_only",
    "load_scenario_data",
    "scenario_section",
    "write_scenario_report",
]

# The scheduler that never moves a pod, shown first and compared against.
BASELINE = "kube_default"

# The store's tables and their columns (docs/scenarios.md); an absent table is empty
# with these columns.
TABLES: dict[str, list[str]] = {
    "orders": ["scheduler", "phase", "t_s", "item", "size", "latency_ms", "ok", "error"],
    "migrations": ["scheduler", "phase", "pod", "new_pod", "workload", "src_node",
                   "dst_node", "strategy", "reason", "decided_s", "ready_s", "done_s", "ok",
                   "error"],
    "events": ["scheduler", "phase", "t_s", "kind", "detail"],
    "traffic": ["scheduler", "phase", "start_s", "end_s", "inter_node_bytes",
                "intra_node_bytes", "bytes"],
    "placements": ["scheduler", "t_s", "pod", "node"],
}


@dataclass
class ScenarioData:
    scenario: Scenario  # as run (scenario/scenario.yaml)
    phases: list[PhaseSpan]
    tables: dict[str, pd.DataFrame]
    schedulers: list[str]  # those whose run finished, the baseline first

    @property
    def baseline(self) -> str | None:
        return BASELINE if BASELINE in self.schedulers else None


@dataclass
class ScenarioSection:
    markdown: str
    figures: list[Path]
    moves: pd.DataFrame  # per scheduler, as tables/scenario_moves.csv


@dataclass
class ScenarioReport:
    path: Path
    figures: list[Path]
    moves: pd.DataFrame


def has_scenario(root: Path) -> bool:
    return store.has_scenario(Path(root))


def is_scenario_only(root: Path) -> bool:
    """A scenario run's directory without layout measurements (no ``samples/`` parts):
    its report is the scenario's alone."""
    root = Path(root)
    return has_scenario(root) and not any((root / "samples").glob("*.parquet"))


def load_scenario_data(root: Path) -> ScenarioData:
    """The scenario as run and every finished scheduler's tables, concatenated
    (``results.scenario``; ScenarioError, a ValueError, when there is none)."""
    root = Path(root)
    scenario = store.read_scenario(root)
    read = store.read_scenario_tables(root)
    tables = {name: read[name] if name in read and not read[name].empty
              else pd.DataFrame(columns=cols) for name, cols in TABLES.items()}
    names = store.done_schedulers(root)
    schedulers = [BASELINE] * (BASELINE in names) + [n for n in names if n != BASELINE]
    phases = [PhaseSpan(*b) for b in scenario.boundaries()]
    return ScenarioData(scenario=scenario, phases=phases, tables=tables,
                        schedulers=schedulers)


def scenario_section(root: Path, *, figures: bool = True, level: int = 2) -> ScenarioSection:
    """Write the scenario's tables (and figure) into ``root``; return its report section,
    headed at Markdown ``level``."""
    root = Path(root)
    data = load_scenario_data(root)
    out_t, out_f = root / "tables", root / "figures"
    t = data.tables
    orders, events = t["orders"], t["events"]
    phases = sm.phase_table(orders, data.phases, data.schedulers)
    migs = sm.migrations_table(t["migrations"], orders)
    moves = sm.moves_summary(t["migrations"], orders, data.schedulers)
    recovery = sm.recovery_table(orders, events, data.phases, data.schedulers)
    by = sm.bytes_table(t["traffic"], data.phases, data.schedulers, data.baseline)
    md = {
        "phases": render.write_table(
            phases, _shown_phases(phases), out_t, "scenario_phases",
            "Orders per scheduler and phase: sent, failed, response time of the answered."),
        "moves": render.write_table(moves, _shown_moves(moves), out_t, "scenario_moves",
                                    "Pods moved and orders failed, per scheduler."),
        "migs": render.write_table(migs, _shown_migrations(migs), out_t,
                                   "scenario_migrations", "Every migration and its cost."),
        "recovery": render.write_table(recovery, _shown_recovery(recovery), out_t,
                                       "scenario_recovery",
                                       "Recovery after each phase boundary and event."),
        "bytes": render.write_table(by, _shown_bytes(by, data.baseline), out_t,
                                    "scenario_bytes", "Inter-node bytes per phase."),
    }
    paths = []
    if figures:
        fig = timeline_plot(orders, t["migrations"], events, data.phases, data.schedulers)
        paths.append(plots.save(fig, out_f, "scenario-timeline"))
    text = _section_text(data, moves, recovery, by, md, paths, "#" * level, phases)
    return ScenarioSection(markdown=text, figures=paths, moves=moves)


def build_scenario_report(root: Path, *, figures: bool = True) -> ScenarioReport:
    """report.md for a scenario run without layout measurements, with its tables and
    figure."""
    root = Path(root)
    section = scenario_section(root, figures=figures, level=2)
    path = root / "report.md"
    path.write_text(f"# Report: scenario run `{root.name}`\n\n{section.markdown}")
    return ScenarioReport(path=path, figures=section.figures, moves=section.moves)


def write_scenario_report(root: Path) -> Path:
    """Write report.md, tables and figure of a scenario-only results directory."""
    return build_scenario_report(root).path


# -- the text ------------------------------------------------------------------


def _section_text(data: ScenarioData, moves: pd.DataFrame, recovery: pd.DataFrame,
                  by: pd.DataFrame, md: dict[str, str], figures: list[Path], h: str,
                  phases: pd.DataFrame) -> str:
    sc = data.scenario
    every = f" The rebalancers ran every {sc.rebalance_interval_s:g} s"
    every += ("." if not sc.rebalancers else "; options other than the defaults: " + "; ".join(
        f"{p}: " + ", ".join(f"{k}={v}" for k, v in o.items())
        for p, o in sc.rebalancers.items()) + ".")
    about = f"{sc.description}\n\n" if sc.description else ""
    fig_lines = "\n".join(f"![{p.stem}](figures/{p.name})  \n`figures/{p.stem}.svg`"
                          for p in figures)
    return f"""{h} Scenario `{sc.name}`

{about}Schedulers: {', '.join(data.schedulers) or 'none finished'}; each deployed the
economy once, then ran the phases below under open-loop {sc.protocol} load.{every}

{_phases_text(data)}

{h}# What happened

{_happened_text(moves)}

{_recovery_text(recovery)}

{_bytes_text(by, data.baseline, phases)}

{_bought_text(phases, by)}

{h}# Orders per phase

{md['phases']}
{h}# Moves per scheduler

{md['moves']}
{h}# Migrations

{md['migs']}
"took" runs from the rebalancer's (or the drain's) decision until the old pod was gone;
the orders counted are those the scheduler sent meanwhile. "slowed": answered slower
than the p95 of that scheduler's orders in the {sm.SLOW_LOOKBACK_S:g} s before the
decision, so about 5 % of the orders sent during a move count as slowed by chance.
Concurrent moves' windows overlap: an order can count for each of them.

{h}# Recovery

{md['recovery']}
Recovery: the time from a phase boundary or event until the rolling median over the
last {sm.WINDOW_S:g} s (of the orders since it; failed orders count as infinitely slow)
is first back within {sm.TOLERANCE * 100:g} % of the phase's settled median (the median
of its last half), watched until the next event or the phase's end. The rolling median
lags a change by up to half its window, and noise alone can bring it into the band
early: read a recovery time against the timeline. "not recovered": never in the band
while watched, or the phase never settled (half or more of its last half's orders
failed, or the medians of its last two quarters differ by more than
{2 * sm.TOLERANCE * 100:g} % and a rank test says so at p < 0.01). Events within a
second of each other count as one.

{h}# Inter-node bytes per phase

{md['bytes']}
{h}# Timeline

{fig_lines or '_figures not drawn_'}
"""


def _phases_text(data: ScenarioData) -> str:
    lines = []
    for span, phase in zip(data.phases, data.scenario.phases, strict=True):
        o = phase.orders
        mix = (f"orders {', '.join(o.items)} at {', '.join(map(str, o.sizes))} B, "
               f"{o.rate:g} orders/s")
        evs = "; ".join(_event_text(e) for e in phase.events)
        lines.append(f"- `{span.name}`: {span.start_s:g} to {span.end_s:g} s, {mix}"
                     + (f"; events: {evs}" if evs else ""))
    return "Phases (seconds since the scenario started):\n\n" + "\n".join(lines)


def _event_text(e: Event) -> str:
    return f"{e.describe()} at +{e.at_s:g} s"


def _happened_text(moves: pd.DataFrame) -> str:
    lines = []
    for r in moves.to_dict("records"):
        n = int(r["moves"])
        base = " (the baseline)" if r["scheduler"] == BASELINE else ""
        text = f"- **{r['scheduler']}**{base} moved {n} pod{'s' * (n != 1)}"
        if n:
            text += (f" ({r['by_rebalance']} by its rebalancer, {r['by_drain']} off drained "
                     f"nodes; {r['strategies']})")
            failed_moves = n - int(r["moves_ok"])
            if failed_moves:
                text += f", {failed_moves} of the moves failed"
        failed, sent = int(r["failed"]), int(r["orders"])
        if failed:
            text += (f"; {failed} of its {sent} orders failed, {r['failed_during_moves']} "
                     f"of them while a move was under way (most common error: "
                     f"`{r['top_error']}`).")
        else:
            text += f"; none of its {sent} orders failed."
        lines.append(text)
    failing = [str(r["scheduler"]) for r in moves.to_dict("records") if int(r["failed"])]
    lines.append("- Failed orders: " + (", ".join(failing) if failing else "none")
                 + ".")
    return "\n".join(lines)


def _recovery_text(recovery: pd.DataFrame) -> str:
    if recovery.empty:
        return "No phase boundary or event to recover from."
    lines = ["Recovery after each phase boundary and event:", ""]
    for what, group in recovery.groupby("trigger", sort=False):
        parts = [f"{r['scheduler']} {_recovery_words(r)}" for r in group.to_dict("records")]
        lines.append(f"- {what} (at {group['t_s'].min():.1f} s): " + "; ".join(parts) + ".")
    return "\n".join(lines)


def _recovery_words(r: dict[str, Any]) -> str:
    if r["status"] == "recovered":
        return f"recovered after {float(r['recovery_s']):.1f} s"
    return f"{r['status']} ({r['note']})" if r["note"] else str(r["status"])


def _bytes_text(by: pd.DataFrame, baseline: str | None, phases: pd.DataFrame) -> str:
    if by.empty:
        return "No inter-node bytes were recorded."
    answered = {(r["scheduler"], r["phase"]): int(r["orders"]) - int(r["failed"])
                for r in phases.to_dict("records")}
    lines = ["Share of the pod-to-pod bytes that crossed nodes:", ""]
    for phase, group in by.groupby("phase", sort=False):
        parts = []
        for r in group.to_dict("records"):
            part = f"{r['scheduler']} {_pct(r['inter_node_share_pct'])}"
            mine, base = answered.get((r["scheduler"], phase)), answered.get((baseline, phase))
            if baseline is not None and r["scheduler"] != baseline and math.isfinite(
                    float(r["inter_node_saved_pct"])):
                if mine and base and abs(mine - base) <= 0.05 * base:
                    saved = float(r["inter_node_saved_pct"])
                    part += (f" ({_pct(abs(saved))} {'fewer' if saved >= 0 else 'more'} "
                             f"inter-node bytes than {baseline})")
                else:
                    # Fewer bytes can just mean fewer answered orders: say so, no saving.
                    part += (f" (answered {mine} orders to {baseline}'s {base}: "
                             "bytes not comparable)")
            parts.append(part)
        lines.append(f"- `{phase}`: " + "; ".join(parts) + ".")
    return "\n".join(lines)


def _bought_text(phases: pd.DataFrame, by: pd.DataFrame) -> str:
    """Each rebalancing policy beside its static twin (same day one, never moved)."""
    names = list(dict.fromkeys(phases["scheduler"])) if not phases.empty else []
    pairs = [(n, f"{n}{STATIC_SUFFIX}") for n in names if f"{n}{STATIC_SUFFIX}" in names]
    if not pairs:
        return ""
    share = {(r["scheduler"], r["phase"]): float(r["inter_node_share_pct"])
             for r in by.to_dict("records")} if not by.empty else {}
    lines = ["What the moves bought (each rebalancing policy beside its static twin: the "
             "same day-one layout and the same orders, never moved):", ""]
    for moving, static in pairs:
        for r in phases[phases["scheduler"] == moving].to_dict("records"):
            twin = phases[(phases["scheduler"] == static) & (phases["phase"] == r["phase"])]
            if twin.empty:
                continue
            t = twin.iloc[0]
            lines.append(
                f"- {moving} vs {static}, `{r['phase']}`: median {_num(r['p50_ms'])} vs "
                f"{_num(t['p50_ms'])} ms, failed {int(r['failed'])} vs {int(t['failed'])} of "
                f"{int(r['orders'])} vs {int(t['orders'])} orders, inter-node share "
                f"{_pct(share.get((moving, r['phase']), math.nan))} vs "
                f"{_pct(share.get((static, r['phase']), math.nan))}.")
    return "\n".join(lines)


# -- the tables as shown --------------------------------------------------------


def _shown_phases(t: pd.DataFrame) -> pd.DataFrame:
    if t.empty:
        return t
    return pd.DataFrame({
        "scheduler": t["scheduler"], "phase": t["phase"], "orders": t["orders"],
        "failed": t["failed"], "p50 (ms)": t["p50_ms"].map(_num),
        "p95 (ms)": t["p95_ms"].map(_num), "mean (ms)": t["mean_ms"].map(_num)})


def _shown_moves(t: pd.DataFrame) -> pd.DataFrame:
    if t.empty:
        return t
    return pd.DataFrame({
        "scheduler": t["scheduler"], "pods moved": t["moves"], "moves ok": t["moves_ok"],
        "rebalance": t["by_rebalance"], "drain": t["by_drain"], "strategy": t["strategies"],
        "orders": t["orders"], "failed": t["failed"],
        "failed during moves": t["failed_during_moves"]})


def _shown_migrations(t: pd.DataFrame) -> pd.DataFrame:
    if t.empty:
        return t
    return pd.DataFrame({
        "scheduler": t["scheduler"], "pod": t["pod"], "from": t["src_node"],
        "to": t["dst_node"], "strategy": t["strategy"], "reason": t["reason"],
        "decided (s)": t["decided_s"].map(_num), "took (s)": t["took_s"].map(_num),
        "orders during": t["orders_during"], "failed": t["failed_during"],
        "slowed": t["slowed_during"].map(lambda v: "n/a" if not math.isfinite(float(v))
                                         else f"{int(v)}"),
        "result": [("ok" if bool(ok) else f"failed: {err}")
                   for ok, err in zip(t["ok"], t["error"], strict=True)]})


def _shown_recovery(t: pd.DataFrame) -> pd.DataFrame:
    if t.empty:
        return t
    return pd.DataFrame({
        "scheduler": t["scheduler"], "at (s)": t["t_s"].map(_num), "trigger": t["trigger"],
        "settled median (ms)": t["settled_median_ms"].map(_num),
        "watched (s)": t["watched_s"].map(_num),
        "recovery": [_recovery_words(r) for r in t.to_dict("records")]})


def _shown_bytes(t: pd.DataFrame, baseline: str | None) -> pd.DataFrame:
    if t.empty:
        return t
    shown = pd.DataFrame({
        "scheduler": t["scheduler"], "phase": t["phase"],
        "inter-node MiB": (t["inter_node_bytes"] / 2**20).map(lambda v: f"{v:.2f}"),
        "all pod-to-pod MiB": (t["bytes"] / 2**20).map(lambda v: f"{v:.2f}"),
        "inter-node share": t["inter_node_share_pct"].map(_pct)})
    if baseline is not None:
        shown[f"saved vs {baseline}"] = t["inter_node_saved_pct"].map(_pct)
    return shown


def _num(v: object) -> str:
    x = float(v)  # type: ignore[arg-type]
    return "n/a" if not math.isfinite(x) else f"{x:.1f}"


def _pct(v: object) -> str:
    x = float(v)  # type: ignore[arg-type]
    return "n/a" if not math.isfinite(x) else f"{x:.1f} %"
