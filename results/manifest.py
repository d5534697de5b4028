"""The manifest: what a run was, where and with what it ran, and how far it got.

``manifest.json`` is the one part of a results directory that is not a table. It
embeds the experiment's config and adds what the config alone does not say: the
items the run ordered and why, the backend that placed and measured (in the words
the report prints), the link profile the preset stood for, the seeds, the machine
and versions, the warm-up's traffic, the traffic each scheduler placed with, and the
measurement plan. The experiment writes it stage by stage
(:meth:`results.store.ResultsStore.update_manifest`); the analysis reads it typed.

Formats: 2 is this model. 1 (before the results package) had the same keys without
``backend``, ``producers`` and ``plan`` and with ``link_profile`` as the profile's text; it is read
by upgrading it (the backend descriptions format-1 runs implied are kept below, the
plan is derived from ``units.parquet`` by the reader, :func:`results.layouts.
measurement_plan`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from results import provenance
from results.allocation import Allocation
from results.config import RECORDED, ExperimentConfig, ItemsOrigin
from results.links import LINK_PRESETS, LinkProfile

__all__ = [
    "FORMAT",
    "KIND",
    "BackendDescription",
    "Machine",
    "Manifest",
    "MeasurementPlan",
    "Replicate",
    "SchedulerPlan",
    "Seeds",
    "new_manifest",
]

KIND: Final = "settlers-testbed results"
FORMAT: Final = 2


class BackendDescription(BaseModel):
    """A backend as the report names it: who places the pods, where they are measured."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    places: str = Field(description="who places, e.g. 'the Python scheduler models'")
    measures: str = Field(description="where it is measured, e.g. 'the emulated cluster'")


class Seeds(BaseModel):
    """Which seed drove what (the placement and bootstrap seeds are derived, in words)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    experiment: int
    placement: str
    sampling: int
    bootstrap: str


class Machine(BaseModel):
    """The machine a run started on (:func:`results.provenance.machine`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    hostname: str = ""
    platform: str = ""
    python: str = ""
    cpu: str = "unknown"
    cores: int | None = None
    memory_gib: float | None = None
    load_avg_at_start: list[float] = Field(default_factory=list)


class SchedulerPlan(BaseModel):
    """How one scheduler's estimate is formed: every unit weighs 1/``units``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    estimator: Literal["census", "pps"]
    units: int


class MeasurementPlan(BaseModel):
    """Which layouts the experiment chose to measure and how each scheduler's estimate
    weighs them (the units themselves are in ``units.parquet``; see results.layouts)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    layout_budget: int
    seed: int
    layouts: list[str] = Field(description="layouts to measure, in measurement order")
    schedulers: dict[str, SchedulerPlan]

    def chunks(self, protocols: Sequence[str]) -> int:
        """(layout, protocol) chunks the plan measures."""
        return len(self.layouts) * len(protocols)


class Replicate(BaseModel):
    """One replication of a replicated run (``--replicates K``), as the top-level
    manifest lists it: its index (1..K), seed, directory and measurement budget."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    index: int = Field(ge=1)
    seed: int
    path: str = Field(description="its results directory, relative to the run's")
    time_budget: float | None = Field(
        None, description="its share of the run's time_budget (seconds); None: unset")


class Manifest(BaseModel):
    """``manifest.json``, format 2. Fields set by later stages are None (or empty)
    until the stage ran."""

    # Infinity stays a number (a link without bandwidth limit), not JSON null.
    model_config = ConfigDict(extra="forbid", ser_json_inf_nan="constants")

    kind: Literal["settlers-testbed results"] = KIND
    format: Literal[2] = FORMAT
    config: ExperimentConfig
    items: list[str]
    items_origin: ItemsOrigin | None = Field(None, description="None in runs from before it")
    economy_name: str | None = None
    producers: list[str] | None = Field(
        None, description="the economy's items, i.e. its producer workloads (telemetry may "
                          "also name clients, e.g. the kubernetes backend's order Job); "
                          "None in runs from before it")
    backend: BackendDescription
    link_profile: LinkProfile | None = Field(
        None, description="the profile the config's link preset stood for (emulated links)")
    seeds: Seeds
    started_at: str
    machine: Machine
    versions: dict[str, str]
    resumed_at: list[str] = Field(default_factory=list)
    resumed_versions: list[dict[str, str]] = Field(default_factory=list)
    finished_at: str | None = None
    load_avg_at_finish: list[float] | None = Field(
        default=None, description="the machine's 1, 5 and 15 minute load averages when the "
                                  "run ended (None in runs from before it)")
    capacity: dict[str, Any] | None = Field(
        default=None, description="node capacity on the emulated cluster: enforced or why not, "
                          "the scale, each node's quota (emulated.capacity); None: off")
    # The warm-up (stage 1).
    traffic_source: str | None = None
    warmup_seconds: float | None = None
    warmup_placement: dict[str, str] | None = None
    warmup_since: float | None = None
    warmup_until: float | None = None
    warmup_traffic_source: str | None = None
    # The redeployments (stage 2): scheduler -> the traffic it placed with, in words.
    scheduler_traffic: dict[str, str] = Field(default_factory=dict)
    # The sampling plan (stage 3).
    plan: MeasurementPlan | None = None
    # Runs with a time budget (stage 4): the pilot, the variance components, the choice.
    allocation: Allocation | None = None
    # Replications (--replicates K > 1): the top-level manifest lists them; each
    # replicate's own manifest says which one it is. Both unset in a single run.
    replicates: list[Replicate] = Field(
        default_factory=list, description="a replicated run's replications (top level)")
    replicate: int | None = Field(
        default=None, ge=1, description="in a replicate's own manifest: its index (1..K)")

    @classmethod
    def read(cls, data: Mapping[str, Any]) -> Manifest:
        """A stored manifest, of this format or an older one; its config is checked for
        its shape only (:meth:`results.config.ExperimentConfig.recorded`)."""
        return cls.model_validate(dict(data), context=dict(RECORDED))

    def updated(self, **fields: Any) -> Manifest:
        """A copy with ``fields`` replaced, validated like a stored manifest."""
        return Manifest.read({**self.model_dump(), **fields})

    def to_json(self) -> str:
        return self.model_dump_json(indent=2)

    @model_validator(mode="before")
    @classmethod
    def _upgrade(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and data.get("format") == 1:
            return _from_format_1(data)
        return data


def new_manifest(config: ExperimentConfig, backend: BackendDescription) -> Manifest:
    """The manifest a run starts with: the config and where and with what it runs."""
    economy = config.load_economy()
    return Manifest(
        config=config,
        items=config.item_list(),
        items_origin=config.items_origin(),
        economy_name=economy.name,
        producers=list(economy.names),
        backend=backend,
        link_profile=LINK_PRESETS.get(config.link),
        seeds=Seeds(experiment=config.seed, placement="seed*1000 + scheduler index",
                    sampling=config.seed, bootstrap="per table cell"),
        started_at=provenance.now(),
        machine=Machine.model_validate(provenance.machine()),
        versions=provenance.versions(),
    )


# What each backend name meant in format-1 runs, as the report printed it then
# (format 2 records the description itself).
_FORMAT_1_BACKENDS = {
    "local": ("the Python scheduler models", "the emulated cluster"),
    "kwok": ("the real kube-scheduler (NetMARKS as its extender, firmament as a custom "
             "scheduler) on a kwok control plane", "the emulated cluster"),
    "kubernetes": ("the cluster's schedulers", "the real cluster (Istio telemetry)"),
}
# Format 1 stored the profile as text: "(LinkProfile(latency_ms=2.5, bandwidth_mbps=300.0))".
_FORMAT_1_LINK = re.compile(r"latency_ms=([^,)]+), bandwidth_mbps=([^,)]+)")


def _from_format_1(data: Mapping[str, Any]) -> dict[str, Any]:
    out = {**data, "format": FORMAT}
    config = data.get("config")
    name = str(config.get("backend", "local")) if isinstance(config, Mapping) else "?"
    places, measures = _FORMAT_1_BACKENDS.get(name, ("?", "?"))
    out["backend"] = {"name": name, "places": places, "measures": measures}
    link = _FORMAT_1_LINK.search(str(data.get("link_profile") or ""))
    out["link_profile"] = (
        LinkProfile(float(link.group(1)), float(link.group(2))) if link else None
    )
    return out
