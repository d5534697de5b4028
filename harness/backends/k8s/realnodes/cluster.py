"""`RealNodeCluster`: the built control plane plus N real nodes on this machine.

Start order: network (bridge, namespaces, routes, tc) -> control plane (kwokctl's
binary runtime without its kwok controller, the API server reachable on the bridge) ->
per node containerd (images imported), kubelet, kube-proxy, each inside the node's
network namespace (``nsenter --net``: only the network is private; mounts stay shared
so containerd sees the volumes the kubelet mounts) -> CoreDNS and Prometheus on the
host -> nodes Ready and labelled. `stop` undoes it all in reverse and then sweeps
(`cleanup`) for anything a crash could have left. State is a JSON file, so `status`
and `down` work from any shell.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from harness.backends.k8s.binaries import K8sBinaries, bin_dir, binaries
from harness.backends.k8s.cluster import KwokCluster
from harness.backends.k8s.realnodes import cleanup, configs, net
from harness.backends.k8s.realnodes.plan import ClusterPlan, NodePlan, plan_cluster, state_root
from harness.backends.pids import pid_alive

__all__ = ["CONTEXT_PREFIX", "NodeBinaries", "RealNodeCluster", "RealNodesError",
           "host_requirements"]

STATE_FILE = "cluster.json"
# The kubeconfig context of cluster <name> is CONTEXT_PREFIX + name; the kubernetes backend
# recognises it and finds the cluster's kubeconfig and chart values by it.
CONTEXT_PREFIX = "settlers-nodes-"
# A RuntimeClass whose handler containerd does not have: a pod of it is scheduled like
# any other, then its sandbox fails at once, so the harness's placement rounds (which
# only read where pods land) create no containers, network namespaces or mounts.
PLACE_ONLY = "settlers-place-only"
_DEBIAN = {"containerd": "containerd", "ctr": "containerd", "runc": "runc",
           "nsenter": "util-linux", "iptables": "iptables", "conntrack": "conntrack",
           "ip": "iproute2", "tc": "iproute2"}


class RealNodesError(RuntimeError):
    """The real-node cluster could not start or stop; the message says which step."""


@dataclass(frozen=True)
class NodeBinaries:
    kubelet: Path
    kube_proxy: Path
    coredns: Path


def node_binaries(directory: Path | None = None) -> NodeBinaries:
    root = directory or bin_dir()
    paths = {n: root / n for n in ("kubelet", "kube-proxy", "coredns")}
    missing = [n for n, p in paths.items() if not os.access(p, os.X_OK)]
    if missing:
        raise RealNodesError(f"missing in {root}: {', '.join(missing)}: run `tools/k8s/build`")
    return NodeBinaries(paths["kubelet"], paths["kube-proxy"], paths["coredns"])


def host_requirements() -> list[str]:
    """What this machine lacks for a real-node cluster (empty: nothing)."""
    problems = []
    if os.geteuid() != 0:
        problems.append("must run as root (network namespaces, containerd, kubelet)")
    for tool, pkg in _DEBIAN.items():
        if shutil.which(tool) is None:
            problems.append(f"`{tool}` not found (Debian package {pkg}; `tools/setup --nodes`)")
    if not Path("/usr/lib/cni/bridge").is_file():
        problems.append("CNI plugins not in /usr/lib/cni (Debian package "
                        "containernetworking-plugins; `tools/setup --nodes`)")
    if shutil.which("prometheus") is None:
        problems.append("`prometheus` not found (Debian package prometheus; `tools/setup`)")
    return problems


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RealNodeCluster:
    """A running (or attachable) real-node cluster; see the module doc."""

    def __init__(self, plan: ClusterPlan, bins: K8sBinaries | None = None) -> None:
        self.plan = plan
        self._bins = bins
        self.state: dict[str, Any] = {}

    # ----- identity -------------------------------------------------------------------
    @property
    def bins(self) -> K8sBinaries:
        if self._bins is None:
            self._bins = binaries()
        return self._bins

    @property
    def control_plane(self) -> KwokCluster:
        return KwokCluster(self.plan.name, self.plan.state_dir / "control-plane", self._bins)

    @property
    def kubeconfig(self) -> Path:
        """Admin kubeconfig for the host (the API server on the host's bridge address)."""
        return self.plan.state_dir / "kubeconfig.yaml"

    @property
    def context(self) -> str:
        return f"{CONTEXT_PREFIX}{self.plan.name}"

    @property
    def prometheus_url(self) -> str:
        return f"http://{self.plan.host_ip}:{self.state.get('prometheus_port', 9090)}"

    def _pidfile(self, what: str) -> Path:
        return self.plan.state_dir / "pids" / f"{what}.pid"

    def _log(self, what: str) -> Path:
        return self.plan.state_dir / "logs" / f"{what}.log"

    # ----- state ----------------------------------------------------------------------
    @staticmethod
    def state_path(name: str, root: Path | None = None) -> Path:
        return (root or state_root()) / name / STATE_FILE

    @classmethod
    def attach(cls, name: str, root: Path | None = None) -> RealNodeCluster:
        path = cls.state_path(name, root)
        if not path.is_file():
            raise RealNodesError(f"no real-node cluster named {name!r} (no {path})")
        state = json.loads(path.read_text())
        plan = plan_cluster(name, state["node_names"], state["index"], state.get("labels"),
                            root)
        cluster = cls(plan)
        cluster.state = state
        return cluster

    def _write_state(self, **updates: Any) -> None:
        self.state.update(updates)
        path = self.plan.state_dir / STATE_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.state, indent=1))
        tmp.replace(path)

    # ----- start ----------------------------------------------------------------------
    @classmethod
    def start(
        cls,
        name: str,
        node_names: Sequence[str],
        *,
        images: Sequence[Path],
        labels: Mapping[str, Mapping[str, str]] | None = None,
        rate_mbps: Callable[[str, str], float] | None = None,
        index: int | None = None,
        root: Path | None = None,
        timeout: float = 300.0,
        progress: Callable[[str], None] = lambda _msg: None,
    ) -> RealNodeCluster:
        """Start the cluster (see the module doc); on any failure everything made so far
        is removed before the error propagates. ``images``: image archives (docker or OCI)
        imported into every node's containerd, the pause image among them."""
        problems = host_requirements()
        if problems:
            raise RealNodesError("this machine cannot run real nodes:\n  - "
                                 + "\n  - ".join(problems))
        nbins = node_binaries()
        missing = [str(p) for p in images if not Path(p).is_file()]
        if missing:
            raise RealNodesError(f"image archive(s) not found: {', '.join(missing)} "
                                 "(build them with `tools/image/build`)")
        if cls.state_path(name, root).is_file():
            raise RealNodesError(f"a real-node cluster named {name!r} exists; stop it first "
                                 f"(`harness cluster down --backend nodes`)")
        idx = free_index() if index is None else index
        plan = plan_cluster(name, list(node_names), idx,
                            {k: dict(v) for k, v in (labels or {}).items()}, root)
        cluster = cls(plan)
        cluster._write_state(name=name, index=idx, node_names=list(node_names),
                             labels={k: dict(v) for k, v in (labels or {}).items()},
                             status="starting", started_at=time.time(),
                             images=[str(p) for p in images])
        try:
            cluster._start(nbins, images, rate_mbps, timeout, progress)
        except BaseException:
            cluster.stop()
            raise
        cluster._write_state(status="ready")
        return cluster

    def _start(self, nbins: NodeBinaries, images: Sequence[Path],
               rate_mbps: Callable[[str, str], float] | None, timeout: float,
               progress: Callable[[str], None]) -> None:
        plan = self.plan
        for d in ("pids", "logs"):
            (plan.state_dir / d).mkdir(parents=True, exist_ok=True)
        progress(f"network: bridge {plan.bridge}, {len(plan.nodes)} namespaces")
        net.create_network(plan)
        if rate_mbps is not None:
            net.apply_shaping(plan, rate_mbps)
        progress("control plane (etcd, kube-apiserver, controller manager, scheduler)")
        cp = KwokCluster.start_control_plane(
            plan.name, workdir=plan.state_dir / "control-plane", timeout=timeout,
            bins=self._bins,
            options={"kubeApiserverCertSANs": [plan.host_ip, plan.service_ip]},
            # Reachable from the nodes, and advertised there: the `kubernetes` Service's
            # endpoint is what in-cluster clients (the extender, firmament) dial.
            extra_args=["kube-apiserver=bind-address=0.0.0.0",
                        f"kube-apiserver=advertise-address={plan.host_ip}",
                        # Logs and exec go to the kubelet by address: no DNS knows nodes.
                        "kube-apiserver=kubelet-preferred-address-types=InternalIP"])
        server = cp.server.replace("127.0.0.1", plan.host_ip)
        pki = cp.cluster_dir / "pki"
        kc = configs.kubelet_kubeconfig(server, str(pki / "ca.crt"), str(pki / "admin.crt"),
                                        str(pki / "admin.key"), self.context)
        self.kubeconfig.write_text(yaml.safe_dump(kc, sort_keys=False))
        self._write_state(server=server, kubeconfig=str(self.kubeconfig), context=self.context)
        for node in plan.nodes:
            self._start_containerd(node)
        progress(f"importing {len(images)} image(s) into {len(plan.nodes)} containerd(s)")
        # Unpacking is most of the start-up time (~1 GB per node): all nodes at once.
        with ThreadPoolExecutor(len(plan.nodes)) as pool:
            list(pool.map(lambda n: self._import_images(n, images), plan.nodes))
        refs = self._ctr(plan.nodes[0], "images", "ls", "-q").stdout.split()
        self._write_state(image_refs=sorted(r for r in refs if not r.startswith("sha256:")))
        for node in plan.nodes:
            progress(f"{node.name}: kubelet, kube-proxy")
            self._start_kubelet(node, nbins)
            self._start_kube_proxy(node, nbins)
        progress("CoreDNS and Prometheus on the host")
        self._start_coredns(nbins)
        self._start_prometheus()
        progress("waiting for the nodes to be Ready")
        self._wait_ready(timeout)
        self._label_nodes()
        self.values_file.write_text(yaml.safe_dump(self.chart_values(), sort_keys=False))
        self._write_state(values_file=str(self.values_file))

    @property
    def values_file(self) -> Path:
        """Helm values that fit this cluster (`chart_values`), written at start."""
        return self.plan.state_dir / "chart-values.yaml"

    def chart_values(self) -> dict[str, Any]:
        """What the chart needs to run here: the imported images (never pulled: no
        registry), Prometheus on the host, and traffic metrics from the producers
        themselves, since this cluster has no service mesh."""
        refs: list[str] = self.state.get("image_refs", [])
        values: dict[str, Any] = {"prometheus": {"url": self.prometheus_url},
                                  # Per-peer bytes under Istio's names, marked as not
                                  # Istio's (settlers serve --mesh-metrics).
                                  "metrics": {"meshBytes": True}}
        for ref in refs:
            repo, _, tag = ref.rpartition(":")
            if repo.endswith("/settlers-testbed"):
                values["image"] = {"repository": repo, "tag": tag, "pullPolicy": "Never"}
            elif repo.endswith("/settlers-pause"):
                # Placement phases (hundreds of redeployments) start nothing: the sandbox
                # of a pod of RuntimeClass PLACE_ONLY fails at once on every node.
                values["placeholder"] = {"image": ref, "pullPolicy": "Never",
                                         "runtimeClassName": PLACE_ONLY}
            elif repo.endswith("/kube-scheduler"):
                values["netmarks"] = {"scheduler": {"image": {
                    "repository": repo, "tag": tag, "pullPolicy": "Never"}}}
        return values

    def _spawn(self, what: str, args: Sequence[str], netns: str | None = None) -> int:
        argv = list(args) if netns is None else ["nsenter", f"--net=/run/netns/{netns}",
                                                  "--", *args]
        with self._log(what).open("ab") as log:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                    start_new_session=True)
        self._pidfile(what).write_text(str(proc.pid))
        return proc.pid

    def _alive_or_raise(self, what: str, pid: int) -> None:
        if not pid_alive(pid):
            tail = "\n".join(self._log(what).read_text(errors="replace").splitlines()[-20:])
            raise RealNodesError(f"{what} exited:\n{tail}\nlog: {self._log(what)}")

    def _wait(self, what: str, pid: int, ok: Callable[[], bool], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not ok():
            self._alive_or_raise(what, pid)
            if time.monotonic() > deadline:
                raise RealNodesError(f"{what} not ready after {timeout:.0f} s; log: "
                                     f"{self._log(what)}")
            time.sleep(0.1)

    def _start_containerd(self, node: NodePlan) -> None:
        for d in (node.state_dir / "cni" / "net.d", node.run_dir, node.state_dir / "pod-logs"):
            d.mkdir(parents=True, exist_ok=True)
        conf = node.state_dir / "containerd.toml"
        conf.write_text(configs.containerd_config(node))
        (node.state_dir / "cni" / "net.d" / "10-settlers.conflist").write_text(
            configs.cni_conflist_text(self.plan, node))
        (node.state_dir / "resolv.conf").write_text(f"nameserver {self.plan.dns_ip}\n")
        what = f"{node.name}-containerd"
        pid = self._spawn(what, ["containerd", "--config", str(conf)], node.netns)
        self._wait(what, pid, lambda: self._ctr(node, "version").returncode == 0, 60)

    def _ctr(self, node: NodePlan, *args: str,
             timeout: float = 600) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["ctr", "--address", str(node.containerd_socket), "--namespace",
                               "k8s.io", *args], capture_output=True, text=True,
                              timeout=timeout, check=False)

    def _import_images(self, node: NodePlan, images: Sequence[Path]) -> None:
        for archive in images:
            proc = self._ctr(node, "images", "import", str(archive))
            if proc.returncode != 0:
                raise RealNodesError(f"{node.name}: ctr images import {archive} failed: "
                                     f"{proc.stderr.strip()}")

    def _start_kubelet(self, node: NodePlan, nbins: NodeBinaries) -> None:
        conf = node.state_dir / "kubelet.yaml"
        conf.write_text(yaml.safe_dump(configs.kubelet_config(self.plan, node),
                                       sort_keys=False))
        _ensure_cgroup_root(node.cgroup_root)
        node.kubelet_dir.mkdir(parents=True, exist_ok=True)
        what = f"{node.name}-kubelet"
        pid = self._spawn(what, [
            str(nbins.kubelet), f"--config={conf}", f"--kubeconfig={self.kubeconfig}",
            f"--root-dir={node.kubelet_dir}", f"--hostname-override={node.name}",
            f"--node-ip={node.ip}", "--v=1"], node.netns)
        self._alive_or_raise(what, pid)

    def _start_kube_proxy(self, node: NodePlan, nbins: NodeBinaries) -> None:
        conf = node.state_dir / "kube-proxy.yaml"
        conf.write_text(yaml.safe_dump(
            configs.kube_proxy_config(self.plan, node, str(self.kubeconfig)), sort_keys=False))
        what = f"{node.name}-kube-proxy"
        pid = self._spawn(what, [str(nbins.kube_proxy), f"--config={conf}", "--v=1"],
                          node.netns)
        self._alive_or_raise(what, pid)

    def _start_coredns(self, nbins: NodeBinaries) -> None:
        health, ready = _free_port(), _free_port()
        conf = self.plan.state_dir / "Corefile"
        conf.write_text(configs.corefile(self.plan, str(self.kubeconfig), health, ready))
        pid = self._spawn("coredns", [str(nbins.coredns), "-conf", str(conf)])
        self._wait("coredns", pid, lambda: _http_ok(f"http://127.0.0.1:{ready}/ready"), 60)
        self._write_state(dns=f"{self.plan.dns_ip}:53")

    def _start_prometheus(self) -> None:
        targets = self.plan.state_dir / "pod-targets.json"
        pid = self._spawn("podsd", [sys.executable, "-m", "harness.backends.k8s.realnodes.podsd",
                                    "--kubeconfig", str(self.kubeconfig), "--out", str(targets)])
        self._wait("podsd", pid, targets.exists, 60)
        port = _free_port()
        conf = self.plan.state_dir / "prometheus.yml"
        conf.write_text(yaml.safe_dump(configs.prometheus_config(str(targets)),
                                       sort_keys=False))
        data = self.plan.state_dir / "prometheus-data"
        data.mkdir(exist_ok=True)
        pid = self._spawn("prometheus", [
            "prometheus", f"--config.file={conf}", f"--storage.tsdb.path={data}",
            f"--web.listen-address={self.plan.host_ip}:{port}",
            "--storage.tsdb.retention.time=1d", "--log.level=warn"])
        self._write_state(prometheus_port=port)
        self._wait("prometheus", pid, lambda: _http_ok(f"{self.prometheus_url}/-/ready"), 60)

    def _core(self) -> Any:
        from kubernetes import client, config

        api = config.new_client_from_config(config_file=str(self.kubeconfig))  # type: ignore[no-untyped-call]
        return client.CoreV1Api(api)

    def _wait_ready(self, timeout: float) -> None:
        core = self._core()
        deadline = time.monotonic() + timeout
        names = {n.name for n in self.plan.nodes}
        while True:
            for node in self.plan.nodes:
                for comp in ("containerd", "kubelet", "kube-proxy"):
                    what = f"{node.name}-{comp}"
                    self._alive_or_raise(what, int(self._pidfile(what).read_text()))
            ready = {n.metadata.name for n in core.list_node().items
                     if any(c.type == "Ready" and c.status == "True"
                            for c in n.status.conditions or [])}
            if names <= ready:
                return
            if time.monotonic() > deadline:
                raise RealNodesError(f"nodes not Ready after {timeout:.0f} s: "
                                     f"{', '.join(sorted(names - ready))}; kubelet logs in "
                                     f"{self.plan.state_dir / 'logs'}")
            time.sleep(0.5)

    def _label_nodes(self) -> None:
        from kubernetes import client, config

        api = config.new_client_from_config(config_file=str(self.kubeconfig))  # type: ignore[no-untyped-call]
        # A RuntimeClass no node runs (see PLACE_ONLY): placement-only pods start nothing.
        client.NodeV1Api(api).create_runtime_class(client.V1RuntimeClass(
            metadata=client.V1ObjectMeta(name=PLACE_ONLY), handler=PLACE_ONLY))
        core = self._core()
        for node in self.plan.nodes:
            labels = {"settlers-testbed/node-kind": "real", **node.labels}
            core.patch_node(node.name, {"metadata": {"labels": labels}})

    # ----- stop -----------------------------------------------------------------------
    def pids(self) -> dict[str, int]:
        out = {}
        for f in sorted((self.plan.state_dir / "pids").glob("*.pid")):
            with contextlib.suppress(ValueError, OSError):
                pid = int(f.read_text())
                if pid_alive(pid):
                    out[f.stem] = pid
        return out

    def stop(self) -> list[str]:
        """Stop everything and remove what the cluster made; returns a list of what was
        still there to remove. Idempotent."""
        plan = self.plan
        removed: list[str] = []
        procs = self.pids()
        # Node agents first, so none restarts a pod while we sweep; containerd last.
        order = sorted(procs, key=lambda w: (w.endswith("containerd"), w))
        for what in order:
            _terminate(procs[what])
        for node in plan.nodes:
            sock = str(node.containerd_socket)
            shims = cleanup.processes_with_arg(sock)
            for pid in shims:
                _terminate(pid, grace_s=0.0)
            n = cleanup.kill_cgroup_tree(node.cgroup_root)
            if n:
                removed.append(f"{n} pod process(es) on {node.name}")
        for ns in cleanup.pod_netns_in(plan.cluster_cidr):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
            removed.append(f"pod netns {ns}")
        mounts = cleanup.unmount_under(plan.state_dir, plan.run_dir)
        if mounts:
            removed.append(f"{len(mounts)} mount(s)")
        for node in plan.nodes:
            if cleanup.remove_cgroup_tree(node.cgroup_root):
                removed.append(f"cgroups of {node.name}")
        with contextlib.suppress(Exception):
            self.control_plane.stop()
        removed += net.delete_network(plan)
        # The parent of every node's cgroup root, if no other cluster uses it.
        with contextlib.suppress(OSError):
            for d in cleanup.cgroup_dirs("/settlers-nodes"):
                d.rmdir()
        shutil.rmtree(plan.run_dir, ignore_errors=True)
        shutil.rmtree(plan.state_dir, ignore_errors=True)
        return removed

    def leftovers(self) -> list[str]:
        """What of this cluster is still on the machine (empty after `stop`)."""
        plan = self.plan
        left = [f"process {w} ({p})" for w, p in self.pids().items()]
        left += [f"netns {n.netns}" for n in plan.nodes if net.netns_exists(n.netns)]
        if Path("/sys/class/net", plan.bridge).exists():
            left.append(f"bridge {plan.bridge}")
        left += [f"mount {m}" for m in cleanup.mounts_under(plan.state_dir, plan.run_dir)]
        left += [f"pod netns {n}" for n in cleanup.pod_netns_in(plan.cluster_cidr)]
        for node in plan.nodes:
            left += [f"cgroup {d}" for d in cleanup.cgroup_dirs(node.cgroup_root)]
            left += [f"shim {p}" for p in cleanup.processes_with_arg(str(node.containerd_socket))]
        if plan.state_dir.exists():
            left.append(f"directory {plan.state_dir}")
        return left


def free_index() -> int:
    """The lowest cluster index whose bridge does not exist."""
    for i in range(10):
        if not Path("/sys/class/net", f"stbr{i}").exists():
            return i
    raise RealNodesError("ten real-node clusters exist (bridges stbr0..stbr9): stop one")


def _ensure_cgroup_root(rel: str) -> None:
    """The kubelet requires its cgroupRoot to exist in every hierarchy. cpuset children
    start with no CPUs or memory nodes on v1, so they are copied down from the parent."""
    for hierarchy in sorted(cleanup.CGROUP_ROOT.iterdir()):
        if not (hierarchy / "cgroup.procs").exists():
            continue
        cur = hierarchy
        for part in rel.strip("/").split("/"):
            parent, cur = cur, cur / part
            cur.mkdir(exist_ok=True)
            for f in ("cpuset.cpus", "cpuset.mems"):
                if (cur / f).exists() and not (cur / f).read_text().strip():
                    (cur / f).write_text((parent / f).read_text())


def _terminate(pid: int, grace_s: float = 10.0) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        if pid_alive(pid):
            os.kill(pid, signal.SIGKILL)


def _http_ok(url: str) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return int(resp.status) == 200
    except OSError:
        return False


@contextlib.contextmanager
def running(name: str, node_names: Sequence[str], **kwargs: Any) -> Iterator[RealNodeCluster]:
    """``with running(...) as cluster``: start, yield, always stop."""
    cluster = RealNodeCluster.start(name, node_names, **kwargs)
    try:
        yield cluster
    finally:
        cluster.stop()
