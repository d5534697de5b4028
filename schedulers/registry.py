"""Policies by name, as kube-scheduler's in-tree registry maps plugin names to factories."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from schedulers.framework import Policy
from schedulers.traffic import TrafficMatrix

__all__ = ["UnknownPolicyError", "available_policies", "get_policy", "uses_traffic"]

# name -> (module, takes traffic). Modules load on first use: the batch solvers pull
# in numpy and OR-Tools, which the extender process never needs.
_REGISTRY: dict[str, tuple[str, bool]] = {
    "kube_default": ("schedulers.policies.kube_default", False),
    "netmarks": ("schedulers.policies.netmarks", True),
    "firmament": ("schedulers.policies.firmament", True),
    "random": ("schedulers.policies.random_policy", False),
    "optimal": ("schedulers.policies.optimal", True),
}


class UnknownPolicyError(ValueError):
    """No policy of that name; the message lists the known ones."""


def available_policies() -> list[str]:
    return list(_REGISTRY)


def uses_traffic(name: str) -> bool:
    return _REGISTRY.get(name, ("", False))[1]


def get_policy(name: str, *, traffic: TrafficMatrix | None = None, seed: int | None = None,
               **opts: Any) -> Policy:
    """A fresh policy; ``opts`` go to the policy's ``new()`` (e.g. ``weight=2`` for netmarks)."""
    try:
        module_name, takes_traffic = _REGISTRY[name]
    except KeyError:
        raise UnknownPolicyError(
            f"unknown scheduler {name!r}; available: {', '.join(_REGISTRY)}") from None
    module = importlib.import_module(module_name)
    if name != module.NAME:
        raise RuntimeError(f"{module_name} registers as {module.NAME!r}, not {name!r}")
    factory: Callable[..., Policy] = module.new
    if takes_traffic:
        opts["traffic"] = traffic
    try:
        return factory(seed=seed, **opts)
    except TypeError as exc:
        raise ValueError(f"{name}: bad option(s) {sorted(opts)}: {exc}") from None
