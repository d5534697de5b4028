"""What the scenario runner knows about the cluster: nodes (cordoned or not), the running
pods and where they are, and the scheduler that places new and evicted pods.

The emulated cluster knows where processes run; this knows what the *scheduler* sees:
pod requests, node capacities and cordons. Both are kept in step by the runner: every
move changes both, under the move's new pod name.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from schedulers.framework import Policy
    from schedulers.model import Node, Pod
    from schedulers.network import NodeNetwork
    from schedulers.traffic import TrafficMatrix
    from settlers.economy import Economy

__all__ = ["World", "WorldError"]


class WorldError(RuntimeError):
    """The scheduler could not place a pod (the message says which and why)."""


class World:
    def __init__(self, economy: Economy, nodes: Sequence[Node], pods: Sequence[Pod], *,
                 standby: Sequence[str] = ()) -> None:
        self.economy = economy
        # Copies: cordoning here must not touch the placer's nodes.
        self.nodes: dict[str, Node] = {
            n.name: dataclasses.replace(n, unschedulable=n.unschedulable or n.name in standby)
            for n in nodes}
        self.pods: dict[str, Pod] = {p.name: p for p in pods}
        self.placement: dict[str, str] = {}

    def policy(self, scheduler: str, *, traffic: TrafficMatrix | None, seed: int,
               network: NodeNetwork | None, options: Mapping[str, Any]) -> Policy:
        import schedulers

        return schedulers.get_policy(scheduler, traffic=traffic, seed=seed, network=network,
                                     economy=self.economy, **dict(options))

    def node_list(self) -> list[Node]:
        return list(self.nodes.values())

    def running(self, *, without: Sequence[str] = ()) -> list[tuple[Pod, str]]:
        return [(self.pods[p], n) for p, n in self.placement.items() if p not in without]

    def deploy(self, policy: Policy) -> dict[str, str]:
        """Place every pod as a fresh deployment (the day-one layout)."""
        result = policy.schedule(list(self.pods.values()), self.node_list())
        if result.unschedulable:
            raise WorldError(f"{policy.name} left pods unschedulable: "
                             f"{', '.join(result.unschedulable)}")
        self.placement = dict(result.assignments)
        return dict(self.placement)

    def adopt(self, placement: Mapping[str, str]) -> dict[str, str]:
        """Day one as someone else placed it (the real scheduler on kwok)."""
        missing = sorted(set(self.pods) - set(placement))
        if missing:
            raise WorldError(f"the deployment left pods unplaced: {', '.join(missing)}")
        self.placement = {p: placement[p] for p in self.pods}
        return dict(self.placement)

    def place_again(self, policy: Policy, pod: str) -> str:
        """Where ``policy`` puts ``pod`` when it is evicted (the others keep running)."""
        result = policy.schedule([self.pods[pod]], self.node_list(),
                                 running=self.running(without=[pod]))
        if pod not in result.assignments:
            raise WorldError(f"{policy.name} found no node for evicted pod {pod} "
                             "(every other node cordoned or full)")
        return result.assignments[pod]

    def cordon(self, node: str, on: bool = True) -> None:
        self.nodes[node] = dataclasses.replace(self.nodes[node], unschedulable=on)

    def on_node(self, node: str) -> list[str]:
        return sorted(p for p, n in self.placement.items() if n == node)

    def moved(self, pod: str, new_pod: str, node: str) -> None:
        """``pod`` now runs as ``new_pod`` on ``node``."""
        spec = self.pods.pop(pod)
        self.pods[new_pod] = dataclasses.replace(spec, name=new_pod)
        del self.placement[pod]
        self.placement[new_pod] = node
