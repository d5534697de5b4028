"""The configuration files of a real node's components, rendered from the plan.

Pure functions (plan in, text or dict out), so every setting that matters can be read
and unit-tested here without root, namespaces or binaries. Why each non-default
setting is there is said beside it; the kubelet's cgroup v1 setting above all.
"""

from __future__ import annotations

import json
from typing import Any

from harness.backends.k8s.realnodes.plan import ClusterPlan, NodePlan

__all__ = [
    "PAUSE_IMAGE",
    "cni_conflist",
    "containerd_config",
    "corefile",
    "kube_proxy_config",
    "kubelet_config",
    "kubelet_kubeconfig",
    "prometheus_config",
]

# The pod sandbox image containerd's CRI starts first in every pod. registry.k8s.io is
# unreachable here, so tools/image/build makes our own and every node imports it.
PAUSE_IMAGE = "localhost/settlers-pause:3.10"


def containerd_config(node: NodePlan, pause_image: str = PAUSE_IMAGE) -> str:
    """containerd 1.6 (Debian 12's) config, version 2: its own root, state and socket so
    several containerds share the machine, CRI with the CNI bridge of this node."""
    root = node.state_dir / "containerd"
    sock = node.containerd_socket
    return f"""version = 2
root = "{root}"
state = "{node.run_dir / 'containerd'}"
# Not needed here, and `opt` would write to /opt/containerd, shared by every node.
disabled_plugins = [
  "io.containerd.internal.v1.opt",
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.zfs",
  "io.containerd.tracing.processor.v1.otlp",
]

[grpc]
  address = "{sock}"

[ttrpc]
  address = "{sock}.ttrpc"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{pause_image}"
  # exec/attach/port-forward streams: only this node's kubelet connects.
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false
  disable_apparmor = true
  # Keep pods' oom_score_adj within containerd's own: lowering it (the sandbox asks for
  # -998) needs CAP_SYS_RESOURCE, which a machine like this one's sandbox withholds, and
  # runc then fails every pod with "can't get final child's PID from pipe".
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        # cgroupfs, as the kubelet's cgroupDriver (no systemd manages cgroups here).
        SystemdCgroup = false
        # runc's state per node (its default /run/containerd/runc is shared by all).
        Root = "{node.run_dir / 'runc'}"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "{node.state_dir / 'cni' / 'net.d'}"
    max_conf_num = 1
"""


def cni_conflist(plan: ClusterPlan, node: NodePlan) -> dict[str, Any]:
    """The CNI bridge plugin on a per-node bridge ``cni0``: pods get addresses from the
    node's pod CIDR and route through the node, which routes other nodes' pod CIDRs to
    those nodes over the cluster bridge. No masquerade: a pod's address is seen as is by
    every other pod, as in any flat Kubernetes network."""
    return {
        "cniVersion": "1.0.0",
        "name": f"settlers-{plan.index}-{node.position}",
        "plugins": [
            {
                "type": "bridge",
                "bridge": "cni0",
                "isGateway": True,
                "ipMasq": False,
                # A pod reaching its own Service's address and being sent to itself.
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": node.pod_cidr}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                    # Per node: host-local's default /var/lib/cni/networks is shared.
                    "dataDir": str(node.state_dir / "cni" / "ipam"),
                },
            },
            {"type": "portmap", "capabilities": {"portMappings": True}},
        ],
    }


def cni_conflist_text(plan: ClusterPlan, node: NodePlan) -> str:
    return json.dumps(cni_conflist(plan, node), indent=2) + "\n"


def kubelet_config(plan: ClusterPlan, node: NodePlan) -> dict[str, Any]:
    """KubeletConfiguration for one node.

    cgroup v1: Kubernetes 1.35 deprecated it and the kubelet refuses to start on a v1 host
    unless ``failCgroupV1: false``; this machine has only v1 controllers mounted, so it is
    set. On a cgroup v2 host the setting is simply unused (drop it there), and the
    per-node ``cgroupRoot`` works the same under the unified hierarchy.

    containerd 1.x does not answer the CRI ``RuntimeConfig`` call, so the kubelet falls
    back to ``cgroupDriver`` from this file (a fallback Kubernetes removes in 1.38; with
    containerd 2.x the driver is read from the runtime).
    """
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "failCgroupV1": False,
        "failSwapOn": False,
        "cgroupDriver": "cgroupfs",
        # Every kubelet here shares the machine's cgroup hierarchies: each keeps its pods
        # under its own root, so one node's QoS tiers never see another node's pods.
        "cgroupRoot": node.cgroup_root,
        "cgroupsPerQOS": True,
        "containerRuntimeEndpoint": f"unix://{node.containerd_socket}",
        "imageServiceEndpoint": f"unix://{node.containerd_socket}",
        "address": node.ip,
        "port": 10250,
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",   # in the node's own network namespace
        "healthzPort": 10248,
        # A test cluster on one machine: the API server (admin certificate) is the only
        # client; anonymous + AlwaysAllow keeps `kubectl logs` working without a
        # per-node serving certificate and webhook authorisation.
        "authentication": {"anonymous": {"enabled": True}, "webhook": {"enabled": False}},
        "authorization": {"mode": "AlwaysAllow"},
        "clusterDNS": [plan.dns_ip],
        "clusterDomain": "cluster.local",
        "resolvConf": str(node.state_dir / "resolv.conf"),
        "podLogsDir": str(node.state_dir / "pod-logs"),
        "maxPods": 110,
        # The images are imported, never pulled: garbage-collecting one would leave the
        # node unable to start pods. Eviction at a few percent of a shared disk only.
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "evictionHard": {"memory.available": "100Mi", "nodefs.available": "1%",
                         "imagefs.available": "1%", "nodefs.inodesFree": "1%"},
        "localStorageCapacityIsolation": False,
        "protectKernelDefaults": False,
        "serializeImagePulls": False,
        "registerNode": True,
        "nodeStatusReportFrequency": "10s",
    }


def kubelet_kubeconfig(server: str, ca: str, cert: str, key: str, name: str) -> dict[str, Any]:
    """A kubeconfig with the cluster's admin credentials and the API server's bridge
    address (the nodes cannot reach the host's loopback)."""
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": {"server": server, "certificate-authority": ca}}],
        "users": [{"name": name, "user": {"client-certificate": cert, "client-key": key}}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": name}}],
        "current-context": name,
    }


def kube_proxy_config(plan: ClusterPlan, node: NodePlan, kubeconfig: str) -> dict[str, Any]:
    """kube-proxy in iptables mode inside the node's namespace (its rules live and die
    with the namespace). Conntrack sysctls are machine-wide and read-only in a network
    namespace, so kube-proxy is told not to touch them."""
    return {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "clientConnection": {"kubeconfig": kubeconfig},
        "mode": "iptables",
        "clusterCIDR": plan.cluster_cidr,
        "hostnameOverride": node.name,
        "bindAddress": node.ip,
        "metricsBindAddress": "127.0.0.1:10249",
        "healthzBindAddress": "127.0.0.1:10256",
        "conntrack": {"maxPerCore": 0, "min": 0, "tcpEstablishedTimeout": "0s",
                      "tcpCloseWaitTimeout": "0s"},
    }


def corefile(plan: ClusterPlan, kubeconfig: str, health_port: int, ready_port: int) -> str:
    """CoreDNS on the host's bridge address, answering cluster.local from the API. Names
    outside the cluster are not forwarded: this machine has no upstream resolver."""
    return f""".:53 {{
    bind {plan.dns_ip}
    errors
    health 127.0.0.1:{health_port}
    ready 127.0.0.1:{ready_port}
    kubernetes cluster.local in-addr.arpa ip6.arpa {{
        kubeconfig {kubeconfig}
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
    }}
    cache 5
}}
"""


def prometheus_config(targets_file: str, scrape_interval_s: float = 5.0) -> dict[str, Any]:
    """Debian's Prometheus on the host. Debian builds it without ``kubernetes_sd``, so the
    pods come from a file that `podsd` keeps up to date from the API: those annotated
    ``prometheus.io/scrape: "true"``, at their pod address and annotated port and path,
    as the Helm chart annotates producers. The host reaches pod addresses through the
    routes `up` adds."""
    interval = f"{scrape_interval_s:g}s"
    return {
        "global": {"scrape_interval": interval, "evaluation_interval": interval},
        "scrape_configs": [{
            "job_name": "kubernetes-pods",
            "file_sd_configs": [{"files": [targets_file], "refresh_interval": "5s"}],
        }],
    }
