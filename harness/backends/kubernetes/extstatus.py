"""Did the in-cluster NetMARKS extender see any traffic? Read from its log.

An extender whose Prometheus holds no mesh traffic (wrong URL, the mesh not scraped,
as under kube-prometheus-stack without a PodMonitor) scores every node 0 and never
changes a placement, while its /healthz stays green. It logs a ``netmarks-status``
line (JSON) whenever the traffic it sees appears or vanishes
(`schedulers.extender.traffic_source`); the last one says how it ended. The log,
not GET /status, because the chart's NetworkPolicy lets only the scheduler call it.
"""

from __future__ import annotations

import json
from typing import Any

from schedulers.extender.traffic_source import STATUS_MARK

__all__ = ["describe_status", "last_status", "read_extender_status"]

EXTENDER_SELECTOR = "app.kubernetes.io/component=netmarks-extender"


def last_status(log: str) -> dict[str, Any] | None:
    """The last ``netmarks-status`` JSON of an extender log, None when it has none."""
    found = None
    for line in log.splitlines():
        at = line.find(STATUS_MARK + " {")
        if at < 0:
            continue
        try:
            doc, _ = json.JSONDecoder().raw_decode(line[at + len(STATUS_MARK) + 1:])
        except ValueError:
            continue
        if isinstance(doc, dict):
            found = doc
    return found


def read_extender_status(core: Any, namespace: str, release: str) -> dict[str, Any] | None:
    """The last status of the release's extender (its newest pod's log), or None when it
    logged none (never asked to score) or cannot be read."""
    try:
        pods = core.list_namespaced_pod(
            namespace,
            label_selector=f"app.kubernetes.io/instance={release},{EXTENDER_SELECTOR}").items
        if not pods:
            return None
        newest = max(pods, key=lambda p: p.metadata.creation_timestamp)
        log: str = core.read_namespaced_pod_log(newest.metadata.name, namespace,
                                                container="extender")
    except Exception:  # API errors: the report says the status is unknown
        return None
    return last_status(log)


def describe_status(status: dict[str, Any] | None) -> str | None:
    """A warning for the run's report, or None when the extender saw traffic."""
    if status is None:
        return ("WARNING: the in-cluster NetMARKS extender logged no traffic status: it "
                "was never asked to score a pod, or its log could not be read")
    if status.get("traffic_seen"):
        return None
    return (f"WARNING: the in-cluster NetMARKS extender saw no traffic ({status.get('source')}"
            f"): every score was 0, so NetMARKS did not vote and kube-scheduler placed "
            "alone. Check prometheus.url and that Prometheus scrapes the mesh "
            "(monitors.mesh); the extender's GET /status says more")
