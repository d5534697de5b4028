"""Which real scheduler stands for a policy on a Kubernetes control plane: read from the
policy table (``schedulers.registry``, each policy's ``SPEC.kubernetes``), plus the
schedulers and extenders a user names for one run (``ExperimentConfig.counterparts``).

The kwok and kubernetes backends ask here per policy instead of keeping maps of their
own: a policy whose module declares a counterpart runs on both with no edit to them.
Lookups import only the policy asked about (the batch solvers pull in OR-Tools).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import cache
from types import MappingProxyType

from harness.backends.base import BackendUnavailable
from schedulers.registry import (
    PluginError,
    UnknownPolicyError,
    available_policies,
    builtin_policies,
    policy_spec,
)
from schedulers.spec import KubernetesCounterpart

__all__ = [
    "NO_EXTRA",
    "chart_keys",
    "chart_scheduler_name",
    "counterpart",
    "require_counterpart",
    "scheduler_names",
]

# No user-named schedulers: the table alone.
NO_EXTRA: Mapping[str, KubernetesCounterpart] = MappingProxyType({})


def counterpart(policy: str, extra: Mapping[str, KubernetesCounterpart] = NO_EXTRA
                ) -> KubernetesCounterpart | None:
    """The real scheduler for ``policy`` (``extra`` first), None for a model only or an
    unknown name."""
    if policy in extra:
        return extra[policy]
    try:
        return policy_spec(policy).kubernetes
    except UnknownPolicyError:
        return None


def require_counterpart(policy: str, extra: Mapping[str, KubernetesCounterpart],
                        backend: str) -> KubernetesCounterpart:
    """``counterpart(policy)``, or BackendUnavailable naming the policies that have one."""
    found = counterpart(policy, extra)
    if found is None:
        choices = [*_with_counterpart(available_policies()), *extra]
        raise BackendUnavailable(
            f"{policy} has no real-scheduler counterpart on the {backend} backend; choose "
            f"from {', '.join(choices)}, name your own scheduler (--external-scheduler "
            "NAME=SCHEDULER_NAME, --external-extender NAME=URL) or use --backend local")
    return found


def chart_scheduler_name(found: KubernetesCounterpart) -> str:
    """The chart's ``schedulerName`` value: "" (unset: the cluster's default-scheduler)
    for kube-scheduler's default profile, else the counterpart's schedulerName."""
    return "" if found.kind == "default" else found.scheduler_name


def scheduler_names(policies: Iterable[str],
                    extra: Mapping[str, KubernetesCounterpart] = NO_EXTRA, *,
                    chart: bool = False) -> dict[str, str]:
    """policy -> the schedulerName its pods carry, for those of ``policies`` that have a
    counterpart (``chart``: as the chart's value, "" for the default profile)."""
    out: dict[str, str] = {}
    for policy in policies:
        found = counterpart(policy, extra)
        if found is not None:
            out[policy] = chart_scheduler_name(found) if chart else found.scheduler_name
    return out


@cache
def chart_keys() -> tuple[str, ...]:
    """The chart's scheduler components (``<key>.enabled``), from the built-in policies
    (the chart ships only ours). Imports every built-in policy module, once."""
    keys = (counterpart(p) for p in builtin_policies())
    return tuple(dict.fromkeys(c.chart_key for c in keys if c is not None and c.chart_key))


def _with_counterpart(policies: Iterable[str]) -> list[str]:
    out = []
    for policy in policies:
        try:
            if counterpart(policy) is not None:
                out.append(policy)
        except (PluginError, RuntimeError):
            continue  # a broken plug-in is reported where it is asked for
    return out
