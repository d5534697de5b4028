"""The real-node cluster's plan and rendered configs: pure, no root needed."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from harness.backends.k8s.realnodes import configs, plan_cluster
from harness.backends.k8s.realnodes.cleanup import mounts_under
from harness.backends.k8s.realnodes.net import shaping_commands


def _plan(n: int = 3, index: int = 2):
    return plan_cluster("t", [f"node-{i}" for i in range(1, n + 1)], index,
                        {"node-1": {"topology.kubernetes.io/zone": "z1"}}, Path("/s"))


def test_addresses_are_distinct_and_in_their_ranges() -> None:
    plan = _plan(5)
    ips = [n.ip for n in plan.nodes]
    assert len(set(ips)) == 5 and plan.host_ip not in ips
    bridge = ipaddress.ip_network(f"{plan.host_ip}/{plan.prefix_len}", strict=False)
    assert all(ipaddress.ip_address(ip) in bridge for ip in ips)
    cidrs = [ipaddress.ip_network(n.pod_cidr) for n in plan.nodes]
    cluster = ipaddress.ip_network(plan.cluster_cidr)
    assert all(c.subnet_of(cluster) for c in cidrs)
    assert not any(a.overlaps(b) for i, a in enumerate(cidrs) for b in cidrs[i + 1:])
    # Nothing may overlap the API server's default Service range.
    services = ipaddress.ip_network("10.0.0.0/24")
    assert not cluster.overlaps(services) and not bridge.overlaps(services)
    assert ipaddress.ip_address(plan.service_ip) in services


def test_names_fit_linux_interface_limits_and_clusters_do_not_share_them() -> None:
    a, b = _plan(200, 0), _plan(200, 9)
    for plan in (a, b):
        assert len(plan.bridge) <= 15
        assert all(len(n.host_veth) <= 15 for n in plan.nodes)
    assert not {n.netns for n in a.nodes} & {n.netns for n in b.nodes}
    assert not ipaddress.ip_network(a.cluster_cidr).overlaps(ipaddress.ip_network(b.cluster_cidr))


@pytest.mark.parametrize("bad", [
    dict(name="Upper", nodes=["n"]), dict(name="ok", nodes=[]),
    dict(name="ok", nodes=["a", "a"]), dict(name="ok", nodes=["a"], index=10),
])
def test_bad_plans_are_refused(bad: dict) -> None:
    with pytest.raises(ValueError):
        plan_cluster(bad["name"], bad["nodes"], bad.get("index", 0))


def test_kubelet_config_allows_cgroup_v1_and_keeps_nodes_apart() -> None:
    plan = _plan()
    c1, c2 = (configs.kubelet_config(plan, n) for n in plan.nodes[:2])
    assert c1["failCgroupV1"] is False          # this machine is cgroup v1
    assert c1["cgroupDriver"] == "cgroupfs"
    assert c1["cgroupRoot"] != c2["cgroupRoot"]
    assert c1["containerRuntimeEndpoint"] != c2["containerRuntimeEndpoint"]
    assert c1["clusterDNS"] == [plan.host_ip]
    assert c1["imageGCHighThresholdPercent"] == 100   # imported images must never be GC'd


def test_containerd_configs_share_nothing_between_nodes() -> None:
    plan = _plan()
    a, b = (configs.containerd_config(n) for n in plan.nodes[:2])
    pick = [line for line in a.splitlines() if line.startswith(("root", "state", "  address"))]
    assert len(pick) == 4 and all(line not in b for line in pick)
    assert configs.PAUSE_IMAGE in a and 'SystemdCgroup = false' in a


def test_cni_uses_the_node_pod_cidr_without_masquerade() -> None:
    plan = _plan()
    conf = configs.cni_conflist(plan, plan.nodes[1])
    bridge = conf["plugins"][0]
    assert bridge["ipam"]["ranges"] == [[{"subnet": plan.nodes[1].pod_cidr}]]
    assert bridge["ipMasq"] is False
    assert str(plan.nodes[1].state_dir) in bridge["ipam"]["dataDir"]


def test_shaping_groups_pairs_by_rate_and_leaves_unlimited_pairs_alone() -> None:
    plan = _plan(4)
    rates = {frozenset({"node-1", "node-2"}): float("inf")}

    def rate(a: str, b: str) -> float:
        return rates.get(frozenset({a, b}), 100.0 if "node-4" in (a, b) else 500.0)

    cmds = shaping_commands(plan, plan.nodes[0], rate)
    classes = [c for c in cmds if c[:2] == ["tc", "class"]]
    assert sorted(c[c.index("rate") + 1] for c in classes) == ["100mbit", "500mbit"]
    dsts = [c[c.index("dst") + 1] for c in cmds if c[:2] == ["tc", "filter"]]
    n2, n3, n4 = plan.nodes[1], plan.nodes[2], plan.nodes[3]
    assert f"{n2.ip}/32" not in dsts and n2.pod_cidr not in dsts    # unlimited
    assert {f"{n3.ip}/32", n3.pod_cidr, f"{n4.ip}/32", n4.pod_cidr} == set(dsts)
    assert shaping_commands(plan, plan.nodes[0], lambda a, b: float("inf")) == []


def test_mounts_under_finds_deepest_first_and_ignores_lookalikes() -> None:
    info = "\n".join([
        "1 0 8:1 / / rw - ext4 /dev/vda rw",
        "2 1 0:5 / /s/t/node-1/containerd/x rw - overlay overlay rw",
        "3 1 0:6 / /s/t/node-1/kubelet/pods/p/volumes/v rw - tmpfs tmpfs rw",
        "4 1 0:7 / /s/t/node-1/kubelet rw - tmpfs tmpfs rw",
        "5 1 0:8 / /s/tt/other rw - tmpfs tmpfs rw",
        r"6 1 0:9 / /s/t/with\040space rw - tmpfs tmpfs rw",
    ])
    found = mounts_under(Path("/s/t"), mountinfo=info)
    assert found[0].endswith("volumes/v") and "/s/tt/other" not in found
    assert "/s/t/with space" in found
    # A mount inside another is unmounted before it.
    assert found.index("/s/t/node-1/kubelet") > found.index(
        "/s/t/node-1/kubelet/pods/p/volumes/v")


def test_the_kubernetes_backend_finds_a_real_node_cluster_by_its_context(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    from harness.backends.kubernetes.options import KubernetesOptions, with_real_nodes

    monkeypatch.setenv("SETTLERS_NODES_DIR", str(tmp_path))
    (tmp_path / "lab").mkdir()
    (tmp_path / "lab" / "cluster.json").write_text(json.dumps(
        {"node_names": ["node-1"], "index": 3, "prometheus_port": 9999}))
    mine = tmp_path / "mine.yaml"
    opts = with_real_nodes(KubernetesOptions(context="settlers-nodes-lab", values_files=(mine,)))
    assert opts.kubeconfig == tmp_path / "lab" / "kubeconfig.yaml"
    # The cluster's values first: the user's own files override them.
    assert opts.values_files == (tmp_path / "lab" / "chart-values.yaml", mine)
    assert opts.prometheus_url == opts.prometheus_query_url == "http://10.250.3.1:9999"
    # Another context, or no such cluster: untouched.
    for ctx in ("kind-lab", "settlers-nodes-nope"):
        assert with_real_nodes(KubernetesOptions(context=ctx)) == KubernetesOptions(context=ctx)
