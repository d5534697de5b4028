"""Names, addresses and paths of a real-node cluster, decided before anything starts.

A real-node cluster lives on this machine as kind's do, with network namespaces where
kind has containers: one host bridge, and per node a namespace joined to it by a veth,
holding that node's containerd, kubelet and kube-proxy. Everything a node is called or
reached by is a pure function of (cluster index, node position), so `down` can find and
remove it all from the plan alone, even after a crash lost the processes' pid files.

Index ``k`` (0..9) keeps clusters apart: bridge ``stbr<k>`` on ``10.250.<k>.0/24`` (the
host is ``.1``, node ``i`` is ``.(10+i)``); pods of node ``i`` in ``10.<240+k>.<i>.0/24``.
Those ranges avoid the API server's default Service range (10.0.0.0/24).
"""

from __future__ import annotations

import ipaddress
import os
import re
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "MAX_INDEX",
    "MAX_NODES",
    "ClusterPlan",
    "NodePlan",
    "plan_cluster",
    "run_root",
    "state_root",
]

MAX_INDEX = 9
MAX_NODES = 200  # node addresses .11 .. .210 in the /24
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,30}[a-z0-9])?$")


def state_root() -> Path:
    """Where clusters keep disk state (images, kubelet dirs, logs): $SETTLERS_NODES_DIR,
    else ~/.local/state/settlers-testbed/nodes."""
    env = os.environ.get("SETTLERS_NODES_DIR")
    if env:
        return Path(env).expanduser()
    state = Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state")
    return state / "settlers-testbed" / "nodes"


def run_root() -> Path:
    """Where sockets and runtime state go: short, because a Unix socket path is limited
    to 107 bytes and containerd's state is recreated at every start anyway."""
    return Path("/run/settlers-nodes")


@dataclass(frozen=True)
class NodePlan:
    name: str
    position: int          # 1-based
    netns: str
    host_veth: str
    ip: str                # on the cluster bridge
    pod_cidr: str
    state_dir: Path        # containerd root, kubelet root, CNI, logs
    run_dir: Path          # containerd state and socket
    labels: dict[str, str]

    @property
    def containerd_socket(self) -> Path:
        return self.run_dir / "containerd.sock"

    @property
    def kubelet_dir(self) -> Path:
        return self.state_dir / "kubelet"

    @property
    def cgroup_root(self) -> str:
        """The kubelet's ``cgroupRoot``: pods of node i live under it, apart from the other
        nodes' pods (every kubelet here shares the machine's cgroup hierarchies)."""
        return f"/settlers-nodes/{self.netns}"


@dataclass(frozen=True)
class ClusterPlan:
    name: str
    index: int
    bridge: str
    host_ip: str
    prefix_len: int
    cluster_cidr: str
    nodes: tuple[NodePlan, ...]
    state_dir: Path
    run_dir: Path

    @property
    def service_ip(self) -> str:
        """The ``kubernetes`` Service's ClusterIP (the first of the default range): the API
        server's certificate must name it, since in-cluster clients dial it by IP."""
        return "10.0.0.1"

    @property
    def dns_ip(self) -> str:
        """Pods' nameserver: CoreDNS on the host's bridge address."""
        return self.host_ip

    def node(self, name: str) -> NodePlan:
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(f"no node {name!r} in cluster {self.name!r}")


def plan_cluster(name: str, node_names: list[str], index: int = 0,
                 labels: dict[str, dict[str, str]] | None = None,
                 state_dir: Path | None = None) -> ClusterPlan:
    """The plan of cluster ``name`` with the given nodes at index ``index``."""
    if not _NAME.match(name):
        raise ValueError(f"invalid cluster name {name!r}: 1-32 lower-case letters, digits, '-'")
    if not 0 <= index <= MAX_INDEX:
        raise ValueError(f"cluster index must be 0..{MAX_INDEX}, got {index}")
    if not 1 <= len(node_names) <= MAX_NODES:
        raise ValueError(f"a real-node cluster has 1..{MAX_NODES} nodes, got {len(node_names)}")
    if len(set(node_names)) != len(node_names):
        raise ValueError("node names must be distinct")
    net = ipaddress.ip_network(f"10.250.{index}.0/24")
    root = (state_dir or state_root()) / name
    run = run_root() / name
    nodes = []
    for i, node in enumerate(node_names, start=1):
        nodes.append(NodePlan(
            name=node, position=i,
            netns=f"st{index}-n{i}",
            host_veth=f"st{index}v{i}",
            ip=str(net.network_address + 10 + i),
            pod_cidr=f"10.{240 + index}.{i}.0/24",
            state_dir=root / node,
            run_dir=run / node,
            labels=dict((labels or {}).get(node, {})),
        ))
    return ClusterPlan(
        name=name, index=index, bridge=f"stbr{index}",
        host_ip=str(net.network_address + 1), prefix_len=net.prefixlen,
        cluster_cidr=f"10.{240 + index}.0.0/16", nodes=tuple(nodes),
        state_dir=root, run_dir=run,
    )
