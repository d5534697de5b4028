"""Policies by name, as kube-scheduler's in-tree registry maps plugin names to factories."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from schedulers.framework import Policy
from schedulers.policies import firmament, kube_default, netmarks, optimal, random_policy
from schedulers.traffic import TrafficMatrix

__all__ = ["UnknownPolicyError", "available_policies", "get_policy", "uses_traffic"]


class UnknownPolicyError(ValueError):
    """No policy of that name; the message lists the known ones."""


def _kube_default(traffic: TrafficMatrix | None, seed: int | None, **opts: Any) -> Policy:
    del traffic  # kube_default does not look at traffic
    return kube_default.new(seed=seed, **opts)


def _random(traffic: TrafficMatrix | None, seed: int | None, **opts: Any) -> Policy:
    del traffic
    return random_policy.new(seed=seed, **opts)


def _with_traffic(factory: Callable[..., Policy]) -> Callable[..., Policy]:
    def make(traffic: TrafficMatrix | None, seed: int | None, **opts: Any) -> Policy:
        return factory(traffic=traffic, seed=seed, **opts)
    return make


_REGISTRY: dict[str, Callable[..., Policy]] = {
    kube_default.NAME: _kube_default,
    netmarks.NAME: _with_traffic(netmarks.new),
    firmament.NAME: _with_traffic(firmament.new),
    random_policy.NAME: _random,
    optimal.NAME: _with_traffic(optimal.new),
}
_TRAFFIC_AWARE = {netmarks.NAME, firmament.NAME, optimal.NAME}


def available_policies() -> list[str]:
    return list(_REGISTRY)


def uses_traffic(name: str) -> bool:
    return name in _TRAFFIC_AWARE


def get_policy(name: str, *, traffic: TrafficMatrix | None = None, seed: int | None = None,
               **opts: Any) -> Policy:
    """A fresh policy; ``opts`` go to the policy's ``new()`` (e.g. ``weight=2`` for netmarks)."""
    try:
        factory = _REGISTRY[name]
    except KeyError:
        raise UnknownPolicyError(
            f"unknown scheduler {name!r}; available: {', '.join(_REGISTRY)}") from None
    try:
        return factory(traffic, seed, **opts)
    except TypeError as exc:
        raise ValueError(f"{name}: bad option(s) {sorted(opts)}: {exc}") from None
