"""The Helm chart charts/settlers-testbed, rendered by the real helm (no cluster).

`helm lint` and `helm template` over a matrix of values; every rendered object is
parsed and checked: names, schedulerNames, Istio port names, the economy ConfigMap,
NetMARKS' KubeSchedulerConfiguration, least-privilege RBAC and the restricted Pod
Security Standard on every pod. Bad values must fail with a message naming the key.

helm comes from tools/k8s/build; without it these tests skip on a developer machine
and fail in CI (CI=true), where the build is part of the setup.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.backends.kubernetes import PhaseValues
from harness.backends.kubernetes.helm import CHART_DIR, KUBE_VERSION, Helm, HelmError
from settlers.economy import Economy, Item, load_economy
from settlers.wire import PROTOCOLS

Obj = dict[str, Any]


def kinds(objs: list[Obj], kind: str) -> dict[str, Obj]:
    return {o["metadata"]["name"]: o for o in objs if o["kind"] == kind}


def pod_specs(objs: list[Obj]) -> Iterator[tuple[str, Obj]]:
    """(object name, pod spec) of every workload that makes pods."""
    for o in objs:
        if o["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
            yield f"{o['kind']}/{o['metadata']['name']}", o["spec"]["template"]["spec"]


def pinned_node(spec: Obj) -> str:
    """The one node a pod spec's required node affinity allows (metadata.name In [n])."""
    (term,) = spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
        "nodeSelectorTerms"]
    assert "matchExpressions" not in term
    (field,) = term["matchFields"]
    assert (field["key"], field["operator"]) == ("metadata.name", "In")
    (node,) = field["values"]
    return str(node)


def producers(objs: list[Obj]) -> dict[str, Obj]:
    return {n: d for n, d in kinds(objs, "Deployment").items()
            if d["metadata"]["labels"]["app.kubernetes.io/component"] == "producer"}


ECONOMY = load_economy()
# protocol x NetMARKS on/off x firmament on/off; per-item overrides in half of them
# (each scheduler alone), which keeps the matrix at 8 renders.
MATRIX = [(p, n, f, n != f) for p, n, f in itertools.product(PROTOCOLS, [False, True],
                                                             [False, True])]


def matrix_values(protocol: str, netmarks: bool, firmament: bool, overrides: bool) -> Obj:
    values: Obj = {
        "protocol": protocol,
        "netmarks": {"enabled": netmarks},
        "firmament": {"enabled": firmament},
        "orderApp": {"enabled": True},
    }
    if overrides:
        values["schedulerName"] = "netmarks-scheduler"
        values["firmament"]["settle"] = 0.5
        values["items"] = {
            "bread": {"replicas": 3, "schedulerName": "firmament",
                      "resources": {"requests": {"cpu": "250m", "memory": "96Mi"}}},
            "coal": {"nodes": ["node-1", "node-2", "node-2"]},
            "tools": {"nodeSelector": {"pool": "b"}, "tolerations": [
                {"key": "dedicated", "operator": "Equal", "value": "x", "effect": "NoSchedule"}]},
        }
    return values


@pytest.fixture(scope="module", params=MATRIX, ids=lambda p: "-".join(
    [p[0], *(name for name, on in zip(("netmarks", "firmament", "overrides"), p[1:], strict=True)
             if on)]))
def rendered(request: pytest.FixtureRequest, helm: Helm) -> tuple[Obj, list[Obj]]:
    values = matrix_values(*request.param)
    return values, helm.template([values], release="exp", namespace="bench")


# -- the matrix ---------------------------------------------------------------------

def test_lint_strict_passes(helm: Helm) -> None:
    helm.lint()
    for protocol, on in itertools.product(PROTOCOLS, [False, True]):
        helm.lint([matrix_values(protocol, on, on, on)])


def test_one_deployment_and_service_per_item(rendered: tuple[Obj, list[Obj]]) -> None:
    values, objs = rendered
    deps, svcs = producers(objs), kinds(objs, "Service")
    pinned = values.get("items", {}).get("coal", {}).get("nodes")
    expected = set(ECONOMY.names) - ({"coal"} if pinned else set())
    assert expected <= set(deps)
    assert set(ECONOMY.names) <= set(svcs)
    for item in ECONOMY.names:
        svc = svcs[item]
        port = svc["spec"]["ports"][0]
        # Istio picks the protocol from the port name prefix and appProtocol.
        assert port["name"].startswith(f"{values['protocol']}-")
        assert port["appProtocol"] == values["protocol"]
        assert svc["spec"]["selector"]["app"] == item


def test_producer_command_and_probes(rendered: tuple[Obj, list[Obj]]) -> None:
    values, objs = rendered
    for name, dep in producers(objs).items():
        item = dep["metadata"]["labels"]["app"]
        pod = dep["spec"]["template"]
        (c,) = pod["spec"]["containers"]
        assert c["command"] == ["settlers", "serve"]
        assert f"--item={item}" in c["args"] and f"--protocol={values['protocol']}" in c["args"]
        assert "--economy=/etc/settlers/economy.yaml" in c["args"]
        if values["protocol"] == "grpc":
            assert c["readinessProbe"]["grpc"]["port"] == 8080
            assert any(a.startswith("--metrics-port=") for a in c["args"])
        else:
            assert c["readinessProbe"]["httpGet"]["path"] == "/healthz"
        labels = pod["metadata"]["labels"]
        # Istio and NetMARKS name workloads by these labels.
        assert labels["app"] == item and labels["version"]
        assert pod["metadata"]["annotations"]["prometheus.io/scrape"] == "true", name
        assert pod["spec"]["automountServiceAccountToken"] is False


def test_scheduler_names_follow_global_and_per_item_values(rendered: tuple[Obj, list[Obj]]) -> None:
    values, objs = rendered
    deps = producers(objs)
    if "items" not in values:
        assert all("schedulerName" not in d["spec"]["template"]["spec"] for d in deps.values())
        return
    spec = {n: d["spec"]["template"]["spec"] for n, d in deps.items()}
    assert spec["bread"]["schedulerName"] == "firmament"
    assert deps["bread"]["spec"]["replicas"] == 3
    assert spec["bread"]["containers"][0]["resources"]["requests"]["cpu"] == "250m"
    assert spec["water"]["schedulerName"] == "netmarks-scheduler"
    assert spec["tools"]["nodeSelector"] == {"pool": "b"}
    assert spec["tools"]["tolerations"][0]["key"] == "dedicated"
    # Pinned: one Deployment per node, a required affinity on the node's name placed
    # by the default scheduler (a pod that does not fit stays Pending, visibly).
    assert {n: (d["spec"]["replicas"], pinned_node(spec[n])) for n, d in deps.items()
            if n.startswith("coal")} == {"coal-p0": (1, "node-1"), "coal-p1": (2, "node-2")}
    for n in ("coal-p0", "coal-p1"):
        assert "schedulerName" not in spec[n] and "nodeName" not in spec[n]


def test_economy_configmap_is_the_default_economy(rendered: tuple[Obj, list[Obj]],
                                                  tmp_path: Path) -> None:
    _, objs = rendered
    (cm,) = [o for n, o in kinds(objs, "ConfigMap").items() if n.endswith("-economy")]
    path = tmp_path / "economy.yaml"
    path.write_text(cm["data"]["economy.yaml"])
    economy = load_economy(str(path))
    assert sorted(economy.edges()) == sorted(ECONOMY.edges())
    assert economy.name == ECONOMY.name


def test_every_pod_meets_the_restricted_pod_security_standard(
        rendered: tuple[Obj, list[Obj]]) -> None:
    _, objs = rendered
    specs = list(pod_specs(objs))
    assert specs
    for name, spec in specs:
        psc = spec.get("securityContext", {})
        assert psc.get("runAsNonRoot") is True, name
        assert psc.get("runAsUser", 0) != 0, name
        assert psc.get("seccompProfile", {}).get("type") == "RuntimeDefault", name
        for key in ("hostNetwork", "hostPID", "hostIPC"):
            assert not spec.get(key), (name, key)
        for vol in spec.get("volumes", []):
            assert set(vol) - {"name"} <= {"configMap", "emptyDir", "secret", "projected",
                                           "downwardAPI"}, (name, vol)
        for c in spec["containers"] + spec.get("initContainers", []):
            sc = c.get("securityContext", {})
            assert sc.get("allowPrivilegeEscalation") is False, (name, c["name"])
            assert sc.get("capabilities", {}).get("drop") == ["ALL"], (name, c["name"])
            assert not sc.get("capabilities", {}).get("add"), (name, c["name"])
            assert not sc.get("privileged"), (name, c["name"])
            assert sc.get("readOnlyRootFilesystem") is True, (name, c["name"])
            assert "resources" in c, (name, c["name"])


def test_rbac_is_least_privilege(rendered: tuple[Obj, list[Obj]]) -> None:
    values, objs = rendered
    roles = [o for o in objs if o["kind"] in ("ClusterRole", "Role")]
    for role in roles:
        for rule in role["rules"]:
            assert "*" not in rule["verbs"], role["metadata"]["name"]
            assert "*" not in rule["resources"], role["metadata"]["name"]
            assert "*" not in rule.get("apiGroups", []), role["metadata"]["name"]
            # Nothing here writes workloads or reads secrets.
            assert "secrets" not in rule["resources"]
    bindings = [o for o in objs if o["kind"] in ("ClusterRoleBinding", "RoleBinding")]
    for b in bindings:
        assert b["roleRef"]["name"] not in ("cluster-admin", "admin", "edit"), b
    bound = {b["roleRef"]["name"] for b in bindings}
    if values["netmarks"]["enabled"]:
        # The upstream recipe for a second kube-scheduler.
        assert {"system:kube-scheduler", "system:volume-scheduler",
                "extension-apiserver-authentication-reader"} <= bound
    else:
        assert not any(name.startswith("system:") for name in bound)
    if values["firmament"]["enabled"]:
        (fr,) = [r for r in roles if r["metadata"]["name"].endswith("-firmament")]
        grants = {(res, verb) for rule in fr["rules"] for res in rule["resources"]
                  for verb in rule["verbs"]}
        # create_namespaced_binding POSTs .../namespaces/NS/bindings: RBAC's `bindings`.
        assert ("bindings", "create") in grants and ("pods", "watch") in grants
        assert ("pods/binding", "create") not in grants
        assert ("pods", "delete") not in grants and ("pods", "update") not in grants
        assert not any(res == "events" for res, _ in grants)  # it writes none
    if values["netmarks"]["enabled"]:
        (er,) = [r for r in roles if r["metadata"]["name"].endswith("-netmarks-extender")]
        # Namespaced by default; pods (to know who runs where) and bindings (bindVerb).
        assert er["kind"] == "Role"
        grants = {(res, verb) for rule in er["rules"] for res in rule["resources"]
                  for verb in rule["verbs"]}
        assert grants == {("pods", "get"), ("pods", "list"), ("pods", "watch"),
                          ("bindings", "create")}


def test_netmarks_scheduler_configuration(rendered: tuple[Obj, list[Obj]]) -> None:
    values, objs = rendered
    deps, cms, svcs = kinds(objs, "Deployment"), kinds(objs, "ConfigMap"), kinds(objs, "Service")
    name = "exp-settlers-testbed-netmarks-scheduler"
    if not values["netmarks"]["enabled"]:
        assert name not in deps and "exp-settlers-testbed-netmarks-extender" not in deps
        return
    config = yaml.safe_load(cms[name]["data"]["config.yaml"])
    assert config["kind"] == "KubeSchedulerConfiguration"
    assert [p["schedulerName"] for p in config["profiles"]] == ["netmarks-scheduler"]
    assert config["leaderElection"] == {
        "leaderElect": True, "resourceLock": "leases", "resourceName": "netmarks-scheduler",
        "resourceNamespace": "bench"}
    (ext,) = config["extenders"]
    svc = svcs["exp-settlers-testbed-netmarks-extender"]
    assert ext["urlPrefix"] == (f"http://{svc['metadata']['name']}.bench.svc:"
                                f"{svc['spec']['ports'][0]['port']}")
    assert ext["prioritizeVerb"] == "prioritize" and ext["weight"] >= 1
    assert ext["ignorable"] is True and ext["nodeCacheCapable"] is True
    assert ext["bindVerb"] == "bind"  # as the documented runs and the kwok backend
    sched = deps[name]["spec"]["template"]["spec"]
    assert sched["containers"][0]["image"] == f"registry.k8s.io/kube-scheduler:v{KUBE_VERSION}"
    ext_pod = deps["exp-settlers-testbed-netmarks-extender"]["spec"]["template"]["spec"]
    args = ext_pod["containers"][0]["args"]
    assert ext_pod["containers"][0]["command"] == ["schedulers", "netmarks-extender"]
    assert "--prometheus=http://prometheus.istio-system.svc:9090" in args
    assert {"--bind", "--await-binds=0.5", "--namespace=bench"} <= set(args)
    # Only the scheduler may call it.
    (policy,) = kinds(objs, "NetworkPolicy").values()
    (rule,) = policy["spec"]["ingress"]
    assert [peer["podSelector"]["matchLabels"]["app"] for peer in rule["from"]] == [
        "netmarks-scheduler"]
    assert policy["spec"]["podSelector"]["matchLabels"]["app"] == "netmarks-extender"


def test_firmament_deployment(rendered: tuple[Obj, list[Obj]]) -> None:
    values, objs = rendered
    deps = kinds(objs, "Deployment")
    name = "exp-settlers-testbed-firmament"
    if not values["firmament"]["enabled"]:
        assert name not in deps
        return
    c = deps[name]["spec"]["template"]["spec"]["containers"][0]
    assert c["command"] == ["schedulers", "firmament"]
    assert "--scheduler-name=firmament" in c["args"]
    # The documented runs' and the kwok backend's settings by default.
    assert f"--settle={values['firmament'].get('settle', 0.5)}" in c["args"]
    assert "--interval=0.2" in c["args"]
    assert deps[name]["spec"]["replicas"] == 1
    assert "--health-port=8081" in c["args"]
    for probe in ("startupProbe", "livenessProbe"):
        assert c[probe]["httpGet"] == {"path": "/healthz", "port": "http-health"}


def test_order_app_job_and_helm_test_are_jobs(rendered: tuple[Obj, list[Obj]]) -> None:
    values, objs = rendered
    jobs = kinds(objs, "Job")
    (sweep,) = [j for n, j in jobs.items() if n.endswith("-order-app")]
    # A hook: once after install, not on upgrade; a new run replaces the last Job.
    assert sweep["metadata"]["annotations"] == {
        "helm.sh/hook": "post-install", "helm.sh/hook-delete-policy": "before-hook-creation"}
    c = sweep["spec"]["template"]["spec"]["containers"][0]
    assert c["name"] == "order-app"
    assert "order-app sweep" in c["command"][2]
    for item in ECONOMY.names:
        assert f"{item}={item}:8080" in c["args"]
    assert c["args"][:2] == ["-p", values["protocol"]]
    (test,) = [j for n, j in jobs.items() if n.endswith("-test-order")]
    assert test["metadata"]["annotations"]["helm.sh/hook"] == "test"
    assert test["spec"]["backoffLimit"] == 0
    assert "tools=tools:8080" in test["spec"]["template"]["spec"]["containers"][0]["args"]


# -- options outside the matrix -------------------------------------------------------

def test_istio_switch_and_digest(helm: Helm) -> None:
    digest = "sha256:" + "ab" * 32
    objs = helm.template([{"istio": {"sidecarInject": True}, "image": {"digest": digest},
                           "metrics": {"scrape": False}}])
    bread = producers(objs)["bread"]["spec"]["template"]
    assert bread["metadata"]["labels"]["sidecar.istio.io/inject"] == "true"
    assert "prometheus.io/scrape" not in bread["metadata"].get("annotations", {})
    assert bread["spec"]["containers"][0]["image"].endswith("@" + digest)
    default = producers(helm.template())["bread"]["spec"]["template"]
    assert "sidecar.istio.io/inject" not in default["metadata"]["labels"]


def test_a_custom_economy(helm: Helm) -> None:
    econ = {"name": "tiny", "items": {"ore": {}, "metal": {"inputs": {"ore": 2}}}}
    objs = helm.template([{"economy": econ}])
    assert set(producers(objs)) == {"ore", "metal"}
    test = next(j for n, j in kinds(objs, "Job").items() if n.endswith("-test-order"))
    assert "metal=metal:8080" in test["spec"]["template"]["spec"]["containers"][0]["args"]


# -- the values the kubernetes backend sets per phase ------------------------------------

def test_scheduling_phase_renders_the_scheduler_and_the_economy(helm: Helm) -> None:
    economy = load_economy()
    phase = PhaseValues(economy=economy, protocol="grpc", scheduler_name="netmarks-scheduler",
                        component="netmarks", prometheus_url="http://prom.monitoring:9090")
    deps = kinds(helm.template([phase.render()]), "Deployment")
    assert set(economy.names) <= set(deps)
    for item in economy:
        pod = deps[item.name]["spec"]["template"]["spec"]
        assert pod["schedulerName"] == "netmarks-scheduler"
        assert deps[item.name]["spec"]["replicas"] == item.replicas
        assert pod["containers"][0]["resources"]["requests"] == item.resources.as_k8s()
        assert "--protocol=grpc" in pod["containers"][0]["args"]
    ext = deps["settlers-settlers-testbed-netmarks-extender"]["spec"]["template"]["spec"]
    assert "--prometheus=http://prom.monitoring:9090" in ext["containers"][0]["args"]


def test_measurement_phase_pins_every_pod(helm: Helm) -> None:
    economy = Economy(name="two", items={
        "ore": Item("ore", replicas=3),
        "metal": Item("metal", inputs={"ore": 1}),
    })
    placement = {"ore-0": "node-1", "ore-1": "node-2", "ore-2": "node-1", "metal-0": "node-3"}
    rendered = helm.template([PhaseValues(economy=economy, placement=placement).render()])
    deps = kinds(rendered, "Deployment")
    pinned = {n: (d["spec"]["replicas"], pinned_node(d["spec"]["template"]["spec"]))
              for n, d in deps.items()}
    assert pinned == {"ore-p0": (2, "node-1"), "ore-p1": (1, "node-2"), "metal": (1, "node-3")}


# -- bad values -------------------------------------------------------------------------

BAD_VALUES = [
    ({"protocol": "ftp"}, ["/protocol", "'http', 'grpc'"]),
    ({"replicas": -1}, ["/replicas", "minimum"]),
    ({"items": {"bread": {"replicas": -2}}}, ["/items/bread/replicas", "minimum"]),
    ({"economy": {"items": {"Bad_Item": {}}}}, ["Bad_Item", "does not match pattern"]),
    ({"items": {"Bread": {"replicas": 1}}}, ["Bread", "does not match pattern"]),
    ({"replica": 2}, ["additional properties 'replica' not allowed"]),
    ({"resources": {"requests": {"cpu": "100mcpu"}}}, ["/resources/requests/cpu", "100mcpu"]),
    ({"port": 70000}, ["/port", "maximum"]),
    ({"schedulerName": "Not A Name"}, ["/schedulerName"]),
    ({"netmarks": {"extender": {"httpTimeout": "soon"}}}, ["/netmarks/extender/httpTimeout"]),
    ({"image": {"digest": "sha256:nope"}}, ["/image/digest"]),
    ({"firmament": {"settle": -0.5}}, ["/firmament/settle", "minimum"]),
    # Caught by the templates: they need to see the whole economy.
    ({"items": {"salt": {"replicas": 1}}}, ['items.salt: "salt" is not an item of the economy']),
    ({"economy": {"items": {"bread": {"inputs": {"yeast": 1}}}}},
     ['economy.items.bread.inputs: "yeast" is not an item']),
    ({"items": {"bread": {"replicas": 2, "nodes": ["node-1"]}}},
     ["items.bread: nodes lists 1 node(s) but replicas is 2"]),
    ({"protocol": "grpc", "port": 9091}, ["metrics.grpcPort (9091) must differ from port"]),
]


@pytest.mark.parametrize(("values", "messages"), BAD_VALUES,
                         ids=[str(v) for v, _ in BAD_VALUES])
def test_bad_values_fail_with_a_clear_message(helm: Helm, values: Obj,
                                              messages: list[str]) -> None:
    with pytest.raises(HelmError) as info:
        helm.template([values])
    for message in messages:
        assert message in str(info.value)


def test_values_yaml_matches_the_schema_and_the_shipped_economy() -> None:
    import json

    import jsonschema

    from harness.backends.kubernetes.helm import CHART_DIR

    values = yaml.safe_load((CHART_DIR / "values.yaml").read_text())
    schema = json.loads((CHART_DIR / "values.schema.json").read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    jsonschema.Draft7Validator(schema).validate(values)
    # The chart ships a copy of settlers/data/settlers2.yaml (a chart cannot reach
    # outside its directory): keep the two identical.
    shipped = Path(__file__).resolve().parents[2] / "settlers" / "data" / "settlers2.yaml"
    assert (CHART_DIR / "files" / "settlers2.yaml").read_text() == shipped.read_text()


def test_the_built_helm_renders_the_chart_with_no_kube_version_flag(helm: Helm) -> None:
    # A user's helm knows the Kubernetes version it was built against; ours must too
    # (tools/k8s/build sets helm's k8sVersion ldflags as helm's release build does).
    # Without them helm assumes v1.20.0, below the chart's kubeVersion, and refuses.
    out = helm.run("template", "t", str(CHART_DIR))
    objs = [d for d in yaml.safe_load_all(out) if d]
    assert set(producers(objs)) == set(ECONOMY.names)
