"""The paper's tables, computed from a results directory (long format, one row per value).

Results are read through the ``results`` package only: the typed manifest (with the
config it embeds and the measurement plan) and the tables of the results directory.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from analysis.estimate import Estimate, estimate_cell
from results.config import ExperimentConfig
from results.layouts import measurement_plan
from results.manifest import Manifest, MeasurementPlan
from results.store import ResultsStore

__all__ = [
    "RunData",
    "background_load_table",
    "bytes_table",
    "layouts_table",
    "load_run",
    "response_time_table",
    "response_time_vs_load_table",
    "scheduling_time_table",
    "transfers_table",
]


@dataclass
class RunData:
    root: Path
    manifest: Manifest
    placements: pd.DataFrame
    layouts: pd.DataFrame
    units: pd.DataFrame
    samples: pd.DataFrame
    telemetry: pd.DataFrame
    traffic: pd.DataFrame
    # Runs with --load: the background load's summary per chunk (empty otherwise).
    background: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def config(self) -> ExperimentConfig:
        return self.manifest.config

    @property
    def loads(self) -> list[float]:
        """The offered background loads the run measured at (empty without --load)."""
        return list(self.config.load)

    def at_load(self, load: float) -> RunData:
        """This run's orders, telemetry and load summaries at one offered load only
        (the run itself without --load): the paper's tables are per load."""
        if not self.loads:
            return self

        def only(frame: pd.DataFrame) -> pd.DataFrame:
            if frame.empty or "load_rps" not in frame:
                return frame
            return frame[frame["load_rps"] == load].reset_index(drop=True)

        return replace(self, samples=only(self.samples), telemetry=only(self.telemetry),
                       background=only(self.background))

    @property
    def baseline(self) -> str:
        return self.config.schedulers[0]

    @property
    def items(self) -> list[str]:
        return self.manifest.items

    @property
    def schedulers(self) -> list[str]:
        return list(self.config.schedulers)

    @property
    def plan(self) -> MeasurementPlan:
        """The measurement plan the run recorded (derived from its units for runs from
        before the record, as the experiment derived it)."""
        if self.manifest.plan is not None:
            return self.manifest.plan
        return measurement_plan(self.units, layout_budget=self.config.layout_budget,
                                seed=self.config.seed)

    @property
    def producers(self) -> set[str] | None:
        """The economy's items (producer workloads); None if unknown (an old run whose
        economy cannot be loaded any more)."""
        if self.manifest.producers is not None:
            return set(self.manifest.producers)
        try:
            return set(self.config.load_economy().names)
        except ValueError:  # the economy file is gone: count every workload
            return None

    def producer_telemetry(self) -> pd.DataFrame:
        """Telemetry rows between two producers: bytes the placement decides about.
        Clients in the mesh (the kubernetes backend's order Job, ``order-app``) are left
        out on every backend, as the local backend never records its order app."""
        tel, producers = self.telemetry, self.producers
        if tel.empty or producers is None:
            return tel
        keep = tel["source_workload"].isin(producers) & tel["destination_workload"].isin(
            producers)
        return tel[keep]

    def units_by_scheduler(self) -> dict[str, list[str]]:
        return {
            s: list(self.units.loc[self.units["scheduler"] == s, "layout_id"])
            for s in self.schedulers
        }

    def ok_samples(self) -> pd.DataFrame:
        s = self.samples
        return s[s["ok"].astype(bool)] if not s.empty else s


def load_run(root: Path) -> RunData:
    store = ResultsStore.open(root)
    telemetry = store.telemetry()
    return RunData(
        root=Path(root),
        manifest=store.manifest(),
        placements=store.read_table("placements"),
        layouts=store.read_table("layouts"),
        units=store.read_table("units"),
        samples=store.samples(),
        telemetry=telemetry,
        traffic=store.read_table("traffic") if store.has("traffic") else pd.DataFrame(),
        background=store.background_load(),
    )


def _rows(
    keys: dict[str, Any], estimates: list[Estimate], scale: float = 1.0
) -> list[dict[str, Any]]:
    return [
        {
            **keys,
            "scheduler": e.scheduler,
            "mean": e.mean * scale,
            "ci_low": e.low * scale,
            "ci_high": e.high * scale,
            "reduction_pct": 100 * e.reduction,
            "reduction_ci_low_pct": 100 * e.reduction_low,
            "reduction_ci_high_pct": 100 * e.reduction_high,
            "units": e.units,
            "coverage": e.coverage,
        }
        for e in estimates
    ]


def _estimate(run: RunData, values: dict[str, list[float]], seed: int) -> list[Estimate]:
    return estimate_cell(
        values, run.units_by_scheduler(), baseline=run.baseline,
        resamples=run.config.bootstrap, confidence=run.config.confidence, seed=seed,
    )


def response_time_table(run: RunData) -> pd.DataFrame:
    """Mean response time (ms) per item x size x protocol x scheduler, reduction vs baseline."""
    ok = run.ok_samples()
    rows: list[dict[str, Any]] = []
    for seed, ((item, size, protocol), cell) in enumerate(
        ok.groupby(["item", "size", "protocol"], sort=True)
    ):
        values = {lid: list(g["latency_ms"]) for lid, g in cell.groupby("layout_id")}
        rows += _rows({"item": item, "size": int(size), "protocol": protocol},
                      _estimate(run, values, seed))
    return _frame(rows, ["item", "size", "protocol"], run.items)


def response_time_vs_load_table(run: RunData) -> pd.DataFrame:
    """Mean response time (ms) of the measured orders against the offered background
    load, per protocol and scheduler (over every item x size), with the reduction vs the
    baseline and the background rate achieved (mean over the scheduler's units).
    Empty for a run without --load."""
    ok = run.ok_samples()
    if not run.loads or ok.empty or "load_rps" not in ok:
        return pd.DataFrame()
    achieved = (run.background.groupby(["protocol", "load_rps", "layout_id"])["achieved_rps"]
                .mean() if not run.background.empty else pd.Series(dtype=float))
    units = run.units_by_scheduler()
    rows: list[dict[str, Any]] = []
    for seed, ((protocol, load), cell) in enumerate(
        ok.groupby(["protocol", "load_rps"], sort=True)
    ):
        values = {lid: list(g["latency_ms"]) for lid, g in cell.groupby("layout_id")}
        for row in _rows({"protocol": protocol, "load_rps": float(load)},
                         _estimate(run, values, 40_000 + seed)):
            rates = [float(achieved[(protocol, load, lid)]) for lid in units[row["scheduler"]]
                     if (protocol, load, lid) in achieved.index]
            row["load_achieved_rps"] = float(np.mean(rates)) if rates else np.nan
            rows.append(row)
    return _frame(rows, ["protocol", "load_rps"], run.items)


def background_load_table(run: RunData) -> pd.DataFrame:
    """What the background load did per protocol and offered load, over the measured
    chunks: the rate its Poisson schedule offered and the rate achieved, its own
    latencies (mean of the chunks' p50/p99), failures, and the driver's worst launch lag
    (large: the driver was the bottleneck)."""
    bg = run.background
    if bg.empty:
        return pd.DataFrame()
    out = bg.groupby(["protocol", "load_rps"], as_index=False, sort=True).agg(
        chunks=("layout_id", "count"),
        scheduled_rps=("scheduled_rps", "mean"),
        achieved_rps=("achieved_rps", "mean"),
        achieved_rps_min=("achieved_rps", "min"),
        background_p50_ms=("p50_ms", "mean"),
        background_p99_ms=("p99_ms", "mean"),
        sent=("sent", "sum"),
        errors=("errors", "sum"),
        dropped=("dropped", "sum"),
        max_launch_lag_ms=("max_launch_lag_ms", "max"),
    )
    return out.rename(columns={"load_rps": "offered_rps"})


def transfers_table(run: RunData) -> pd.DataFrame:
    """Share of an order's transfers (hops between pods) that crossed nodes, per item."""
    ok = run.ok_samples()
    ok = ok[ok["transfers"] > 0] if not ok.empty else ok
    rows: list[dict[str, Any]] = []
    for seed, (item, cell) in enumerate(ok.groupby("item", sort=True)):
        share = cell["inter_node_transfers"] / cell["transfers"]
        values = {lid: list(share[g.index]) for lid, g in cell.groupby("layout_id")}
        rows += _rows({"item": item, "transfers_per_order": float(cell["transfers"].mean())},
                      _estimate(run, values, 10_000 + seed), scale=100.0)
    return _frame(rows, ["item"], run.items)


def bytes_table(run: RunData) -> pd.DataFrame:
    """Mesh bytes between producers per measured chunk: inter-node (mean, CI, reduction)
    and their share."""
    tel = run.producer_telemetry()
    rows: list[dict[str, Any]] = []
    if tel.empty:
        return pd.DataFrame()
    tel = tel.assign(inter=np.where(tel["src_node"] != tel["dst_node"], tel["bytes"], 0))
    per_chunk = tel.groupby(["protocol", "layout_id"], as_index=False).agg(
        inter=("inter", "sum"), total=("bytes", "sum")
    )
    for seed, (protocol, cell) in enumerate(per_chunk.groupby("protocol", sort=True)):
        inter = {r.layout_id: [float(r.inter)] for r in cell.itertuples()}
        share = {
            r.layout_id: [float(r.inter) / max(float(r.total), 1.0)] for r in cell.itertuples()
        }
        shares = {e.scheduler: e for e in _estimate(run, share, 20_000 + seed)}
        for row in _rows({"protocol": protocol}, _estimate(run, inter, 30_000 + seed),
                         scale=1 / 2**20):
            row["inter_node_share_pct"] = 100 * shares[row["scheduler"]].mean
            rows.append(row)
    return _frame(rows, ["protocol"], run.items)


def layouts_table(run: RunData) -> pd.DataFrame:
    """Redeployments, distinct layouts and how the estimator covered them, per scheduler."""
    measured = set(run.samples["layout_id"]) if not run.samples.empty else set()
    rows = []
    for scheduler in run.schedulers:
        p = run.placements[run.placements["scheduler"] == scheduler]
        u = run.units[run.units["scheduler"] == scheduler]
        freq = p["layout_id"].value_counts(normalize=True)
        rows.append(
            {
                "scheduler": scheduler,
                "redeployments": len(p),
                "distinct_layouts": int(p["layout_id"].nunique()),
                "top_layout_share_pct": 100 * float(freq.iloc[0]) if len(freq) else np.nan,
                "estimator": str(u["estimator"].iloc[0]) if len(u) else "",
                "units": len(u),
                "layouts_measured": int(u["layout_id"][u["layout_id"].isin(measured)].nunique()),
                "unit_coverage_pct": 100 * float(u["layout_id"].isin(measured).mean())
                if len(u) else np.nan,
            }
        )
    return pd.DataFrame(rows)


def scheduling_time_table(run: RunData) -> pd.DataFrame:
    """Decision time per redeployment (whole economy) and per pod."""
    pods = max(1, len(_first_assignments(run)))
    rows = []
    for scheduler in run.schedulers:
        s = run.placements.loc[run.placements["scheduler"] == scheduler, "seconds"] * 1000
        rows.append(
            {
                "scheduler": scheduler,
                "mean_ms_per_redeployment": float(s.mean()),
                "p50_ms": float(s.quantile(0.5)),
                "p99_ms": float(s.quantile(0.99)),
                "mean_us_per_pod": float(s.mean()) * 1000 / pods,
                "total_s": float(s.sum()) / 1000,
            }
        )
    return pd.DataFrame(rows)


def _first_assignments(run: RunData) -> dict[str, str]:
    import json

    if run.placements.empty:
        return {}
    data: dict[str, str] = json.loads(str(run.placements["assignments"].iloc[0]))
    return data


def _frame(rows: list[dict[str, Any]], keys: list[str], items: list[str]) -> pd.DataFrame:
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    # Items in the experiment's order (simple chains first), schedulers in the configured
    # order (baseline first): a stable sort on the keys alone keeps the latter.
    rank = {item: i for i, item in enumerate(items)}
    order = frame.sort_values(
        keys, kind="stable",
        key=lambda col: col.map(rank).fillna(len(rank)) if col.name == "item" else col,
    )
    return order.reset_index(drop=True)
