"""Dynamic scenarios: phases of background load whose order mix changes, and events
(a node drained, a node added, a node's links degraded) at given times.

Every other experiment here starts from an empty cluster and never moves a running pod.
A scenario deploys the economy once per scheduler and then runs its phases back to back
under open-loop load, while the scheduler's *rebalancer* (``schedulers.rebalancers``)
may move running pods every ``rebalance_interval_s``. File format (YAML or JSON)::

    name: shift
    rebalance_interval_s: 5
    rebalancers: {netmarks: {max_moves: 2, window_s: 20}}   # each policy's rebalancer options
    phases:
      - name: chains
        duration_s: 60
        orders: {items: [flour, board, boat], sizes: [65536], rate: 6}
      - name: shared
        duration_s: 60
        orders: {items: [iron, coin, sword, tools], sizes: [65536], rate: 6}
        events:
          - {at_s: 10, kind: drain, node: node-2}
          - {at_s: 20, kind: degrade, node: node-1, latency_ms: 5, bandwidth_mbps: 50}
          - {at_s: 30, kind: add_node, node: node-6}   # a node of standby_nodes
    standby_nodes: [node-6]

``rate`` is orders per second over all of the phase's items and sizes (each order picks
one at random, seeded). The first phase's mix is also the warm-up traffic the schedulers
place the initial deployment with: what they know on day one.

The results of a scenario run live under ``<root>/scenario/``: the scenario as run
(``scenario.yaml``) and one folder per scheduler with its tables (:data:`TABLES`); a
scheduler's folder is written when its run ends, so an interrupted run resumes with the
schedulers that have none.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from results._validation import joined
from results._yaml import read_mapping

__all__ = [
    "SCENARIO_DIR",
    "SCENARIO_PRESETS",
    "STATIC_SUFFIX",
    "TABLES",
    "Event",
    "OrderMix",
    "Phase",
    "Scenario",
    "ScenarioError",
    "done_schedulers",
    "has_scenario",
    "load_scenario",
    "read_scenario",
    "read_scenario_tables",
    "resolve_scenario",
    "write_scenario",
    "write_scenario_tables",
]

SCENARIO_DIR = "scenario"
# A policy with a rebalancer also runs without it under this suffix (Scenario.static_twins).
STATIC_SUFFIX = "-static"
# One parquet file per table per scheduler; columns in docs/scenarios.md.
TABLES = ("orders", "migrations", "events", "traffic", "placements")
_MAX_SIZE = 16 * 2**20          # the producers' message limit
EventKind = Literal["drain", "add_node", "degrade"]


class ScenarioError(ValueError):
    """A scenario file, preset or its use is invalid; the message says what and where."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class OrderMix(_Model):
    """What the background load sends during a phase."""

    items: list[str] = Field(min_length=1)
    sizes: list[int] = Field(default=[65536], min_length=1)
    rate: float = Field(gt=0, description="orders per second, all items and sizes together")
    count: int = Field(default=1, ge=1)

    @field_validator("sizes")
    @classmethod
    def _sizes(cls, v: list[int]) -> list[int]:
        bad = [s for s in v if not 1 <= s <= _MAX_SIZE]
        if bad:
            raise ValueError(f"sizes must be 1 B .. 16 MiB, got {bad}")
        return v

    @field_validator("rate")
    @classmethod
    def _rate(cls, v: float) -> float:
        if not math.isfinite(v):
            raise ValueError("rate must be a finite number of orders per second")
        return v


class Event(_Model):
    """Something that happens to the cluster ``at_s`` seconds into its phase."""

    at_s: float = Field(default=0.0, ge=0)
    kind: EventKind
    node: str = Field(min_length=1)
    latency_ms: float | None = Field(default=None, ge=0)
    bandwidth_mbps: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _link_fields(self) -> Event:
        has_link = self.latency_ms is not None or self.bandwidth_mbps is not None
        if self.kind == "degrade" and not has_link:
            raise ValueError("a degrade event needs latency_ms and/or bandwidth_mbps")
        if self.kind != "degrade" and has_link:
            raise ValueError(f"latency_ms/bandwidth_mbps belong to degrade events, not {self.kind}")
        return self

    def describe(self) -> str:
        if self.kind == "degrade":
            parts = [f"{self.latency_ms:g} ms" if self.latency_ms is not None else "",
                     f"{self.bandwidth_mbps:g} Mbit/s" if self.bandwidth_mbps is not None else ""]
            return f"degrade {self.node}'s links to {', '.join(p for p in parts if p)}"
        return f"{self.kind.replace('_', ' ')} {self.node}"


class Phase(_Model):
    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    duration_s: float = Field(gt=0)
    orders: OrderMix
    events: list[Event] = Field(default_factory=list)

    @model_validator(mode="after")
    def _events_inside(self) -> Phase:
        late = [e.describe() for e in self.events if e.at_s >= self.duration_s]
        if late:
            raise ValueError(f"events at or after the phase's end ({self.duration_s:g} s): "
                             f"{', '.join(late)}")
        return self


class Scenario(_Model):
    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    description: str = ""
    protocol: Literal["http", "grpc"] = "http"
    rebalance_interval_s: float = Field(default=5.0, gt=0)
    warmup_s: float = Field(default=10.0, ge=0, description="warm-up with the first phase's mix")
    standby_nodes: list[str] = Field(default_factory=list)
    phases: list[Phase] = Field(min_length=1)
    # Options of each policy's rebalancer (schedulers.rebalancers), e.g.
    # {netmarks: {max_moves: 1, window_s: 30}}; checked when the rebalancer is made.
    rebalancers: dict[str, dict[str, Any]] = Field(default_factory=dict)
    # Also run every policy that has a rebalancer without it ("<policy>-static"): the
    # same day one, never moved, so the report can say what the moves bought.
    static_twins: bool = True

    @model_validator(mode="after")
    def _consistent(self) -> Scenario:
        names = [p.name for p in self.phases]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"phase names must be unique: {', '.join(dup)} repeated")
        added = [e.node for p in self.phases for e in p.events if e.kind == "add_node"]
        not_standby = sorted(set(added) - set(self.standby_nodes))
        if not_standby:
            raise ValueError(f"add_node names {', '.join(not_standby)}, which standby_nodes "
                             "does not list (a node that joins later starts as standby)")
        twice = sorted({n for n in added if added.count(n) > 1})
        if twice:
            raise ValueError(f"add_node adds {', '.join(twice)} more than once")
        return self

    @property
    def duration_s(self) -> float:
        return sum(p.duration_s for p in self.phases)

    def boundaries(self) -> list[tuple[str, float, float]]:
        """(phase, start_s, end_s) from the scenario's start."""
        out, t = [], 0.0
        for p in self.phases:
            out.append((p.name, t, t + p.duration_s))
            t += p.duration_s
        return out

    def items(self) -> list[str]:
        seen: dict[str, None] = {}
        for p in self.phases:
            seen.update(dict.fromkeys(p.orders.items))
        return list(seen)

    def scaled(self, factor: float) -> Scenario:
        """Every duration and event time times ``factor`` (``--quick`` halves them)."""
        if factor <= 0:
            raise ScenarioError(f"scale factor must be > 0, got {factor}")
        data = self.model_dump()
        data["warmup_s"] *= factor
        for p in data["phases"]:
            p["duration_s"] *= factor
            for e in p["events"]:
                e["at_s"] *= factor
        return Scenario.model_validate(data)

    def check(self, items: Sequence[str], nodes: Sequence[str]) -> None:
        """The scenario fits this economy and cluster, or ScenarioError says why."""
        errors: list[str] = []
        unknown = [i for i in self.items() if i not in items]
        if unknown:
            errors.append(f"items not in the economy: {', '.join(unknown)} "
                          f"(it has {', '.join(items)})")
        missing = [n for n in self.standby_nodes if n not in nodes]
        if missing:
            errors.append(f"standby_nodes not in the cluster: {', '.join(missing)}")
        for p in self.phases:
            for e in p.events:
                if e.node not in nodes:
                    errors.append(f"phase {p.name}: {e.describe()}: no node {e.node!r} in the "
                                  f"cluster ({', '.join(nodes)})")
        active = [n for n in nodes if n not in self.standby_nodes]
        drained = {e.node for p in self.phases for e in p.events if e.kind == "drain"}
        if active and set(active) <= drained:
            errors.append("the scenario drains every node that starts active")
        if not active:
            errors.append("every node is a standby node: nothing to deploy on")
        if errors:
            raise ScenarioError(f"scenario {self.name}: " + "; ".join(errors))


def _shift() -> Scenario:
    return Scenario(
        name="shift",
        description=("Traffic shifts halfway from simple-chain items (linear supply chains) "
                     "to items that share supply chains; what the schedulers placed for "
                     "day one no longer fits."),
        rebalance_interval_s=5,
        phases=[
            Phase(name="chains", duration_s=60,
                  orders=OrderMix(items=["flour", "board", "boat"], sizes=[65536], rate=8)),
            Phase(name="shared", duration_s=60,
                  orders=OrderMix(items=["iron", "coin", "sword", "tools"], sizes=[65536],
                                  rate=8)),
        ])


def _drain() -> Scenario:
    mix = OrderMix(items=["flour", "board", "iron", "coin"], sizes=[65536], rate=8)
    return Scenario(
        name="drain",
        description=("Steady load; then node-2 is drained (cordoned, its pods evicted and "
                     "placed again by each scheduler)."),
        rebalance_interval_s=5,
        phases=[Phase(name="steady", duration_s=40, orders=mix),
                Phase(name="drained", duration_s=60, orders=mix,
                      events=[Event(kind="drain", node="node-2")])])


SCENARIO_PRESETS: Mapping[str, Callable[[], Scenario]] = {"shift": _shift, "drain": _drain}


def load_scenario(path: Path) -> Scenario:
    """A scenario file (YAML or JSON), checked; ScenarioError names every problem."""
    data = read_mapping(path, "scenario file", ScenarioError,
                        "a scenario file is a mapping with name: and phases:")
    data.setdefault("name", path.stem)
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        raise ScenarioError(f"{path}: {joined(exc)}") from None


def resolve_scenario(spec: str | Path | Scenario | Mapping[str, Any]) -> Scenario:
    """A preset name, a file, or a scenario as data."""
    if isinstance(spec, Scenario):
        return spec
    if isinstance(spec, Mapping):
        try:
            return Scenario.model_validate(dict(spec))
        except ValidationError as exc:
            raise ScenarioError(f"scenario: {joined(exc)}") from None
    name = str(spec)
    if name in SCENARIO_PRESETS:
        return SCENARIO_PRESETS[name]()
    path = Path(name)
    if not path.exists():
        raise ScenarioError(f"scenario {name!r} is neither a preset "
                            f"({', '.join(SCENARIO_PRESETS)}) nor an existing file")
    return load_scenario(path)


# -- the results directory ------------------------------------------------------------

def _dir(root: Path) -> Path:
    return root / SCENARIO_DIR


def write_scenario(root: Path, scenario: Scenario) -> None:
    """Record the scenario as run (once; a resume must run the same one)."""
    path = _dir(root) / "scenario.yaml"
    text = yaml.safe_dump(scenario.model_dump(mode="json"), sort_keys=False)
    if path.exists():
        if read_scenario(root) != scenario:
            raise ScenarioError(f"{path} holds a different scenario; resume with the same "
                                "--scenario (and --quick) or start a new results directory")
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    tmp.replace(path)


def has_scenario(root: Path) -> bool:
    """Whether ``root`` holds a scenario run."""
    return (_dir(root) / "scenario.yaml").exists()


def read_scenario(root: Path) -> Scenario:
    path = _dir(root) / "scenario.yaml"
    if not path.exists():
        raise ScenarioError(f"{root} holds no scenario run ({path} is missing)")
    return load_scenario(path)


def write_scenario_tables(root: Path, scheduler: str, tables: Mapping[str, pd.DataFrame]) -> None:
    """One scheduler's tables, all or nothing: written to a temporary folder, then renamed."""
    unknown = sorted(set(tables) - set(TABLES))
    if unknown:
        raise ValueError(f"unknown scenario table(s): {', '.join(unknown)}")
    final = _dir(root) / scheduler
    tmp = _dir(root) / f".{scheduler}.tmp"
    if tmp.exists():
        for f in tmp.iterdir():
            f.unlink()
    tmp.mkdir(parents=True, exist_ok=True)
    for name, frame in tables.items():
        frame.to_parquet(tmp / f"{name}.parquet", index=False)
    tmp.replace(final)


def done_schedulers(root: Path) -> list[str]:
    """Schedulers whose scenario run finished (their folder exists)."""
    d = _dir(root)
    if not d.exists():
        return []
    return sorted(p.name for p in d.iterdir() if p.is_dir() and not p.name.startswith("."))


def read_scenario_tables(root: Path) -> dict[str, pd.DataFrame]:
    """Every table, the schedulers' parts concatenated (empty frames when none)."""
    out: dict[str, pd.DataFrame] = {}
    for name in TABLES:
        parts = [pd.read_parquet(_dir(root) / s / f"{name}.parquet")
                 for s in done_schedulers(root) if (_dir(root) / s / f"{name}.parquet").exists()]
        parts = [p for p in parts if not p.empty]
        out[name] = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    return out
