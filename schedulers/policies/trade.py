"""trade: a TraDE-style mapper, greedy placement by traffic x delay between nodes.

TraDE (Chen, Islam, Rodriguez Read, Buyya; IEEE TPDS 37(1), 2026; arXiv 2411.05323)
re-places running microservices when QoS is violated. Its mapper, PGA (parallel greedy
algorithm), is what this policy takes over. What is sourced, and from where:

From the paper's own description (abstract; the authors' repository README,
Cloudslab/TraDE, "PGA Mapper" and "Placement"):

* the cost of a placement is the traffic between two services times the delay between
  the nodes that host them, summed over all communicating pairs; traffic is
  *bidirectional* (both call directions count) and delay is *measured* between nodes;
* the search respects node capacities (CPU, memory);
* it prioritises high-stress (high-traffic) pairs and evaluates candidate placements
  in parallel, greedily.

From the authors' code, not the paper's text (read for facts only: Cloudslab/TraDE
``TraDE_v4.py``, MingCHEN-Github/TraDE ``PGA_Mapper/TraDE_v3.py``):

* the objective is ``sum_(i,j) T(i->j) * D(P(i),P(j)) + T(j->i) * D(P(j),P(i))``
  (v4, with equal weights 0.5 for the two directions: a scale, irrelevant to the
  argmin) with one-way delays; v3 uses the average of the two directions;
* pairs are sorted by stress ``T(i->j) + T(j->i)``, highest first;
* capacity is a *penalty* (10 000 x the CPU overflow) added to the cost, not a hard
  limit; the placement unit is a whole Deployment (every replica pinned to one node
  with a nodeSelector), and the search starts from the current placement and moves
  one high-stress pair at a time (first improvement), chunks of pairs in parallel.

This project's own choices (the paper leaves them open, or this testbed needs them):

* **Unit: pods, not Deployments.** The testbed places replicas; one pod pair's traffic
  is its workloads' traffic shared evenly over their pod pairs
  (``T(w,v) / (replicas_w * replicas_v)``, as the firmament model does).
* **Both directions as one.** The testbed's traffic matrix counts each call's request
  and response together (``TrafficMatrix.get``), not bytes per direction, so a pair's
  cost is its traffic both ways (``between``) times the mean of the two one-way
  delays: v4's objective exactly when delays are symmetric (every topology here), v3's
  otherwise.
* **Capacity is hard.** A pod goes only where it fits (CPU, memory, pod count) and
  passes the static filters (unschedulable nodes, node affinity, taints); one that
  fits nowhere is reported unschedulable, like every other policy's.
* **Construction, then improvement.** There is no "current placement" for a new
  Deployment, so pods are first placed one at a time, each on the node where it adds
  the least traffic x delay to the pods already placed (running pods included), in
  the paper's order: workloads by their first appearance in the stress-sorted pair
  list, then workloads without traffic by name; pods of a workload by name. Never the
  order pods arrive in: the kwok binder sees them in the API's list order, the model
  in creation order, and both must place alike. Then up to ``passes``
  improvement passes move single pods (not pairs) to a cheaper node while that lowers
  the cost; running pods never move here (TraDE's make-before-break rescheduler is
  the trade rebalancer, ``schedulers.rebalancers.trade``). Sequential, not parallel:
  same result every time.
* **Ties** (equal cost, e.g. every node before any partner is placed, or no traffic
  at all): ``ties="spread"`` (default) the least utilised node (dominant share of CPU
  and memory requests after placing), ``"pack"`` the most utilised, ``"random"`` a
  seeded uniform draw; remaining ties go to the node name in natural order
  (node-2 before node-10), so the model and the kwok binder agree whatever order the
  API lists nodes in.
* **Delays.** ``delays="network"`` (default) uses the one-way delay the harness hands
  over (``schedulers.network``: the topology's, e.g. zones: 0.1 ms same zone, 1.5 ms
  across); ``"flat"`` ignores it (every cross-node pair alike: the traffic-only
  ablation). A cross-node pair never costs less than ``min_delay_ms`` (0.1 ms): TraDE
  measures delay with HTTP requests between pods on different nodes, which is never 0,
  so a network that reports 0 ms (the flat default without a topology) still makes
  crossing a node cost something. On a flat network the mapper therefore reduces to
  traffic-only co-location. A node the network does not know counts as the farthest
  known one.
* **No traffic:** every node ties, so the tie rule alone places: with ``spread`` a
  balanced layout (least utilised first), deterministic.
"""

from __future__ import annotations

import contextlib
import random
import re
import time
from collections import Counter
from collections.abc import Sequence
from typing import Literal

import numpy as np

from schedulers.classes import allowed_mask, pod_classes
from schedulers.framework import ScheduleResult
from schedulers.model import Node, Pod
from schedulers.network import NodeNetwork
from schedulers.spec import KubernetesCounterpart, PolicySpec
from schedulers.state import ClusterState, nonzero_requests
from schedulers.traffic import TrafficMatrix

__all__ = ["DEFAULT_MIN_DELAY_MS", "NAME", "SPEC", "TIES", "Mapper", "TradePolicy", "new",
           "stress_order"]

NAME = "trade"
SPEC = PolicySpec(
    NAME, "TraDE-style greedy mapper: traffic x delay between nodes, capacity-aware",
    uses_traffic=True, uses_network=True,
    kubernetes=KubernetesCounterpart(
        "trade", "custom", "trade binder",
        # As firmament's: wait for a redeployment's pods to stop arriving, then place
        # them as one batch, as the model does.
        host_command=("trade", "--interval", "0.2", "--settle", "0.5")),
    # Dynamic scenarios: make-before-break moves that lower traffic x delay.
    rebalancer="trade",
)

Ties = Literal["spread", "pack", "random"]
TIES: tuple[Ties, ...] = ("spread", "pack", "random")
Delays = Literal["network", "flat"]
DEFAULT_MIN_DELAY_MS = 0.1
# Costs closer than this (relative) are ties: float sums differ in the last bits.
_TIE = 1e-9


def stress_order(traffic: TrafficMatrix, workloads: Sequence[str]) -> list[str]:
    """``workloads`` in PGA's order: by first appearance in the pair list sorted by
    stress (both directions' traffic, highest first; ties by name), then the rest by
    name. Never the given order: a binder sees pods in the API's list order, the model
    in creation order, and both must place alike."""
    known = set(workloads)
    pairs = sorted(((r, a, b) for a in known for b, r in traffic.neighbours(a).items()
                    if a < b and b in known and r > 0), key=lambda t: (-t[0], t[1], t[2]))
    out: dict[str, None] = {}
    for _, a, b in pairs:
        out.setdefault(a)
        out.setdefault(b)
    for w in sorted(known, key=_natural):
        out.setdefault(w)
    return list(out)


def _natural(name: str) -> tuple[object, ...]:
    """node-2 before node-10."""
    return tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", name))


class TradePolicy:
    name = NAME

    def __init__(self, traffic: TrafficMatrix | None = None,
                 network: NodeNetwork | None = None, *, seed: int | None = None,
                 passes: int = 2, ties: Ties = "spread", delays: Delays = "network",
                 min_delay_ms: float = DEFAULT_MIN_DELAY_MS) -> None:
        if passes < 0:
            raise ValueError(f"trade: passes must be >= 0, got {passes}")
        if ties not in TIES:
            raise ValueError(f"trade: ties must be one of {', '.join(TIES)}, got {ties!r}")
        if delays not in ("network", "flat"):
            raise ValueError(f"trade: delays must be 'network' or 'flat', got {delays!r}")
        if not min_delay_ms > 0:
            raise ValueError(f"trade: min_delay_ms must be > 0, got {min_delay_ms}")
        self.traffic = traffic if traffic is not None else TrafficMatrix()
        self.network = network if network is not None and delays == "network" \
            else NodeNetwork.flat()
        self.passes = passes
        self.ties: Ties = ties
        self.min_delay_ms = float(min_delay_ms)
        self.rng = random.Random(seed)
        self.deterministic = ties != "random"

    # -- inputs as arrays ------------------------------------------------------------
    def delay_matrix(self, names: Sequence[str]) -> np.ndarray:
        """(N, N) one-way delay in ms, 0 on the diagonal, at least min_delay_ms elsewhere."""
        n = len(names)
        net = self.network
        if not net.links:  # flat: one link for every pair
            base = net.default.delay_ms if net.default is not None else 0.0
            d = np.full((n, n), max(base, self.min_delay_ms))
        else:
            d = np.full((n, n), np.nan)
            for i, a in enumerate(names):
                for j, b in enumerate(names):
                    # A node the network does not know stays NaN: the farthest, below.
                    if i != j:
                        with contextlib.suppress(KeyError):
                            d[i, j] = net.delay_ms(a, b)
            known = d[~np.isnan(d)]
            d[np.isnan(d)] = known.max() if known.size else 0.0
            d = np.maximum(d, self.min_delay_ms)
        np.fill_diagonal(d, 0.0)
        return d

    def mapper(self, nodes: Sequence[Node], pods: Sequence[Pod]
               ) -> tuple[Mapper, dict[str, int]]:
        """An empty mapper over ``nodes`` for a placement holding ``pods`` (each pod's
        share of its workload's traffic depends on how many replicas there are), and the
        mapper's row for each workload. Also what the trade rebalancer improves with."""
        names = [n.name for n in nodes]
        if len(set(names)) != len(names):
            raise ValueError("node names must be unique")
        workloads = list(dict.fromkeys(p.workload for p in pods))
        widx = {w: i for i, w in enumerate(workloads)}
        replicas = np.zeros(len(workloads))
        for p in pods:
            replicas[widx[p.workload]] += 1
        # S[a, b]: bytes/s one pod of a exchanges with one pod of b, both directions.
        s = self.traffic.dense(workloads) / np.outer(replicas, replicas)
        return Mapper(self, nodes, s, self.delay_matrix(names)), widx

    def schedule(self, pods: Sequence[Pod], nodes: Sequence[Node], *,
                 running: Sequence[tuple[Pod, str]] = ()) -> ScheduleResult:
        start = time.perf_counter()
        names = [n.name for n in nodes]
        index = {name: i for i, name in enumerate(names)}
        m, widx = self.mapper(nodes, [*pods, *(p for p, _ in running)])
        for p, node in running:
            m.place(p, widx[p.workload], index[node])

        order_w = stress_order(self.traffic, list({p.workload: None for p in pods}))
        by_w: dict[str, list[Pod]] = {}
        for p in sorted(pods, key=lambda p: _natural(p.name)):  # not the input's order
            by_w.setdefault(p.workload, []).append(p)
        queue = [p for w in order_w for p in by_w[w]]
        classes = pod_classes(queue)
        # The static filters (unschedulable, node affinity, taints) read no bound pods.
        allowed = allowed_mask(classes, ClusterState(nodes))
        cls_of = {p.name: e for e, c in enumerate(classes) for p in c.pods}

        where: dict[str, int] = {}
        order: list[str] = []
        waiting: list[Pod] = []
        for p in queue:
            n = m.best(p, widx[p.workload], allowed[cls_of[p.name]])
            if n is None:
                waiting.append(p)
                continue
            m.place(p, widx[p.workload], n)
            where[p.name] = n
            order.append(p.name)

        moves = passes = 0
        for _ in range(self.passes):
            passes += 1
            moved = 0
            for p in queue:
                if p.name not in where:
                    continue
                w, here = widx[p.workload], where[p.name]
                m.remove(p, w, here)
                n = m.best(p, w, allowed[cls_of[p.name]], current=here)
                n = here if n is None else n
                m.place(p, w, n)
                if n != here:
                    where[p.name] = n
                    moved += 1
            moves += moved
            if not moved:
                break
        # Moves may have made room for a pod that fitted nowhere at its turn.
        unschedulable: list[str] = []
        for p in waiting:
            n = m.best(p, widx[p.workload], allowed[cls_of[p.name]])
            if n is None:
                unschedulable.append(p.name)
                continue
            m.place(p, widx[p.workload], n)
            where[p.name] = n
            order.append(p.name)
        assignments = {name: names[n] for name, n in where.items()}
        return ScheduleResult(
            {p.name: assignments[p.name] for p in pods if p.name in assignments},
            unschedulable, time.perf_counter() - start, order=order,
            info={"traffic_x_delay": m.objective(), "passes": passes, "moves": moves,
                  "delays": self.network.source})


class Mapper:
    """The placement being built: free resources per node and, for every workload, the
    traffic x delay one more pod of it would add on each node (kept current on every
    place/remove, so choosing a node is one row read)."""

    def __init__(self, policy: TradePolicy, nodes: Sequence[Node], s: np.ndarray,
                 d: np.ndarray) -> None:
        self.policy = policy
        self.s = s
        # A pair's bytes flow both ways: its delay is the mean of the two directions.
        self.d = (d + d.T) / 2
        self.cost = np.zeros((s.shape[0], len(nodes)))  # (W, N)
        self.cpu = np.array([n.cpu_m for n in nodes], np.int64)
        self.mem = np.array([n.memory for n in nodes], np.int64)
        self.free_cpu = self.cpu.copy()
        self.free_mem = self.mem.copy()
        self.free_pods = np.array([n.max_pods for n in nodes], np.int64)
        self.nz_cpu = np.zeros(len(nodes))
        self.nz_mem = np.zeros(len(nodes))
        by_name = sorted(range(len(nodes)), key=lambda i: _natural(nodes[i].name))
        self.rank = np.empty(len(nodes), np.int64)  # a node's place in natural name order
        self.rank[by_name] = np.arange(len(nodes))
        # How many pods of workload w are on node n, for the objective.
        self.placed: Counter[tuple[int, int]] = Counter()
        # The workloads each one exchanges traffic with (the rows a placement changes).
        self.partners = [np.nonzero(s[w] > 0)[0] for w in range(len(s))]

    def _account(self, pod: Pod, w: int, n: int, sign: int) -> None:
        self.free_cpu[n] -= sign * pod.cpu_m
        self.free_mem[n] -= sign * pod.memory
        self.free_pods[n] -= sign
        cpu, mem = nonzero_requests(pod)
        self.nz_cpu[n] += sign * cpu
        self.nz_mem[n] += sign * mem
        # A pod of w on n: a pod of v on x pays S[v, w] * D[x, n]; only w's partners
        # have a non-zero S.
        v = self.partners[w]
        if len(v):
            self.cost[v] += sign * np.outer(self.s[v, w], self.d[:, n])
        self.placed[(w, n)] += sign

    def place(self, pod: Pod, w: int, n: int) -> None:
        self._account(pod, w, n, +1)

    def remove(self, pod: Pod, w: int, n: int) -> None:
        self._account(pod, w, n, -1)

    def best(self, pod: Pod, w: int, allowed: np.ndarray, current: int | None = None
             ) -> int | None:
        """The cheapest node ``pod`` fits on (None: none); ``current`` wins its ties."""
        fits = (allowed & (self.free_pods >= 1) & (self.free_cpu >= pod.cpu_m)
                & (self.free_mem >= pod.memory))
        if not fits.any():
            return None
        cost = np.where(fits, self.cost[w], np.inf)
        low = cost.min()
        tied = np.nonzero(cost <= low + _TIE * max(abs(low), 1.0))[0]
        if current is not None and current in tied:
            return current  # move only for a strict gain
        if len(tied) == 1:
            return int(tied[0])
        ties = self.policy.ties
        if ties == "random":
            return int(self.policy.rng.choice(tied[np.argsort(self.rank[tied])].tolist()))
        cpu, mem = nonzero_requests(pod)
        with np.errstate(divide="ignore", invalid="ignore"):
            share = np.maximum(
                np.where(self.cpu[tied] > 0, (self.nz_cpu[tied] + cpu) / self.cpu[tied], 0.0),
                np.where(self.mem[tied] > 0, (self.nz_mem[tied] + mem) / self.mem[tied], 0.0))
        sign = 1.0 if ties == "spread" else -1.0
        # Least (spread) or most (pack) utilised, then the lowest name.
        return int(tied[np.lexsort((self.rank[tied], sign * share))[0]])

    def objective(self) -> float:
        """Total traffic x delay (bytes/s x ms) of the placement: each pod's cost counts
        every pair it is in, so the pair sum is half the pods' sum."""
        return float(sum(k * self.cost[w, n] for (w, n), k in self.placed.items()) / 2)


def new(*, traffic: TrafficMatrix | None = None, network: NodeNetwork | None = None,
        seed: int | None = None, passes: int = 2, ties: Ties = "spread",
        delays: Delays = "network", min_delay_ms: float = DEFAULT_MIN_DELAY_MS
        ) -> TradePolicy:
    return TradePolicy(traffic, network, seed=seed, passes=passes, ties=ties, delays=delays,
                       min_delay_ms=min_delay_ms)
