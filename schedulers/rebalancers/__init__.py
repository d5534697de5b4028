"""Rebalancers: what moves running pods for a policy in a dynamic scenario.

    from schedulers.rebalancers import rebalancer_for
    rebalancer = rebalancer_for("netmarks", max_moves=3)   # None: the policy never moves
    moves = rebalancer.plan(running, nodes, traffic)       # [Move(pod, src, dst, reason)]

A policy names its rebalancer in its ``PolicySpec.rebalancer`` (the policy table,
``schedulers.registry``); this is the small table of rebalancers by name, one module
each (``NAME``, ``STRATEGY``, ``SUMMARY``, ``new(...)``), loaded on first use as the
policies are. ``new()`` takes the options (keyword-only, with their defaults) plus the
inputs every rebalancer is handed and may ignore: ``network`` (delays between nodes)
and ``seed``.
"""

from __future__ import annotations

import importlib
import inspect
from types import ModuleType
from typing import TYPE_CHECKING, Any

from schedulers.rebalancers.base import STRATEGIES, Move, Rebalancer, Strategy
from schedulers.registry import policy_spec

if TYPE_CHECKING:
    from schedulers.network import NodeNetwork

__all__ = [
    "STRATEGIES",
    "Move",
    "Rebalancer",
    "Strategy",
    "rebalancer_for",
    "rebalancer_names",
    "rebalancer_options",
    "rebalancer_summary",
]

_BUILTIN: dict[str, str] = {
    "netmarks": "schedulers.rebalancers.netmarks",
    "firmament": "schedulers.rebalancers.firmament",
    "trade": "schedulers.rebalancers.trade",
}
# What the runner hands every rebalancer's new(), not user options.
_INPUTS = ("network", "seed")


def rebalancer_names() -> list[str]:
    """Every rebalancer, in table order."""
    return list(_BUILTIN)


def rebalancer_options(name: str) -> dict[str, Any]:
    """The options rebalancer ``name`` takes, with their defaults."""
    params = inspect.signature(_module(name).new).parameters.values()
    return {p.name: p.default for p in params if p.name not in _INPUTS}


def rebalancer_summary(name: str) -> tuple[Strategy, str]:
    """Rebalancer ``name``'s strategy and one line about it, for policy listings."""
    module = _module(name)
    return module.STRATEGY, module.SUMMARY


def rebalancer_for(policy: str, *, network: NodeNetwork | None = None,
                   seed: int | None = None, **options: Any) -> Rebalancer | None:
    """The rebalancer of ``policy`` (its ``PolicySpec.rebalancer``) with ``options``;
    None when the policy never moves a pod (kube_default, random, optimal, diktyo).

    Options: ``max_moves`` and ``window_s`` for every rebalancer, ``threshold``
    (netmarks), ``migration_weight`` (firmament); see ``rebalancer_options``. A bad
    value or an option the rebalancer does not take is a ValueError naming it; so is an
    option no rebalancer takes, even for a policy without one. ``network`` reaches the
    rebalancers that weigh delays (trade); ``seed`` the ones that break ties at random
    (netmarks). UnknownPolicyError (a ValueError) for an unknown policy.
    """
    name = policy_spec(policy).rebalancer
    if name is None:
        known = {o for r in _BUILTIN for o in rebalancer_options(r)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise ValueError(f"unknown rebalancer option(s) {', '.join(unknown)}; "
                             f"known: {', '.join(sorted(known))}")
        return None
    takes = rebalancer_options(name)
    unknown = sorted(set(options) - set(takes))
    if unknown:
        raise ValueError(f"{name} rebalancer (of policy {policy}) takes no option(s) "
                         f"{', '.join(unknown)}; its options: {', '.join(sorted(takes))}")
    rebalancer: Rebalancer = _module(name).new(network=network, seed=seed, **options)
    return rebalancer


def _module(name: str) -> ModuleType:
    if name not in _BUILTIN:
        raise ValueError(f"unknown rebalancer {name!r}; known: {', '.join(_BUILTIN)}")
    return importlib.import_module(_BUILTIN[name])
