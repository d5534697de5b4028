"""A second, real kube-scheduler instance beside the cluster's default one.

An extender (NetMARKS's, or a user's) is configured in a KubeSchedulerConfiguration's
top-level ``extenders`` list, which applies to every profile of that scheduler. Running
it as a separate kube-scheduler process with its own profile name (the policy's
schedulerName, e.g. ``netmarks-scheduler``) keeps the cluster's ``default-scheduler``
untouched, so the same cluster measures both.
"""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import yaml

from harness.backends.k8s.cluster import KwokCluster
from harness.backends.k8s.process import stop_process, wait_http_ok

__all__ = ["ExtraScheduler", "extender_stanza", "scheduler_config"]


def extender_stanza(
    url: str,
    *,
    weight: int = 1,
    prioritize_verb: str = "prioritize",
    filter_verb: str | None = None,
    node_cache_capable: bool = True,
    ignorable: bool = True,
    http_timeout: str = "5s",
    loopback_only: bool = True,
    bind_verb: str | None = None,
) -> dict[str, Any]:
    """One entry of ``extenders:`` (see k8s.io/kube-scheduler/config/v1 Extender).

    nodeCacheCapable=true makes kube-scheduler send only node names, which is all a
    traffic-based scorer needs (it asks the API or its cache for the pods on them).
    ``loopback_only``: the URL must be on this machine (our own extender process); a
    user's extender may be anywhere this machine reaches. ``bind_verb``: kube-scheduler
    hands each binding to the extender (only one extender may bind).
    """
    if weight < 1:
        raise ValueError(f"an extender with a prioritize verb needs weight >= 1, got {weight}")
    if loopback_only and not url.startswith(("http://127.", "http://localhost", "https://127.")):
        raise ValueError(f"extender URL must be on loopback for the kwok backend, got {url!r}")
    stanza: dict[str, Any] = {
        "urlPrefix": url,
        "prioritizeVerb": prioritize_verb,
        "weight": weight,
        "nodeCacheCapable": node_cache_capable,
        "ignorable": ignorable,
        "httpTimeout": http_timeout,
    }
    if filter_verb:
        stanza["filterVerb"] = filter_verb
    if bind_verb:
        stanza["bindVerb"] = bind_verb
    return stanza


def scheduler_config(
    scheduler_name: str,
    kubeconfig: Path | None = None,
    *,
    extenders: Sequence[Mapping[str, Any]] = (),
    client_connection: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A KubeSchedulerConfiguration with one profile named `scheduler_name`.

    Leader election is off: each instance owns its profile name, so two instances never
    compete for the same pods. ``client_connection`` adds to its ``clientConnection``
    (e.g. ``{"qps": 5000, "burst": 5000}``; kube-scheduler's defaults are 50 and 100,
    which cap binding at ~50 pods/s: bench/throughput.py measures both).
    """
    cfg: dict[str, Any] = {
        "apiVersion": "kubescheduler.config.k8s.io/v1",
        "kind": "KubeSchedulerConfiguration",
        "leaderElection": {"leaderElect": False},
        "profiles": [{"schedulerName": scheduler_name}],
    }
    if kubeconfig is not None:
        cfg["clientConnection"] = {"kubeconfig": str(kubeconfig)}
    if client_connection:
        cfg["clientConnection"] = {**cfg.get("clientConnection", {}), **client_connection}
    if extenders:
        cfg["extenders"] = [dict(e) for e in extenders]
    return cfg


def _free_loopback_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class ExtraScheduler:
    """A kube-scheduler process (our binary) serving one profile on a kwok cluster.

    Example::

        ext = extender_stanza("http://127.0.0.1:8888/")
        with ExtraScheduler.start(cluster, "netmarks-scheduler", extenders=[ext]):
            ...  # pods with schedulerName: netmarks-scheduler are placed here
    """

    def __init__(self, name: str, proc: subprocess.Popen[bytes], log: Path, port: int):
        self.name = name
        self.proc = proc
        self.log = log
        self.port = port

    @classmethod
    def start(
        cls,
        cluster: KwokCluster,
        scheduler_name: str,
        *,
        extenders: Sequence[Mapping[str, Any]] = (),
        timeout: float = 60.0,
        verbosity: int = 2,
        client_connection: Mapping[str, Any] | None = None,
    ) -> ExtraScheduler:
        """Start the process and wait until it is healthy. `verbosity` is klog's ``--v``:
        3 logs every scheduling cycle ("Attempting to schedule pod"), 10 also every
        node's score in the order the Filter step found the nodes."""
        run = cluster.cluster_dir / "extra-schedulers"
        run.mkdir(parents=True, exist_ok=True)
        cfg_path = run / f"{scheduler_name}.yaml"
        cfg = scheduler_config(scheduler_name, cluster.kubeconfig, extenders=extenders,
                               client_connection=client_connection)
        cfg_path.write_text(yaml.safe_dump(cfg, sort_keys=False))
        port = _free_loopback_port()
        log = run / f"{scheduler_name}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [
                    str(cluster.bins.kube_scheduler),
                    "--config",
                    str(cfg_path),
                    "--bind-address",
                    "127.0.0.1",
                    "--secure-port",
                    str(port),
                    "--v",
                    str(verbosity),
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        sched = cls(scheduler_name, proc, log, port)
        cluster.on_stop(sched.stop)
        try:
            sched._wait_healthy(timeout)
        except BaseException:
            sched.stop()
            raise
        return sched

    def _wait_healthy(self, timeout: float) -> None:
        wait_http_ok(f"https://127.0.0.1:{self.port}/healthz", self.proc, self.log, timeout)

    def stop(self) -> None:
        stop_process(self.proc)

    def __enter__(self) -> ExtraScheduler:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
