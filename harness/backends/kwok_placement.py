"""The kwok backend: the real kube-scheduler places, the emulated cluster runs.

Placement goes through a real kube-apiserver with kwok nodes (``harness.backends.kwok``):
every redeployment creates the economy's Deployments with the scheduler's
``schedulerName``, waits until all pods are bound, reads pod -> node back and deletes
them. The schedulers behind the names:

- kube_default: the stock kube-scheduler (``default-scheduler``);
- netmarks: a second real kube-scheduler (``netmarks-scheduler``) whose extender is our
  NetMARKS webhook (``schedulers netmarks-extender``), fed the warm-up traffic matrix;
- firmament: our min-cost-flow custom scheduler (``schedulers firmament``) binding
  through the API.

The data plane is the same emulated cluster as the local backend's.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.backends.base import BackendUnavailable, Placement
from harness.backends.embedded import LocalBackend
from harness.backends.kwok.process import stop_process
from harness.backends.local.procs import free_port
from settlers.economy import Economy

if TYPE_CHECKING:
    from schedulers import TrafficMatrix

__all__ = ["KWOK_SCHEDULERS", "KwokBackend"]

# Our scheduler name -> the schedulerName pods carry on the real control plane.
KWOK_SCHEDULERS = {
    "kube_default": "default-scheduler",
    "netmarks": "netmarks-scheduler",
    "firmament": "firmament",
}
_SCHEDULERS_CLI = [sys.executable, "-c", "from schedulers.cli import main; main()"]


class KwokBackend(LocalBackend):
    name = "kwok"

    def __init__(self, economy: Economy, nodes: int, link: str) -> None:
        super().__init__(economy, nodes, link)
        self._cluster: Any = None
        self._stops: list[Callable[[], None]] = []
        self._tmp = Path(tempfile.mkdtemp(prefix="settlers-kwok-backend-"))

    def _ensure_cluster(self) -> Any:
        if self._cluster is not None:
            return self._cluster
        try:
            from harness.backends.kwok import K8sBinariesMissing, KwokCluster, binaries

            bins = binaries()
        except K8sBinariesMissing as exc:
            raise BackendUnavailable(
                f"the kwok backend needs the Kubernetes binaries: {exc} (run tools/k8s/build)"
            ) from None
        node = self._nodes[0]
        self._cluster = KwokCluster.start(
            nodes=len(self._nodes), cpu=f"{node.cpu_m}m", memory=str(node.memory),
            pods=node.max_pods, bins=bins,
        )
        self._stops.append(self._cluster.stop)
        return self._cluster

    async def place(
        self,
        scheduler: str,
        deployments: int,
        *,
        traffic: TrafficMatrix | None,
        seed: int,
        advance: Callable[[int], None] = lambda n: None,
    ) -> list[Placement]:
        if scheduler not in KWOK_SCHEDULERS:
            raise BackendUnavailable(
                f"{scheduler} has no real-scheduler counterpart on the kwok backend; "
                f"choose from {', '.join(KWOK_SCHEDULERS)} or use --backend local"
            )
        return await asyncio.to_thread(self._place, scheduler, deployments, traffic, advance)

    def _place(self, scheduler: str, deployments: int, traffic: TrafficMatrix | None,
               advance: Callable[[int], None]) -> list[Placement]:
        from harness.backends.kwok import collect_rounds

        cluster = self._ensure_cluster()
        stop = self._start_scheduler(cluster, scheduler, traffic)
        try:
            rounds = collect_rounds(cluster, self._economy, KWOK_SCHEDULERS[scheduler],
                                    deployments, advance=advance)
        finally:
            stop()
        return [Placement(scheduler, i, r.assignments, r.seconds) for i, r in enumerate(rounds)]

    def _start_scheduler(self, cluster: Any, scheduler: str,
                         traffic: TrafficMatrix | None) -> Callable[[], None]:
        if scheduler == "kube_default":
            return lambda: None
        traffic_file = self._tmp / f"traffic-{scheduler}.csv"
        if traffic is not None:
            traffic.to_csv(traffic_file)
        else:
            traffic_file.write_text("source,destination,bytes\n")
        if scheduler == "firmament":
            proc = self._spawn("firmament", "--kubeconfig", str(cluster.kubeconfig),
                               "--scheduler-name", KWOK_SCHEDULERS[scheduler],
                               "--interval", "0.5", "--traffic", str(traffic_file))
            return lambda: stop_process(proc)
        from harness.backends.kwok import NETMARKS_SCHEDULER, ExtraScheduler, extender_stanza

        port = free_port()
        proc = self._spawn("netmarks-extender", "--traffic", str(traffic_file),
                           "--port", str(port), "--kubeconfig", str(cluster.kubeconfig))
        url = f"http://127.0.0.1:{port}"
        try:
            _wait_http(f"{url}/healthz", proc)
            # Weight 1, as the local netmarks model (an extender's 0..10 becomes 0..100).
            extra = ExtraScheduler.start(cluster, NETMARKS_SCHEDULER,
                                         extenders=[extender_stanza(url + "/", weight=1)])
        except BaseException:
            stop_process(proc)
            raise

        def stop() -> None:
            extra.stop()
            stop_process(proc)

        return stop

    def _spawn(self, *args: str) -> subprocess.Popen[bytes]:
        log = (self._tmp / f"{args[0]}.log").open("ab")
        return subprocess.Popen([*_SCHEDULERS_CLI, *args], stdout=log, stderr=subprocess.STDOUT)

    async def close(self) -> None:
        stops, self._stops = self._stops, []
        for stop in reversed(stops):
            await asyncio.to_thread(stop)
        self._cluster = None


def _wait_http(url: str, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BackendUnavailable(f"{proc.args!r} exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise BackendUnavailable(f"{url} did not answer within {timeout:.0f} s")

