"""The cluster's network, made and unmade with iproute2 and tc.

One bridge on the host; per node a network namespace with ``eth0`` (a veth whose other
end is on the bridge), a default route to the host, routes to the other nodes' pod
CIDRs, and forwarding on. The host routes every pod CIDR to its node, so host processes
(the API server, CoreDNS, Prometheus) reach pods.

Bandwidth between nodes is shaped with htb on each node's ``eth0`` (egress): one class
per pair class (same-zone, cross-zone, cross-region) at that class's rate, every other
node's address and pod CIDR filtered into the class of its pair. Latency is NOT
emulated: this kernel has no netem (htb and tbf only shape rate), so links here have
the veth's own delay (tens of microseconds). Response times measured on this cluster
therefore reflect bandwidth, CPU and the software path, not distance.
"""

from __future__ import annotations

import math
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path

from harness.backends.k8s.realnodes.plan import ClusterPlan, NodePlan

__all__ = ["NetError", "create_network", "delete_network", "netns_exists", "shaping_commands"]


class NetError(RuntimeError):
    """An ip/tc command failed; the message names it and what it printed."""


def _run(args: Sequence[str], check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(list(args), capture_output=True, text=True, check=False, timeout=60)
    if check and proc.returncode != 0:
        raise NetError(f"`{' '.join(args)}` failed ({proc.returncode}): "
                       f"{(proc.stderr or proc.stdout).strip()}")
    return proc


def netns_exists(name: str) -> bool:
    return Path("/run/netns", name).exists()


def _in_ns(node: NodePlan, *args: str) -> list[str]:
    return ["nsenter", f"--net=/run/netns/{node.netns}", "--", *args]


def create_network(plan: ClusterPlan) -> None:
    """Bridge, namespaces, veths, addresses, routes and forwarding (see the module doc).
    Raises NetError; the caller removes what was made (`delete_network`)."""
    _run(["ip", "link", "add", plan.bridge, "type", "bridge"])
    _run(["ip", "addr", "add", f"{plan.host_ip}/{plan.prefix_len}", "dev", plan.bridge])
    _run(["ip", "link", "set", plan.bridge, "up"])
    for node in plan.nodes:
        _run(["ip", "netns", "add", node.netns])
        _run(["ip", "link", "add", node.host_veth, "type", "veth", "peer", "name", "eth0",
              "netns", node.netns])
        _run(["ip", "link", "set", node.host_veth, "master", plan.bridge, "up"])
        ns = ["ip", "-n", node.netns]
        _run([*ns, "link", "set", "lo", "up"])
        _run([*ns, "addr", "add", f"{node.ip}/{plan.prefix_len}", "dev", "eth0"])
        _run([*ns, "link", "set", "eth0", "up"])
        _run([*ns, "route", "add", "default", "via", plan.host_ip])
        # Pods on cni0 reach other nodes (forwarding), and a pod's reply to a Service
        # address it was DNATed through crosses the bridge's netfilter (br_netfilter),
        # as kube-proxy requires.
        _run(_in_ns(node, "sysctl", "-qw", "net.ipv4.ip_forward=1"))
        _run(_in_ns(node, "sysctl", "-qw", "net.bridge.bridge-nf-call-iptables=1"),
             check=False)
        for other in plan.nodes:
            if other is not node:
                _run([*ns, "route", "add", other.pod_cidr, "via", other.ip])
        _run(["ip", "route", "add", node.pod_cidr, "via", node.ip, "dev", plan.bridge])


def shaping_commands(plan: ClusterPlan, node: NodePlan,
                     rate_mbps: Callable[[str, str], float]) -> list[list[str]]:
    """The tc commands that shape ``node``'s egress; ``rate_mbps(a, b)`` is the pair's
    rate (inf: not shaped). Pairs with the same rate share one htb class, as a node's
    uplink for a pair class is shared by every node of that class."""
    classes: dict[float, int] = {}
    filters: list[tuple[str, int]] = []
    for other in plan.nodes:
        if other is node:
            continue
        rate = rate_mbps(node.name, other.name)
        if math.isinf(rate):
            continue
        cid = classes.setdefault(rate, 10 + len(classes))
        filters += [(f"{other.ip}/32", cid), (other.pod_cidr, cid)]
    if not classes:
        return []
    dev = ["dev", "eth0"]
    # No `default`: unclassified traffic (to the host: API, DNS, scrapes) is not shaped.
    cmds = [["tc", "qdisc", "add", *dev, "root", "handle", "1:", "htb"]]
    for rate, cid in classes.items():
        r = f"{rate:g}mbit"
        cmds.append(["tc", "class", "add", *dev, "parent", "1:", "classid", f"1:{cid}",
                     "htb", "rate", r, "ceil", r])
    for dst, cid in filters:
        cmds.append(["tc", "filter", "add", *dev, "parent", "1:", "protocol", "ip", "prio",
                     "1", "u32", "match", "ip", "dst", dst, "flowid", f"1:{cid}"])
    return cmds


def apply_shaping(plan: ClusterPlan, rate_mbps: Callable[[str, str], float]) -> None:
    for node in plan.nodes:
        for cmd in shaping_commands(plan, node, rate_mbps):
            _run(_in_ns(node, *cmd))


def delete_network(plan: ClusterPlan) -> list[str]:
    """Remove namespaces and the bridge (their veths, routes, qdiscs and iptables rules
    go with them). Idempotent; returns what it removed."""
    removed = []
    for node in plan.nodes:
        if netns_exists(node.netns):
            _run(["ip", "netns", "del", node.netns], check=False)
            removed.append(f"netns {node.netns}")
        if _run(["ip", "link", "show", node.host_veth], check=False).returncode == 0:
            _run(["ip", "link", "del", node.host_veth], check=False)
    if _run(["ip", "link", "show", plan.bridge], check=False).returncode == 0:
        _run(["ip", "link", "del", plan.bridge], check=False)
        removed.append(f"bridge {plan.bridge}")
    return removed
