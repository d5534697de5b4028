"""The one table of policies: name -> the module that says what it is (NAME, SPEC, new()).

As kube-scheduler's in-tree registry maps plugin names to factories. Built-in
policies are one line each in ``_BUILTIN``; policies installed as packages join
through the ``settlers_testbed.policies`` entry point (``schedulers.entrypoints``).
Everything else that lists or describes policies derives from here: the harness's
help texts and known-policy validation, which policies get the traffic matrix,
and the real scheduler that stands for each on the kwok and kubernetes backends
(``PolicySpec.kubernetes``).

Modules load on first use: the batch solvers pull in numpy and OR-Tools, which the
extender process never needs; names come from this table and entry-point metadata.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

from schedulers.entrypoints import InstalledPolicy, PluginError, installed_policies
from schedulers.spec import PolicySpec

if TYPE_CHECKING:
    from schedulers.framework import Policy
    from schedulers.network import NodeNetwork
    from schedulers.traffic import TrafficMatrix
    from settlers.economy import Economy

__all__ = [
    "PluginError",
    "UnknownPolicyError",
    "available_policies",
    "builtin_policies",
    "get_policy",
    "policy_origin",
    "policy_parameters",
    "policy_spec",
    "policy_specs",
    "uses_traffic",
]

# The built-in policies: name -> module. A new model-only policy is its module and
# one line here.
_BUILTIN: dict[str, str] = {
    "kube_default": "schedulers.policies.kube_default",
    "netmarks": "schedulers.policies.netmarks",
    "firmament": "schedulers.policies.firmament",
    "random": "schedulers.policies.random_policy",
    "optimal": "schedulers.policies.optimal",
    "trade": "schedulers.policies.trade",
    "diktyo": "schedulers.policies.diktyo",
}


# What the harness hands a policy's new() itself (not user options).
_INPUTS = ("traffic", "seed", "network", "economy")


class UnknownPolicyError(ValueError):
    """No policy of that name; the message lists the known ones."""


@dataclass(frozen=True)
class _Entry:
    spec: PolicySpec
    new: Callable[..., Policy]


def builtin_policies() -> list[str]:
    """The policies this project ships, in table order (no plug-in lookup)."""
    return list(_BUILTIN)


def available_policies() -> list[str]:
    """Built-in policies, then installed plug-ins by name (their modules stay unloaded)."""
    return [*_BUILTIN, *installed_policies(_BUILTIN)]


def policy_spec(name: str) -> PolicySpec:
    """What ``name`` is (imports its module); UnknownPolicyError / PluginError."""
    return _entry(name).spec


def policy_origin(name: str) -> str:
    """Where ``name`` comes from: "built-in", or its plug-in's entry point and distribution."""
    if name in _BUILTIN:
        return "built-in"
    plugins = installed_policies(_BUILTIN)
    if name not in plugins:
        raise UnknownPolicyError(f"unknown scheduler {name!r}")
    return plugins[name].origin


def policy_specs() -> dict[str, PolicySpec]:
    """Every available policy's spec, in ``available_policies()`` order (imports them all)."""
    return {name: policy_spec(name) for name in available_policies()}


def uses_traffic(name: str) -> bool:
    """Whether ``name`` takes the traffic matrix; False for an unknown name."""
    try:
        return _entry(name).spec.uses_traffic
    except UnknownPolicyError:
        return False


def get_policy(name: str, *, traffic: TrafficMatrix | None = None, seed: int | None = None,
               network: NodeNetwork | None = None, economy: Economy | None = None,
               **opts: Any) -> Policy:
    """A fresh policy; ``opts`` go to the policy's ``new()`` (e.g. ``weight=2`` for netmarks).

    ``traffic``, ``network`` and ``economy`` reach ``new()`` only when the policy's
    SPEC says it uses them, so callers pass whatever they have to every policy.
    """
    entry = _entry(name)
    if entry.spec.uses_traffic:
        opts["traffic"] = traffic
    if entry.spec.uses_network:
        opts["network"] = network
    if entry.spec.uses_economy:
        opts["economy"] = economy
    try:
        return entry.new(seed=seed, **opts)
    except TypeError as exc:
        raise ValueError(f"{name}: bad option(s) {sorted(opts)}: {exc}") from None


def policy_parameters(name: str) -> dict[str, Any]:
    """The options ``name``'s ``new()`` takes besides traffic and seed, with their
    defaults (``{"weight": 1, ...}`` for netmarks); what ``get_policy(name, **opts)``
    accepts."""
    new = _entry(name).new  # UnknownPolicyError for an unknown name
    try:
        params = inspect.signature(new).parameters.values()
    except (TypeError, ValueError):
        return {}
    return {p.name: (None if p.default is p.empty else p.default) for p in params
            if p.name not in _INPUTS and p.kind is p.KEYWORD_ONLY}


def _entry(name: str) -> _Entry:
    if name in _BUILTIN:
        return _builtin(name)
    plugins = installed_policies(_BUILTIN)
    if name not in plugins:
        raise UnknownPolicyError(
            f"unknown scheduler {name!r}; available: {', '.join([*_BUILTIN, *plugins])}")
    return _plugin(plugins[name])


@cache
def _builtin(name: str) -> _Entry:
    module_name = _BUILTIN[name]
    module = importlib.import_module(module_name)
    return _checked(name, module, RuntimeError, module_name)


@cache
def _plugin(plugin: InstalledPolicy) -> _Entry:
    return _checked(plugin.name, plugin.load(), plugin.error, plugin.value)


def _checked(name: str, source: object, error: Callable[[str], Exception],
             where: str) -> _Entry:
    """``source``'s NAME, new() and SPEC, checked against each other and ``name``."""
    found = getattr(source, "NAME", None)
    if not isinstance(found, str):
        raise error(f"{where} has no NAME (a str: the policy's name, {name!r})")
    if found != name:
        raise error(f"{where} registers as {found!r}, not {name!r}")
    new = getattr(source, "new", None)
    if not callable(new):
        raise error(f"{where} has no new() (the factory: new(*, seed=None, ...) -> a Policy)")
    params = _parameters(new)
    spec = getattr(source, "SPEC", None)
    if spec is None:  # a plug-in may leave it out: what it can say is inferred
        doc = (inspect.getdoc(source) or "").strip().splitlines()
        spec = PolicySpec(name, doc[0] if doc else "", uses_traffic="traffic" in params,
                          uses_network="network" in params, uses_economy="economy" in params)
    if not isinstance(spec, PolicySpec):
        raise error(f"{where}.SPEC is a {type(spec).__name__}, not a "
                    "schedulers.spec.PolicySpec")
    if spec.name != name:
        raise error(f"{where}.SPEC names {spec.name!r}, not {name!r}")
    if spec.rebalancer is not None:
        from schedulers.rebalancers import rebalancer_names  # it reads this table

        if spec.rebalancer not in rebalancer_names():
            raise error(f"{where}.SPEC names rebalancer {spec.rebalancer!r}; known: "
                        f"{', '.join(rebalancer_names())}")
    for used, what in ((spec.uses_traffic, "traffic"), (spec.uses_network, "network"),
                       (spec.uses_economy, "economy")):
        if used and not (what in params or "**" in params):
            raise error(f"{where}.SPEC says it uses {what}, but new() takes no {what}=")
    return _Entry(spec, new)


def _parameters(function: Callable[..., object]) -> set[str]:
    """Keyword names ``function`` takes ("**" if any); empty if it has no signature."""
    try:
        params = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):
        return set()
    return {"**" if p.kind is p.VAR_KEYWORD else p.name for p in params}
