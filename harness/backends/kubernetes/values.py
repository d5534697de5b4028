"""Chart values for one phase of an experiment: which scheduler places the producers,
or which nodes they are pinned to, for a given economy and wire protocol.

The harness owns these keys and renders them into a values file on top of the
user's own values files (image, Istio, Prometheus, ...), so a user can still
configure everything else the chart offers.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from harness.backends.k8s.counterparts import chart_keys
from harness.backends.kubernetes.options import HARNESS_OWNER
from schedulers.model import workload_of_pod_name
from settlers.economy import Economy
from settlers.wire import WireProtocol

__all__ = [
    "PhaseValues",
    "economy_values",
    "pins_by_item",
]

def economy_values(economy: Economy) -> dict[str, Any]:
    """The economy as chart values: the graph, plus replicas and requests per item."""
    return {
        "economy": {
            "name": economy.name,
            "description": economy.description,
            "items": {
                item.name: ({"inputs": dict(item.inputs)} if item.inputs else {})
                | ({"work_ms": item.work_ms} if item.work_ms else {})
                for item in economy
            },
        },
        "items": {
            item.name: {
                "replicas": item.replicas,
                "resources": {"requests": item.resources.as_k8s()},
            }
            for item in economy
        },
    }


def pins_by_item(placement: Mapping[str, str]) -> dict[str, list[str]]:
    """``{"coal-0": "node-2", "coal-1": "node-1"}`` -> ``{"coal": ["node-2", "node-1"]}``.

    Replicas of one item are interchangeable, so only the multiset of nodes matters;
    the pod index order is kept for readability.
    """
    out: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for pod, node in placement.items():
        item = workload_of_pod_name(pod)
        index = pod[len(item) + 1:]
        out[item].append((int(index) if index.isdigit() else 0, node))
    return {item: [node for _, node in sorted(pods)] for item, pods in out.items()}


@dataclass(frozen=True)
class PhaseValues:
    """Everything the harness sets in the chart for one phase."""

    economy: Economy
    protocol: WireProtocol = "http"
    # The producers' schedulerName ("" = unset: the cluster's default-scheduler; see
    # harness.backends.k8s.counterparts.chart_scheduler_name).
    scheduler_name: str = ""
    # pod (<item>-<i>) -> node: pin every producer (measurement); empty = schedule.
    placement: Mapping[str, str] = field(default_factory=dict)
    # The chart's scheduler component to run (a policy's ``chart_key``: netmarks,
    # firmament); every other one is off. None: none of them.
    component: str | None = None
    prometheus_url: str | None = None
    port: int = 8080
    # traffic.since: the in-cluster NetMARKS extender and firmament average the traffic
    # since this time (unix seconds; the warm-up's start). None = the chart's setting.
    traffic_since: float | None = None
    # A scheduling-only phase: producers run the chart's placeholder image, if the
    # user's values give one (the real-node cluster's do), instead of the testbed.
    placeholder: bool = False

    def render(self) -> dict[str, Any]:
        values = economy_values(self.economy)
        values.update(
            protocol=self.protocol,
            port=self.port,
            schedulerName=self.scheduler_name,
            orderApp={"enabled": False},
            # Marks the release as the harness's own (`Release` checks it).
            managedBy=HARNESS_OWNER,
        )
        if self.component is not None and self.component not in chart_keys():
            raise ValueError(f"the chart has no scheduler component {self.component!r}; "
                             f"it has {', '.join(chart_keys())}")
        values.update({key: {"enabled": key == self.component} for key in chart_keys()})
        if self.prometheus_url:
            values["prometheus"] = {"url": self.prometheus_url}
        if self.traffic_since is not None:
            from schedulers.promtraffic import iso_time

            values["traffic"] = {"since": iso_time(self.traffic_since)}
        if self.placeholder and not self.placement:
            values["placeholder"] = {"enabled": True}
        if self.placement:
            pins = pins_by_item(self.placement)
            unknown = sorted(set(pins) - set(self.economy.names))
            if unknown:
                raise ValueError(f"placement names pods of unknown items: {', '.join(unknown)}")
            for item, nodes in pins.items():
                if len(nodes) != self.economy[item].replicas:
                    raise ValueError(
                        f"placement gives {len(nodes)} pod(s) of {item!r}, the economy has "
                        f"{self.economy[item].replicas} replica(s)"
                    )
                values["items"][item]["nodes"] = nodes
        return values
