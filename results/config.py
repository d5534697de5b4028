"""The experiment definition: one validated model, built from defaults, a preset, a file, flags.

Precedence, lowest first: the model's defaults (the paper's method), the ``quick``
preset, ``--config experiment.yaml``, explicit command-line flags. Everything that
can be checked before any process starts is checked here, so a typo in a scheduler,
item or link preset fails in a second with a message naming the bad value, not
twenty minutes into a run.

It lives in the results package because every results directory embeds it (the
manifest's ``config``): the experiment that writes results and the analysis that
reads them both take it from here. A config read back from results
(:meth:`ExperimentConfig.recorded`) is checked for its shape only: a record stays
readable when its economy file has moved or this checkout no longer knows one of
its policies or link presets.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializationInfo,
    SerializerFunctionWrapHandler,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_serializer,
    model_validator,
)

from results._validation import problems
from results._yaml import read_mapping
from results.links import LINK_PRESETS
from results.topology import Topology, TopologyError, resolve_topology
from schedulers.creation import CreationOrder, CreationOrderMode
from schedulers.spec import ExtenderCall, KubernetesCounterpart
from settlers.economy import DEFAULT_ECONOMY, Economy, EconomyError, load_economy
from settlers.picks import representative_items, same_graph
from settlers.wire import PROTOCOLS, WireProtocol

__all__ = [
    "BASELINE",
    "DEFAULT_ITEMS",
    "DEFAULT_ORDER",
    "PRESETS",
    "RECORDED",
    "ConfigError",
    "ExperimentConfig",
    "ExternalExtender",
    "ExternalScheduler",
    "ItemPick",
    "ItemsOrigin",
    "build_config",
    "is_paper_economy",
    "items_note",
    "parse_duration",
]

# Validation context of a config read back from results: check the shape, not
# whether this checkout still has the economy file, the policies and link presets.
RECORDED: Mapping[str, Any] = {"recorded": True}

# The scheduler every other one is compared with; always measured.
BASELINE = "kube_default"
# Aliases a user is likely to type for the baseline.
_ALIASES = {"default": BASELINE, "kube-default": BASELINE, "kube-scheduler": BASELINE}
# Simple chains (flour, boat), a mid-level item (bread, coal) and the complex items
# that share supply chains (iron, coin, sword, tools): the paper's mix. These, and the
# quick preset's items, name Settlers items: they are used when the economy has the
# Settlers graph; for any other economy the items left unset are picked from its graph
# (settlers.picks.representative_items), for the default and the quick preset alike.
DEFAULT_ITEMS = ["flour", "boat", "bread", "coal", "iron", "coin", "sword", "tools"]
DEFAULT_SIZES = [16, 256, 4096, 65536, 1048576]
_MAX_SIZE = 16 * 2**20
# The creation order of each redeployment's Deployments (issue 14; docs/experiment.md,
# "Creation order", says why random): the file's order is an accident of how the
# economy file is written, and kube_default's spreading turns it into a bias.
DEFAULT_ORDER: CreationOrderMode = "random"
# Orders per second of background load; far beyond what one machine's cores serve.
_MAX_LOAD = 10_000

PRESETS: dict[str, dict[str, Any]] = {
    # Finishes within ~3 minutes on a 2-core machine and still shows the comparison:
    # a simple chain, a mid-level and two complex items, the two ends of the size range.
    "quick": {
        "deployments": 100,
        "items": ["boat", "bread", "coal", "sword"],
        "sizes": [16, 65536, 1048576],
        "protocols": ["http"],
        "repetitions": 3,
        "layout_budget": 12,
        "warmup_orders": 1,
        "warmup_seconds": 10.0,
    },
    # The paper's method (every default) made trustworthy (issue 14): three independent
    # replications and a measurement time budget spent where the variance is.
    "paper": {
        "replicates": 3,
        "time_budget": 1800.0,
    },
}


class ConfigError(ValueError):
    """The experiment definition is invalid; the message lists every problem."""


class ItemPick(BaseModel):
    """One item picked from an economy's graph, with the roles it stands for and why."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    item: str
    roles: list[str]
    why: list[str]


class ItemsOrigin(BaseModel):
    """How the items relate to the defaults (:meth:`ExperimentConfig.items_origin`).

    ``paper``: the paper's default or quick items, on the Settlers graph; ``derived``:
    picked from another economy's graph (the default there), with the ``picks``;
    ``given``: anything else.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    how: Literal["paper", "derived", "given"]
    economy: str | None = None
    picks: list[ItemPick] = Field(default_factory=list)


def items_note(origin: ItemsOrigin) -> str:
    """One line saying which items were picked from the economy's graph, and why;
    empty when the user gave the items or the paper's items were used."""
    if origin.how != "derived":
        return ""
    picks = "; ".join(f"{p.item} ({', '.join(p.roles)})" for p in origin.picks)
    return f"items derived from economy {origin.economy!r}: {picks}"


class ExternalScheduler(BaseModel):
    """A scheduler you run, measured as a policy of its own: pods carry its schedulerName.

    In a file, ``mine: my-scheduler`` or ``mine: {scheduler_name: ..., command: [...]}``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    scheduler_name: str
    # Started by the harness on this machine while the policy places, with $KUBECONFIG
    # (and "{kubeconfig}", "{scheduler_name}" in the arguments) pointing at the cluster:
    # the way in to the kwok backend's control plane, which lives only during the run.
    command: list[str] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _short(cls, data: Any) -> Any:
        return {"scheduler_name": data} if isinstance(data, str) else data

    def counterpart(self) -> KubernetesCounterpart:
        return KubernetesCounterpart(
            self.scheduler_name, "custom", f"your scheduler {self.scheduler_name}",
            command=tuple(self.command))


class ExternalExtender(BaseModel):
    """An extender you serve at a URL: the harness runs a kube-scheduler profile named
    after the policy that calls it (the kwok backend). ``mine: URL`` or ``mine: {url: ...,
    weight: 2}`` in a file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str = Field(pattern=r"^https?://[^\s/]+\S*$")
    weight: int = Field(1, ge=1, le=100)
    prioritize_verb: str = "prioritize"
    filter_verb: str | None = None
    # A failing extender fails the scheduling cycle (pods stay pending, the run says so)
    # rather than silently measuring kube-scheduler's default profile.
    ignorable: bool = False

    @model_validator(mode="before")
    @classmethod
    def _short(cls, data: Any) -> Any:
        return {"url": data} if isinstance(data, str) else data

    def counterpart(self, name: str) -> KubernetesCounterpart:
        call = ExtenderCall(self.url, self.weight, self.prioritize_verb, self.filter_verb,
                            self.ignorable)
        return KubernetesCounterpart(name, "extender", f"your extender at {self.url}",
                                     extender=call)


class ExperimentConfig(BaseModel):
    """What to run. Field docs double as the reference for ``experiment.yaml``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Before `schedulers`, whose validator accepts their names.
    external_schedulers: dict[str, ExternalScheduler] = Field(
        default_factory=dict,
        description="kwok/kubernetes: NAME -> the schedulerName of a scheduler you run; "
                    "measured as policy NAME",
    )
    external_extenders: dict[str, ExternalExtender] = Field(
        default_factory=dict,
        description="kwok: NAME -> the URL of an extender you serve; a kube-scheduler "
                    "profile NAME calls it, measured as policy NAME",
    )
    schedulers: list[str] = Field(
        default_factory=lambda: ["netmarks"],
        validate_default=True,
        description="policies to compare; kube_default is always added as the baseline",
    )
    backend: Literal["local", "kwok", "kubernetes"] = "local"
    # Opt-in (issue 14, sweeps): empty places with every model's defaults, as before.
    scheduler_options: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="local backend: policy -> options of its model, as its new() takes "
                    "them (netmarks: weight; firmament: rounds, load_weight; `schedulers "
                    "policies` lists the policies), e.g. {netmarks: {weight: 2}}; unset: "
                    "each model's defaults")
    deployments: int = Field(1000, ge=1, le=100_000, description="redeployments per scheduler")
    nodes: int = Field(5, ge=1, le=64)
    link: str = Field("edge", description="link preset of the emulated cluster")
    # Opt-in (issue 13): None keeps today's cluster and today's records exactly.
    topology: Topology | None = Field(
        None, description="nodes, labels and a link per pair class: a preset (uniform, zones, "
                          "edge-cloud, built for `nodes` and `link`), a topology file, or the "
                          "topology itself; unset: `nodes` identical nodes behind `link`")
    # Off by default: nodes without capacity, the models' 4-CPU nodes, as before.
    node_cpu: str | None = Field(
        None, description="CPU capacity per node (Kubernetes units: 4, 500m): the models' "
                          "allocatable and, on the emulated cluster, a cgroup CPU quota at "
                          "cpu_scale; unset: no capacity enforced")
    cpu_scale: float | None = Field(
        None, gt=0, le=1, description="machine millicores per Kubernetes millicore for the "
                                      "quota (default: fit the nodes into this machine's "
                                      "cores less 0.5 core for the mesh and order app)")
    protocols: list[WireProtocol] = Field(default_factory=lambda: list(PROTOCOLS))
    sizes: list[int] = Field(default_factory=lambda: list(DEFAULT_SIZES))
    items: list[str] | Literal["all"] = Field(default_factory=lambda: list(DEFAULT_ITEMS))
    count: int = Field(1, ge=1, le=1000, description="units per order")
    repetitions: int = Field(5, ge=1, le=10_000, description="orders per item x size per layout")
    layout_budget: int = Field(30, ge=1, description="most distinct layouts to measure")
    warmup_orders: int = Field(3, ge=0, description="orders per item x size per warm-up round")
    # Long enough for Prometheus to scrape every new series several times even when a
    # busy machine stretches its 1 s scrape interval (increase() needs two samples).
    warmup_seconds: float = Field(
        15.0, ge=0, le=3600, description="repeat warm-up rounds for at least this long"
    )
    seed: int = 1
    replicates: int = Field(
        1, ge=1, le=100,
        description="independent replications (own seed, warm-up, redeployments and "
                    "measurements each) in one results directory; the report gives each "
                    "headline with the spread between them")
    time_budget: float | None = Field(
        None, gt=0, le=7 * 24 * 3600,
        description="measurement time of the whole run (all replications), in seconds or "
                    "as 30m, 1h30m, 90s: a pilot estimates the variance between layouts and "
                    "between orders, and the rest is split between more layouts and more "
                    "orders per layout to minimise each scheduler's variance; unset: "
                    "layout_budget layouts x repetitions orders")
    order: CreationOrderMode = Field(
        DEFAULT_ORDER,
        description="the order in which each redeployment creates its Deployments (pods "
                    "reach the scheduler in it): file (the economy file's), reverse, or "
                    "random (a new order per redeployment from the seed, the same orders "
                    "for every scheduler)")
    economy: str | None = Field(None, description="economy file or shipped name (settlers2)")
    bootstrap: int = Field(1000, ge=50, le=100_000, description="bootstrap resamples for CIs")
    confidence: float = Field(0.95, gt=0.5, lt=1.0)
    kube_context: str | None = Field(None, description="kubernetes backend only")
    kube_namespace: str | None = Field(
        None, pattern=r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$",
        description="kubernetes backend only: namespace to install into (default settlers)",
    )
    kube_release: str | None = Field(
        None, pattern=r"^[a-z0-9]([-a-z0-9]{0,51}[a-z0-9])?$",
        description="kubernetes backend only: name of the Helm release the harness installs "
                    "(default settlers-harness-<hash of the namespace>); it never changes or "
                    "uninstalls a release it did not install",
    )
    prometheus_url: str | None = Field(
        None, pattern=r"^https?://\S+$",
        description="kubernetes backend only: Prometheus as the cluster reaches it (NetMARKS)",
    )
    # Opt-in (issue 13): empty measures as always, one chunk per (layout, protocol).
    load: list[float] = Field(
        default_factory=list,
        description="background orders per second kept running while each layout is "
                    "measured (open loop, mixed over the items and sizes); several values "
                    "measure every layout at each, one chunk per (layout, protocol, load)",
    )
    load_in_traffic: bool = Field(
        False,
        description="run the largest --load in the background during the warm-up too, so "
                    "the traffic NetMARKS learns from includes it (default: excluded)",
    )

    @classmethod
    def recorded(cls, data: Mapping[str, Any]) -> ExperimentConfig:
        """A config as stored in results, checked for its shape only (see the module doc)."""
        return cls.model_validate(dict(data), context=dict(RECORDED))

    @model_validator(mode="before")
    @classmethod
    def _order_of_old_records(cls, data: Any, info: ValidationInfo) -> Any:
        # Records from before the creation order was a setting were made in file order.
        if _recorded(info) and isinstance(data, Mapping) and "order" not in data:
            return {**data, "order": "file"}
        return data

    @field_validator("schedulers")
    @classmethod
    def _schedulers(cls, value: list[str], info: ValidationInfo) -> list[str]:
        # The policy table (schedulers.registry) is the one list: built-ins and
        # installed plug-ins. A plug-in is loaded here, so a broken one fails now
        # (naming its package), not after the warm-up. A config read back from
        # results is checked for its shape only (the plug-in may not be installed).
        from schedulers.registry import available_policies, builtin_policies, policy_spec

        recorded = _recorded(info)
        known = None if recorded else available_policies()
        externals = [*info.data.get("external_schedulers", {}),
                     *info.data.get("external_extenders", {})]
        out = [BASELINE]
        for name in value:
            name = _ALIASES.get(name.strip(), name.strip())
            if name in externals:
                pass  # yours: checked with the backend in _externals
            elif known is not None and name not in known:
                raise ValueError(f"unknown scheduler {name!r}; known: {', '.join(known)}"
                                 + (f"; yours: {', '.join(externals)}" if externals else ""))
            elif not recorded and name not in builtin_policies():
                policy_spec(name)
            if name not in out:
                out.append(name)
        return out

    @field_validator("scheduler_options")
    @classmethod
    def _scheduler_options(cls, value: dict[str, dict[str, Any]],
                           info: ValidationInfo) -> dict[str, dict[str, Any]]:
        if _recorded(info) or not value:
            return value
        from schedulers.registry import get_policy, policy_parameters

        backend = info.data.get("backend", "local")
        if backend != "local" and not (backend == "kwok" and all(
                _configures_real_plugins(_ALIASES.get(n, n)) for n in value)):
            raise ValueError("options of the Python models; the kwok and kubernetes "
                             "backends run the real schedulers with their own settings "
                             "(on kwok, diktyo's options also set its real plugins)")
        schedulers = info.data.get("schedulers") or []
        out: dict[str, dict[str, Any]] = {}
        for name, options in value.items():
            name = _ALIASES.get(name, name)
            if name not in schedulers:
                raise ValueError(f"{name!r} is not among the schedulers measured "
                                 f"({', '.join(schedulers)})")
            known = policy_parameters(name)
            typed: dict[str, Any] = {}
            for key, given in options.items():
                if key not in known:
                    raise ValueError(f"{name} has no option {key!r}; its options: "
                                     f"{', '.join(known) or 'none'}")
                typed[key] = _option_value(name, key, given, known[key])
            try:
                get_policy(name, seed=0, **typed)
            except ValueError as exc:
                raise ValueError(f"{name}: {exc}") from None
            out[name] = typed
        return out

    @model_validator(mode="before")
    @classmethod
    def _measure_externals(cls, data: Any) -> Any:
        # A scheduler you name is measured: added to the schedulers (alone with the
        # baseline when no scheduler is named at all, not beside the default netmarks).
        if not isinstance(data, Mapping):
            return data
        names = [*(data.get("external_schedulers") or {}),
                 *(data.get("external_extenders") or {})]
        if not names:
            return data
        given = data.get("schedulers")
        listed = list(given) if isinstance(given, list | tuple) else []
        return {**data, "schedulers": [*listed, *(n for n in names if n not in listed)]}

    @model_validator(mode="after")
    def _externals(self, info: ValidationInfo) -> ExperimentConfig:
        from schedulers.registry import available_policies

        if _recorded(info):
            return self  # a record: its shape only (a plug-in may be gone since)
        known = available_policies()
        externals = [*self.external_schedulers, *self.external_extenders]
        both = set(self.external_schedulers) & set(self.external_extenders)
        clash = [n for n in externals if n in known or n in both or n == BASELINE]
        if clash:
            raise ValueError(f"external scheduler name {clash[0]!r} is taken (a policy, or "
                             "named twice); choose another")
        if externals and self.backend == "local":
            raise ValueError(
                f"{', '.join(externals)}: a scheduler you run places pods on a Kubernetes "
                "control plane, and the local backend has no model of it; use --backend "
                "kwok (or kubernetes)")
        for name, sched in self.external_schedulers.items():
            try:
                sched.counterpart()
            except ValueError as exc:
                raise ValueError(f"external scheduler {name!r}: {exc}") from None
        for name, ext in self.external_extenders.items():
            try:
                ext.counterpart(name)
            except ValueError as exc:
                raise ValueError(f"external extender {name!r} (its name is the profile's "
                                 f"schedulerName): {exc}") from None
        return self

    @model_validator(mode="after")
    def _capacity_backend(self) -> ExperimentConfig:
        if self.backend == "kubernetes" and (self.node_cpu is not None
                                             or self.cpu_scale is not None):
            raise ValueError("node_cpu/cpu_scale: the kubernetes backend's nodes have the "
                             "capacity the cluster gives them; these apply to the local "
                             "and kwok backends")
        return self

    def counterparts(self) -> dict[str, KubernetesCounterpart]:
        """The real schedulers of the external schedulers and extenders, by policy name."""
        out = {n: e.counterpart() for n, e in self.external_schedulers.items()}
        out.update({n: e.counterpart(n) for n, e in self.external_extenders.items()})
        return out

    @field_validator("protocols", "sizes")
    @classmethod
    def _non_empty_unique(cls, value: list[Any]) -> list[Any]:
        if not value:
            raise ValueError("must not be empty")
        return list(dict.fromkeys(value))

    @field_validator("sizes")
    @classmethod
    def _sizes(cls, value: list[int]) -> list[int]:
        bad = [s for s in value if not 1 <= s <= _MAX_SIZE]
        if bad:
            raise ValueError(f"sizes must be between 1 and {_MAX_SIZE} bytes, got {bad}")
        return sorted(value)

    @field_validator("load", mode="before")
    @classmethod
    def _load(cls, value: Any) -> Any:
        # Numbers only (not True, not "20"): a typo must not become a rate.
        if not isinstance(value, list | tuple):
            raise ValueError("must be a list of rates in orders per second, e.g. [0, 20]")
        out: list[float] = []
        for rate in value:
            if isinstance(rate, bool) or not isinstance(rate, int | float):
                raise ValueError(f"load {rate!r} is not a number of orders per second")
            if not 0 <= rate <= _MAX_LOAD:
                raise ValueError(f"load {rate!r} must be between 0 and {_MAX_LOAD} orders per "
                                 "second")
            out.append(round(float(rate), 3))
        return sorted(set(out))

    @model_validator(mode="after")
    def _load_backend(self, info: ValidationInfo) -> ExperimentConfig:
        if _recorded(info) or not self.load:
            return self
        if self.backend == "kubernetes":
            raise ValueError("load: a background load is sent from this machine to the "
                             "emulated cluster's entries; the kubernetes backend's orders "
                             "run in the cluster (use --backend local or kwok)")
        if self.load_in_traffic and max(self.load) == 0:
            raise ValueError("load_in_traffic: no load above 0 to run during the warm-up")
        return self

    @field_validator("time_budget", mode="before")
    @classmethod
    def _time_budget(cls, value: Any) -> Any:
        return None if value is None else parse_duration(value)

    @field_validator("node_cpu")
    @classmethod
    def _node_cpu(cls, value: str | None) -> str | None:
        from settlers.quantity import parse_cpu

        if value is not None and parse_cpu(value) <= 0:
            raise ValueError(f"must be a positive CPU quantity, got {value!r}")
        return value

    def creation_order(self) -> CreationOrder:
        """How each redeployment orders its Deployments (the same for every scheduler)."""
        return CreationOrder(self.order, self.seed)

    def node_cpu_m(self) -> int | None:
        """The node capacity in millicores, or None when capacity is off."""
        from settlers.quantity import parse_cpu

        return None if self.node_cpu is None else parse_cpu(self.node_cpu)

    @field_validator("link")
    @classmethod
    def _link(cls, value: str, info: ValidationInfo) -> str:
        if not _recorded(info) and value not in LINK_PRESETS:
            raise ValueError(f"unknown link preset {value!r}; known: {', '.join(LINK_PRESETS)}")
        return value

    @model_validator(mode="before")
    @classmethod
    def _resolve_topology(cls, data: Any) -> Any:
        # A preset name or file becomes the topology itself, so the record (the
        # manifest's config) holds every node and link, not a name to look up again.
        if not isinstance(data, Mapping) or not isinstance(data.get("topology"), str | Path):
            return data
        data = dict(data)
        try:
            topology = resolve_topology(data["topology"], nodes=int(data.get("nodes", 5)),
                                        link=str(data.get("link", "edge")))
        except (TopologyError, ValueError) as exc:
            raise ValueError(f"topology: {exc}") from None
        given = data.get("nodes")
        if given is not None and int(given) != len(topology.nodes):
            raise ValueError(f"nodes is {given} but topology {topology.name!r} has "
                             f"{len(topology.nodes)} nodes; leave nodes unset or make them agree")
        data["nodes"] = len(topology.nodes)
        data["topology"] = topology
        return data

    @model_validator(mode="after")
    def _topology_backend(self, info: ValidationInfo) -> ExperimentConfig:
        if _recorded(info) or self.topology is None:
            return self
        if self.backend == "kubernetes":
            raise ValueError("topology: the kubernetes backend reads its nodes, their labels "
                             "and its network from the cluster; --topology is for the "
                             "emulated cluster (local, kwok)")
        if len(self.topology.nodes) != self.nodes:
            raise ValueError(f"nodes is {self.nodes} but the topology has "
                             f"{len(self.topology.nodes)} nodes")
        return self

    @model_serializer(mode="wrap")
    def _drop_unset_topology(self, handler: SerializerFunctionWrapHandler,
                             info: SerializationInfo) -> Any:
        # Without a topology a record looks exactly as before the setting existed.
        out = handler(self)
        if isinstance(out, dict) and out.get("topology", 0) is None:
            del out["topology"]
        if isinstance(out, dict) and out.get("scheduler_options", 0) == {}:
            del out["scheduler_options"]  # likewise without scheduler options
        return out

    @model_validator(mode="before")
    @classmethod
    def _default_items(cls, data: Any, info: ValidationInfo) -> Any:
        # Items left unset (or null) default to the paper's on the Settlers graph and to
        # picks from the graph on any other economy, so defaults and presets work with
        # every valid economy. A preset passes its paper items as context "paper_items".
        if not isinstance(data, Mapping) or data.get("items") is not None:
            return data
        data = {k: v for k, v in data.items() if k != "items"}
        context = info.context if isinstance(info.context, Mapping) else {}
        try:
            economy = load_economy(data.get("economy"))
        except (EconomyError, TypeError):
            return data  # validation reports it, naming the setting
        if is_paper_economy(economy):
            data["items"] = list(context.get("paper_items") or DEFAULT_ITEMS)
        else:
            data["items"] = [p.item for p in representative_items(economy)]
        return data

    @model_validator(mode="after")
    def _items_in_economy(self, info: ValidationInfo) -> ExperimentConfig:
        if _recorded(info):
            return self
        economy = self.load_economy()
        if self.items != "all":
            missing = [i for i in self.items if i not in economy]
            if missing:
                raise ValueError(
                    f"items not in economy {economy.name!r}: {', '.join(missing)}; "
                    f"known: {', '.join(economy.names)}"
                )
            if not self.items:
                raise ValueError("items must not be empty (or say 'all')")
        return self

    def load_economy(self) -> Economy:
        try:
            return load_economy(self.economy)
        except EconomyError as exc:
            raise ValueError(f"economy: {exc}") from exc

    def item_list(self) -> list[str]:
        """The items to order, in the economy's topological order when 'all'."""
        return self.load_economy().names if self.items == "all" else list(self.items)

    def items_origin(self) -> ItemsOrigin:
        """How the items relate to the defaults, as the manifest and the report say it.

        Read from the settings alone, so a stored config tells the same.
        """
        if self.items == "all":
            return ItemsOrigin(how="given")
        economy = self.load_economy()
        if is_paper_economy(economy):
            paper = self.items in (DEFAULT_ITEMS, PRESETS["quick"]["items"])
            return ItemsOrigin(how="paper" if paper else "given")
        picks = representative_items(economy)
        if self.items != [p.item for p in picks]:
            return ItemsOrigin(how="given")
        return ItemsOrigin(
            how="derived", economy=economy.name,
            picks=[ItemPick(item=p.item, roles=list(p.roles), why=list(p.why)) for p in picks],
        )


def is_paper_economy(economy: Economy) -> bool:
    """Whether ``economy`` has the shipped Settlers graph, whose items the paper names."""
    return same_graph(economy, _shipped_default())


@functools.cache
def _shipped_default() -> Economy:
    return load_economy(DEFAULT_ECONOMY)


def build_config(
    *,
    preset: str | None = None,
    file: Path | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> ExperimentConfig:
    """Merge defaults < preset < file < overrides (None values in overrides are ignored)."""
    data: dict[str, Any] = {}
    paper_items: list[str] | None = None
    if preset is not None:
        if preset not in PRESETS:
            raise ConfigError(f"unknown preset {preset!r}; known: {', '.join(PRESETS)}")
        data.update(PRESETS[preset])
        # The preset's items are the paper's: kept on the Settlers graph, replaced by
        # picks from the graph on other economies (ExperimentConfig._default_items).
        paper_items = data.pop("items", None)
    if file is not None:
        data.update(_read_file(file))
    data.update({k: v for k, v in (overrides or {}).items() if v is not None})
    return _validate(data, source=str(file) if file else "command line",
                     context={"paper_items": paper_items})


def _read_file(path: Path) -> dict[str, Any]:
    return read_mapping(path, "experiment file", ConfigError,
                        "an experiment file must be a mapping of settings", empty_ok=True)


def _validate(
    data: Mapping[str, Any], *, source: str, context: Mapping[str, Any] | None = None,
) -> ExperimentConfig:
    try:
        return ExperimentConfig.model_validate(dict(data), context=dict(context or {}))
    except ValidationError as exc:
        lines = []
        for where, msg, kind in problems(exc):
            if kind == "extra_forbidden":
                known = ", ".join(ExperimentConfig.model_fields)
                msg = f"unknown setting (known settings: {known})"
            lines.append(f"  {where or 'experiment'}: {msg}")
        raise ConfigError(f"invalid experiment ({source}):\n" + "\n".join(lines)) from None


_DURATION = re.compile(r"(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s)?")


def parse_duration(value: Any) -> float:
    """Seconds from a number (seconds) or a text like ``30m``, ``1h30m``, ``90s``, ``45``."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a duration")
    if isinstance(value, int | float):
        return float(value)
    text = str(value).strip().lower().replace(" ", "")
    try:
        return float(text)
    except ValueError:
        pass
    match = _DURATION.fullmatch(text)
    if not text or match is None or not any(match.groups()):
        raise ValueError(f"{value!r} is not a duration: give seconds or e.g. 30m, 1h30m, 90s")
    h, m, s = (float(g) if g else 0.0 for g in match.groups())
    return h * 3600 + m * 60 + s


def _configures_real_plugins(name: str) -> bool:
    """Whether ``name``'s real counterpart is configured from the policy's options (a
    "plugins" counterpart with a setup: its objects and profile come from them)."""
    from schedulers.registry import UnknownPolicyError, policy_spec

    try:
        found = policy_spec(name).kubernetes
    except UnknownPolicyError:
        return False
    return found is not None and found.kind == "plugins" and found.setup is not None


def _option_value(policy: str, key: str, value: Any, default: Any) -> Any:
    """A scheduler option typed as its default is (an int stays an int: 2, not 2.0)."""
    kind = type(default)
    if default is None or kind not in (bool, int, float) or type(value) is kind:
        return value
    if kind is bool and str(value).lower() in ("true", "false"):
        return str(value).lower() == "true"
    try:
        number = float(value)
        if kind is int and number.is_integer() and not isinstance(value, bool):
            return int(number)
        if kind is float and not isinstance(value, bool):
            return number
    except (TypeError, ValueError):
        pass
    wanted = {bool: "true or false", int: "a whole number", float: "a number"}[kind]
    raise ValueError(f"{policy} option {key}={value!r}: expected {wanted} "
                     f"(default {default!r})")


def _recorded(info: ValidationInfo) -> bool:
    return isinstance(info.context, Mapping) and bool(info.context.get("recorded"))

