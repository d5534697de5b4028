"""The order app in the cluster: the chart's order-app Job, run once per measurement.

The Job object comes from the chart itself (``helm template --show-only``), so the
harness and a user running ``orderApp.enabled=true`` by hand run the very same pod.
It is created through the API under a fresh name (not as part of the release: a
measurement must not roll the producers), waited for, and its log - which carries the
raw table between two marker lines - becomes the samples DataFrame.
"""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Sequence
from typing import Any

import pandas as pd

__all__ = ["BEGIN_MARK", "CONTAINER", "END_MARK", "OrderJobError", "job_node", "parse_job_log",
           "wait_job"]

# The order app's container in the chart's Job pods (a sidecar may share the pod, and
# a log read without a container name fails on a pod with two).
CONTAINER = "order-app"

# Written by charts/settlers-testbed/files/order-app-job.sh.
BEGIN_MARK = "=== orders.csv begin ==="
END_MARK = "=== orders.csv end"


class OrderJobError(RuntimeError):
    """The order Job failed or its log has no results; the message quotes the log."""


def parse_job_log(log: str) -> pd.DataFrame:
    """The order table from an order-app Job's log (CSV between the marker lines)."""
    lines = log.splitlines()
    try:
        start = next(i for i, line in enumerate(lines) if line.strip() == BEGIN_MARK)
        end = next(i for i in range(start + 1, len(lines)) if lines[i].startswith(END_MARK))
    except StopIteration:
        raise OrderJobError(
            "the order-app Job's log has no results table (no marker lines); last lines:\n"
            + _tail(log)
        ) from None
    body = "\n".join(lines[start + 1:end])
    if not body.strip():
        raise OrderJobError("the order-app Job wrote an empty results table; log:\n" + _tail(log))
    # keep_default_na=False: an empty error column means "no error", not NaN.
    frame = pd.read_csv(io.StringIO(body), keep_default_na=False,
                        dtype={"error": str, "pods": str, "trace": str, "item": str})
    if "ok" in frame and frame["ok"].dtype != bool:
        frame["ok"] = frame["ok"].astype(str).str.lower() == "true"
    return frame


def wait_job(batch: Any, core: Any, namespace: str, name: str, *, timeout_s: float,
             poll_s: float = 0.5, cancelled: threading.Event | None = None) -> str:
    """Wait for Job ``name`` to finish; return its pod's log (raise if it failed, timed
    out, or ``cancelled`` was set)."""
    deadline = time.monotonic() + timeout_s
    while True:
        job = batch.read_namespaced_job_status(name, namespace)
        status = job.status
        if status.succeeded:
            return _pod_log(core, namespace, name)
        if status.failed:
            log = _pod_log(core, namespace, name)
            raise OrderJobError(f"order-app Job {namespace}/{name} failed; log:\n{_tail(log)}")
        if time.monotonic() > deadline:
            raise OrderJobError(
                f"order-app Job {namespace}/{name} did not finish in {timeout_s:.0f} s "
                f"(active pods: {status.active or 0}); is the image pullable? "
                f"`kubectl -n {namespace} describe job {name}`"
            )
        if (cancelled or threading.Event()).wait(poll_s):
            raise OrderJobError(f"order-app Job {namespace}/{name}: cancelled")


def job_node(core: Any, namespace: str, job: str) -> str:
    """The node the Job's (newest) pod ran on: its traffic's source node."""
    node: str = _newest_pod(core, namespace, job, "a node").spec.node_name or ""
    return node


def _newest_pod(core: Any, namespace: str, job: str, what: str) -> Any:
    pods: Sequence[Any] = core.list_namespaced_pod(
        namespace, label_selector=f"job-name={job}").items
    if not pods:
        raise OrderJobError(f"order-app Job {namespace}/{job} has no pod to read {what} of")
    return max(pods, key=lambda p: p.metadata.creation_timestamp)


def _pod_log(core: Any, namespace: str, job: str) -> str:
    newest = _newest_pod(core, namespace, job, "the log")
    log: str = core.read_namespaced_pod_log(newest.metadata.name, namespace,
                                            container=CONTAINER)
    return log


def _tail(text: str, lines: int = 20) -> str:
    return "\n".join(text.strip().splitlines()[-lines:]) or "(empty)"
