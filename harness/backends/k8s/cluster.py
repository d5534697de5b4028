"""A real Kubernetes control plane with fake (kwok) nodes, run by `kwokctl --runtime binary`.

Every process (etcd, kube-apiserver, kube-controller-manager, kube-scheduler,
kwok-controller) is a local binary from `tools/k8s/build`: we pass each binary path
explicitly so kwokctl never downloads anything. kwokctl keeps a cluster's state (pid
files, logs, kubeconfig, certificates) under ``<workdir>/clusters/<name>``; a distinct
workdir or name per cluster keeps parallel clusters apart.

Example::

    with KwokCluster.start(nodes=5, cpu="4", memory="8Gi") as cluster:
        core = kubernetes.client.CoreV1Api(cluster.api_client())
        print([n.metadata.name for n in core.list_node().items])
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import yaml

from harness.backends.k8s.binaries import K8sBinaries, binaries
from harness.backends.k8s.nodes import NodeSpec, node_manifest, node_names
from harness.backends.pids import pid_alive

if TYPE_CHECKING:
    from results.topology import Topology

__all__ = [
    "KwokCluster",
    "KwokError",
    "create_args",
    "default_workdir",
    "kwokctl_env",
    "write_kwokctl_config",
]


class KwokError(RuntimeError):
    """kwokctl or the control plane failed; the message says which step and why."""


_START_ATTEMPTS = 3


def default_workdir() -> Path:
    """Where clusters started without an explicit workdir keep their state."""
    env = os.environ.get("SETTLERS_KWOK_WORKDIR")
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "settlers-testbed" / "kwok"


def kwokctl_env(bins: K8sBinaries, workdir: Path, extra: Mapping[str, str]) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            # kwokctl runs `kubectl` from PATH before KWOK_KUBECTL_BINARY: make it ours.
            "PATH": f"{bins.dir}{os.pathsep}{os.environ.get('PATH', '')}",
            "KWOK_WORKDIR": str(workdir),
            "KWOK_RUNTIME": "binary",
            # kubectl is only used by `kwokctl kubectl`, but its default is a URL at
            # dl.k8s.io, which kwokctl would try to fetch: point it at ours.
            "KWOK_KUBECTL_BINARY": str(bins.kubectl),
            "KWOK_KUBE_APISERVER_BINARY": str(bins.kube_apiserver),
            "KWOK_KUBE_CONTROLLER_MANAGER_BINARY": str(bins.kube_controller_manager),
            "KWOK_KUBE_SCHEDULER_BINARY": str(bins.kube_scheduler),
            "KWOK_CONTROLLER_BINARY": str(bins.kwok),
            "KWOK_ETCD_BINARY": str(bins.etcd),
        }
    )
    env.update(extra)
    return env


PORT_OPTIONS = (
    "etcdPort",
    "etcdPeerPort",
    "kubeApiserverPort",
    "kubeControllerManagerPort",
    "kubeSchedulerPort",
    "kwokControllerPort",
)


def _free_loopback_ports(count: int) -> list[int]:
    """Ports from the kernel's ephemeral range. kwokctl's own choice counts down from
    32767 and races with any other kwokctl starting at the same moment; the kernel
    hands out distinct ports, above that range."""
    socks = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def write_kwokctl_config(workdir: Path, name: str = "settlers",
                         extra: Mapping[str, object] | None = None) -> Path:
    """Write a kwokctl configuration for cluster `name` into `workdir`; return its path.

    It binds every component to 127.0.0.1 (kwokctl's default is 0.0.0.0; this project
    only listens on loopback) on ports the kernel picked, without client QPS limits.
    ``extra``: more kwokctl options (e.g. ``kubeApiserverCertSANs``), taking precedence.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    # No client-side QPS limits: with the defaults (20 QPS) the controller manager
    # needs seconds just to create a 19-Deployment economy's ReplicaSets and pods.
    options: dict[str, object] = {"bindAddress": "127.0.0.1", "disableQPSLimits": True}
    options.update(zip(PORT_OPTIONS, _free_loopback_ports(len(PORT_OPTIONS)), strict=True))
    options.update(extra or {})
    doc = {
        "apiVersion": "config.kwok.x-k8s.io/v1alpha1",
        "kind": "KwokctlConfiguration",
        "options": options,
    }
    path = workdir / f"kwokctl-{name}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def create_args(
    bins: K8sBinaries, name: str, config: Path, *, scheduler_config: Path | None = None,
    disable: Sequence[str] = (), extra_args: Sequence[str] = (),
) -> list[str]:
    """The `kwokctl create cluster` command line (every binary local, no kubeconfig edit).
    ``disable``: components kwokctl must not start (e.g. ``kube-scheduler``);
    ``extra_args``: more ``component=flag=value`` for ``--extra-args`` (a later flag
    overrides kwokctl's own)."""
    args = [
        str(bins.kwokctl),
        "--config",
        str(config),
        "create",
        "cluster",
        "--name",
        name,
        "--runtime",
        "binary",
        "--kube-apiserver-binary",
        str(bins.kube_apiserver),
        "--kube-controller-manager-binary",
        str(bins.kube_controller_manager),
        "--kube-scheduler-binary",
        str(bins.kube_scheduler),
        "--kwok-controller-binary",
        str(bins.kwok),
        "--etcd-binary",
        str(bins.etcd),
        # An empty --kubeconfig keeps kwokctl from adding a context to ~/.kube/config;
        # we use the cluster's own kubeconfig.yaml instead.
        "--kubeconfig",
        "",
        "--wait",
        "0s",
        # One instance of each: leader election only adds a way to die. On a loaded
        # machine a missed lease renewal makes the controller manager exit.
        "--extra-args",
        "kube-controller-manager=leader-elect=false",
    ]
    for component in disable:
        args += ["--disable", component]
    for extra in extra_args:
        args += ["--extra-args", extra]
    if "kube-scheduler" in disable:
        return args  # nothing to configure for a scheduler that is not started
    if scheduler_config is None:
        args += ["--extra-args", "kube-scheduler=leader-elect=false"]
    else:
        args += ["--kube-scheduler-config", str(Path(scheduler_config).resolve())]
    return args


def _without_leader_election(scheduler_config: Path, workdir: Path, name: str) -> Path:
    """A copy of a KubeSchedulerConfiguration with leader election off (flags are
    ignored once kube-scheduler has a config file, so it must be said in the file)."""
    try:
        doc = yaml.safe_load(Path(scheduler_config).read_text())
    except (OSError, yaml.YAMLError) as e:
        raise KwokError(f"cannot read kube-scheduler config {scheduler_config}: {e}") from e
    if not isinstance(doc, dict):
        raise KwokError(f"{scheduler_config}: not a KubeSchedulerConfiguration mapping")
    doc.setdefault("leaderElection", {}).setdefault("leaderElect", False)
    out = workdir / f"kube-scheduler-{name}.yaml"
    out.write_text(yaml.safe_dump(doc, sort_keys=False))
    return out


class KwokCluster:
    """A running (or attachable) kwokctl cluster named `name` under `workdir`.

    Use `KwokCluster.start(...)` to create one, `KwokCluster.attach(name)` to reach one
    started by another process (e.g. `harness cluster up`), and `stop()` (or a `with`
    block) to delete it and every process it started.
    """

    def __init__(self, name: str, workdir: Path | None = None, bins: K8sBinaries | None = None):
        self.name = name
        self.workdir = (workdir or default_workdir()).resolve()
        self.bins = bins or binaries()
        self.node_names: list[str] = []
        self._api_client: Any = None
        self._on_stop: list[Callable[[], None]] = []

    # ----- paths and identity -------------------------------------------------------
    @property
    def cluster_dir(self) -> Path:
        return self.workdir / "clusters" / self.name

    @property
    def kubeconfig(self) -> Path:
        """The cluster's own kubeconfig (admin credentials, https on 127.0.0.1)."""
        return self.cluster_dir / "kubeconfig.yaml"

    @property
    def context(self) -> str:
        """The context name inside `kubeconfig`."""
        doc = yaml.safe_load(self.kubeconfig.read_text())
        return str(doc.get("current-context") or f"kwok-{self.name}")

    @property
    def server(self) -> str:
        """The kube-apiserver URL (``https://127.0.0.1:PORT``)."""
        doc = yaml.safe_load(self.kubeconfig.read_text())
        return str(doc["clusters"][0]["cluster"]["server"])

    def exists(self) -> bool:
        return self.cluster_dir.is_dir()

    def info(self) -> dict[str, object]:
        """What a user needs to reach the cluster (for `harness cluster up` to print)."""
        return {
            "name": self.name,
            "kubeconfig": str(self.kubeconfig),
            "context": self.context,
            "server": self.server,
            "nodes": list(self.node_names),
            "workdir": str(self.workdir),
            "pids": self.pids(),
        }

    @staticmethod
    def list_names(workdir: Path | None = None) -> list[str]:
        """Names of the clusters that have state under `workdir`."""
        root = (workdir or default_workdir()) / "clusters"
        return sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []

    # ----- lifecycle ----------------------------------------------------------------
    @classmethod
    def start(
        cls,
        name: str | None = None,
        nodes: int = 5,
        *,
        cpu: str = "4",
        memory: str = "8Gi",
        pods: int = 110,
        labels: Mapping[str, str] | None = None,
        zones: Sequence[str] = (),
        topology: Topology | None = None,
        scheduler_config: Path | None = None,
        workdir: Path | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float = 180.0,
        bins: K8sBinaries | None = None,
        disable: Sequence[str] = (),
    ) -> KwokCluster:
        """Create the cluster, add `nodes` Ready kwok nodes ``node-1..N`` (or the
        `topology`'s nodes with their labels and CPU), and return it.

        `scheduler_config` is a KubeSchedulerConfiguration file for the real
        kube-scheduler (e.g. `scheduler.scheduler_config(...)` dumped to YAML). On any
        failure the half-made cluster is deleted before the error propagates.
        ``disable`` names components kwokctl must not start: ``("kube-scheduler",)``
        leaves pods Pending until a scheduler of the caller's starts (bench/throughput.py).
        """
        spec = NodeSpec(cpu=cpu, memory=memory, pods=pods, labels=dict(labels or {}), zones=zones)
        names = node_names(nodes)
        if topology is not None:
            # The topology's nodes, each with its labels and CPU, instead of N alike.
            names = topology.node_names
            spec = dataclasses.replace(
                spec, per_node={n.name: dict(n.labels) for n in topology.nodes},
                node_cpu={n.name: n.cpu for n in topology.nodes if n.cpu is not None})
        cluster = cls(name or f"settlers-{secrets.token_hex(3)}", workdir, bins)
        if cluster.exists():
            raise KwokError(
                f"a kwok cluster named {cluster.name!r} already exists in {cluster.workdir}; "
                "stop it first (`harness cluster down`) or pick another name"
            )
        def create() -> None:
            cluster._create(scheduler_config, env or {}, timeout, disable)
            cluster.add_nodes(names, spec)
            cluster.wait_nodes_ready(timeout)
            cluster.check_components()

        cluster._start_retrying(create)
        return cluster

    def _start_retrying(self, create: Callable[[], None]) -> None:
        """Run ``create``; on failure delete the half-made cluster, and retry on fresh
        ports when a port was taken between choosing and binding it."""
        for attempt in range(1, _START_ATTEMPTS + 1):
            try:
                create()
                return
            except KwokError as e:
                self.stop()
                self.node_names = []
                if "address already in use" not in str(e) or attempt == _START_ATTEMPTS:
                    raise
            except BaseException:
                self.stop()
                raise

    @classmethod
    def attach(cls, name: str, workdir: Path | None = None) -> KwokCluster:
        """Reach a cluster started earlier (possibly by another process)."""
        cluster = cls(name, workdir)
        if not cluster.kubeconfig.is_file():
            raise KwokError(f"no kwok cluster named {name!r} in {cluster.workdir}")
        core = cluster.core_v1()
        cluster.node_names = sorted(n.metadata.name for n in core.list_node().items)
        return cluster

    @classmethod
    def start_control_plane(
        cls,
        name: str,
        *,
        options: Mapping[str, object],
        extra_args: Sequence[str] = (),
        workdir: Path | None = None,
        timeout: float = 180.0,
        bins: K8sBinaries | None = None,
    ) -> KwokCluster:
        """The control plane alone (etcd, API server, controller manager, scheduler),
        no kwok controller and no nodes: real kubelets join it (``realnodes``).
        ``options`` and ``extra_args`` go to kwokctl as in `write_kwokctl_config` and
        `create_args`. On failure the half-made cluster is deleted."""
        cluster = cls(name, workdir, bins)
        if cluster.exists():
            raise KwokError(f"a cluster named {name!r} already exists in {cluster.workdir}; "
                            "stop it first")
        cluster._start_retrying(lambda: cluster._create(
            None, {}, timeout, ("kwok-controller",), options, extra_args))
        return cluster

    def _create(
        self, scheduler_config: Path | None, env: Mapping[str, str], timeout: float,
        disable: Sequence[str] = (), options: Mapping[str, object] | None = None,
        extra_args: Sequence[str] = (),
    ) -> None:
        config = write_kwokctl_config(self.workdir, self.name, options)
        if scheduler_config is not None:
            scheduler_config = _without_leader_election(scheduler_config, self.workdir, self.name)
        args = create_args(self.bins, self.name, config, scheduler_config=scheduler_config,
                           disable=disable, extra_args=extra_args)
        args += ["--timeout", f"{int(timeout)}s"]
        log = self.workdir / f"{self.name}.create.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                args,
                env=kwokctl_env(self.bins, self.workdir, env),
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout + 30
        try:
            # kwokctl itself waits up to its timeout for the apiserver, even when etcd
            # died at once; watching the components fails fast instead.
            while proc.poll() is None:
                self.check_components()
                if time.monotonic() > deadline:
                    raise KwokError(f"kwokctl create cluster {self.name!r} timed out")
                time.sleep(0.2)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        if proc.returncode != 0:
            raise KwokError(
                f"kwokctl create cluster {self.name!r} failed (exit {proc.returncode}):\n"
                f"{_tail(log.read_text(errors='replace'))}\nlogs: {self.cluster_dir / 'logs'}"
            )
        self._wait_apiserver(timeout)

    def on_stop(self, callback: Callable[[], None]) -> None:
        """Run `callback` first thing in stop() (e.g. to end an extra scheduler)."""
        self._on_stop.append(callback)

    def stop(self) -> None:
        """Delete the cluster; make sure none of its processes survives. Idempotent."""
        while self._on_stop:
            with contextlib.suppress(Exception):
                self._on_stop.pop()()
        if self._api_client is not None:
            with contextlib.suppress(Exception):
                self._api_client.close()
            self._api_client = None
        pids = self.pids()
        if self.cluster_dir.exists() or pids:
            subprocess.run(
                [
                    str(self.bins.kwokctl),
                    "delete",
                    "cluster",
                    "--name",
                    self.name,
                    # `delete` rejects an empty --kubeconfig; this file is never used
                    # by anything else (create was told not to write one).
                    "--kubeconfig",
                    str(self.workdir / "kwokctl-unused-kubeconfig.yaml"),
                ],
                env=kwokctl_env(self.bins, self.workdir, {}),
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
        # kwokctl sends SIGTERM; a process that ignores it must not outlive the test.
        _reap(pids, grace_s=10.0)
        if self.cluster_dir.exists():  # delete failed half-way: remove what is left
            shutil.rmtree(self.cluster_dir, ignore_errors=True)
        for leftover in (
            f"kwokctl-{self.name}.yaml",
            f"kube-scheduler-{self.name}.yaml",
            f"{self.name}.create.log",
        ):
            (self.workdir / leftover).unlink(missing_ok=True)

    def __enter__(self) -> KwokCluster:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # ----- processes ----------------------------------------------------------------
    def pids(self) -> list[int]:
        """Pids of the cluster's live processes, from kwokctl's pid files."""
        out = []
        for pidfile in sorted((self.cluster_dir / "pids").glob("*.pid")):
            with contextlib.suppress(ValueError, OSError):
                pid = int(pidfile.read_text().strip())
                if pid_alive(pid):
                    out.append(pid)
        return out

    def check_components(self) -> None:
        """Raise KwokError naming every component whose process has exited (e.g. a
        kube-scheduler that rejected its configuration), with the end of its log."""
        dead = []
        for pidfile in sorted((self.cluster_dir / "pids").glob("*.pid")):
            with contextlib.suppress(ValueError, OSError):
                if not pid_alive(int(pidfile.read_text().strip())):
                    dead.append(pidfile.stem)
        if dead:
            logs = []
            for comp in dead:
                log = self.cluster_dir / "logs" / f"{comp}.log"
                text = log.read_text(errors="replace") if log.is_file() else "(no log)"
                logs.append(f"--- {comp} ---\n{_tail(text, 15)}")
            raise KwokError(
                f"kwok cluster {self.name!r}: component(s) exited: {', '.join(dead)}\n"
                + "\n".join(logs)
            )

    # ----- API access ---------------------------------------------------------------
    def api_client(self) -> Any:
        """A `kubernetes.client.ApiClient` for this cluster (cached; closed by stop())."""
        if self._api_client is None:
            from kubernetes import config

            self._api_client = config.new_client_from_config(  # type: ignore[no-untyped-call]
                config_file=str(self.kubeconfig)
            )
        return self._api_client

    def core_v1(self) -> Any:
        from kubernetes import client

        return client.CoreV1Api(self.api_client())

    def apps_v1(self) -> Any:
        from kubernetes import client

        return client.AppsV1Api(self.api_client())

    def kubectl(self, *args: str, input: str | None = None, timeout: float = 60.0) -> str:
        """Run our kubectl against this cluster; raise KwokError with its stderr on failure."""
        proc = subprocess.run(
            [str(self.bins.kubectl), "--kubeconfig", str(self.kubeconfig), *args],
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if proc.returncode != 0:
            raise KwokError(f"kubectl {' '.join(args)} failed: {proc.stderr.strip()}")
        return proc.stdout

    # ----- nodes --------------------------------------------------------------------
    def add_nodes(self, names: Sequence[str], spec: NodeSpec | None = None) -> None:
        """Create kwok Node objects (kwok then keeps them Ready)."""
        spec = spec or NodeSpec()
        core = self.core_v1()
        offset = len(self.node_names)

        def create(i: int) -> None:
            # The reply unparsed (read, so its connection is reused): building a V1Node
            # per reply cost seconds of CPU for a 1000-node cluster.
            reply = core.create_node(body=node_manifest(names[i], offset + i, spec),
                                     _preload_content=False)
            reply.data  # noqa: B018
            reply.release_conn()

        # A few at a time: one after another, 1000 nodes took a minute on a busy machine.
        with ThreadPoolExecutor(min(8, max(1, len(names)))) as pool:
            list(pool.map(create, range(len(names))))
        self.node_names.extend(names)

    def wait_nodes_ready(self, timeout: float = 120.0) -> None:
        """Block until every node in `node_names` reports Ready=True."""
        core = self.core_v1()
        deadline = time.monotonic() + timeout
        not_ready: list[str] = list(self.node_names)
        while time.monotonic() < deadline:
            # Raw JSON: client models for 1000 nodes per poll would cost more than the wait.
            listing = json.loads(core.list_node(_preload_content=False).data)
            ready = {
                n["metadata"]["name"]
                for n in listing.get("items") or []
                if any(c.get("type") == "Ready" and c.get("status") == "True"
                       for c in (n.get("status") or {}).get("conditions") or [])
            }
            not_ready = [n for n in self.node_names if n not in ready]
            if not not_ready:
                return
            time.sleep(0.2)
        raise KwokError(f"nodes not Ready after {timeout:.0f} s: {', '.join(not_ready)}")

    def _wait_apiserver(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            self.check_components()  # a dead etcd or apiserver will never get ready
            try:
                self.kubectl("get", "--raw", "/readyz", timeout=10)
                # The controller manager creates the "default" ServiceAccount and the
                # scheduler needs its informers; /readyz covers the apiserver only.
                return
            except (KwokError, subprocess.TimeoutExpired) as e:
                last = str(e)
                time.sleep(0.3)
        raise KwokError(f"kube-apiserver of {self.name!r} not ready after {timeout:.0f} s: {last}")


def _reap(pids: Sequence[int], grace_s: float) -> None:
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and any(pid_alive(p) for p in pids):
        time.sleep(0.1)
    for pid in pids:
        if pid_alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def _tail(text: str, lines: int = 30) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])
