"""What a chart maintainer found in charts/settlers-testbed (issue 16), each checked on
the real helm's render: NOTES, the Prometheus Operator monitors, the order Job as a
hook that waits for the producers and survives an Istio sidecar, the helm test under
a sidecar, probes, the schema's refusals, the economy file format, pinning by node
affinity and the extender's scope. helm as in test_chart.py (skips without it)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.backends.kubernetes.helm import CHART_DIR, Helm, HelmError
from settlers import wire
from settlers.economy import load_economy

Obj = dict[str, Any]
REPO = Path(__file__).resolve().parents[2]


def kinds(objs: list[Obj], kind: str) -> dict[str, Obj]:
    return {o["metadata"]["name"]: o for o in objs if o["kind"] == kind}


def job(objs: list[Obj], suffix: str) -> Obj:
    (found,) = [j for n, j in kinds(objs, "Job").items() if n.endswith(suffix)]
    return found


# -- NOTES ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def notes_chart(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The chart plus a template that renders NOTES.txt into a ConfigMap: `helm template`
    skips NOTES, and `helm install --dry-run` needs a cluster."""
    chart = tmp_path_factory.mktemp("chart") / "settlers-testbed"
    shutil.copytree(CHART_DIR, chart)
    shutil.copy(chart / "templates" / "NOTES.txt", chart / "files" / "notes.txt")
    (chart / "templates" / "zz-notes.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: notes}\ndata:\n  notes: |\n"
        '    {{- tpl (.Files.Get "files/notes.txt") . | nindent 4 }}\n')
    return chart


def notes(helm: Helm, chart: Path, values: Obj) -> str:
    (cm,) = helm.template([values], release="exp", namespace="bench", chart=chart,
                          extra=["--show-only", "templates/zz-notes.yaml"])
    return str(cm["data"]["notes"])


def test_notes_name_the_harness_flag_and_say_how_to_check_netmarks(
        helm: Helm, notes_chart: Path) -> None:
    text = notes(helm, notes_chart, {"netmarks": {"enabled": True}})
    assert "--kube-namespace" in text and "\n       --namespace" not in text
    assert "settlers-harness-<hash>" in text  # the harness's own release
    # Loud about the default Prometheus and how to see whether NetMARKS sees traffic.
    assert "WARNING: prometheus.url is the default" in text
    assert "/status" in text and "traffic_seen" in text
    assert "logs -f job/exp-settlers-testbed-order-app -c order-app" in text
    mine = notes(helm, notes_chart, {"netmarks": {"enabled": True},
                                     "prometheus": {"url": "http://prom.monitoring:9090"}})
    assert "WARNING: prometheus.url" not in mine and "/status" in mine


# -- monitors ---------------------------------------------------------------------------

def test_no_monitor_by_default(helm: Helm) -> None:
    objs = helm.template([{"netmarks": {"enabled": True}}])
    assert not [o for o in objs if o["apiVersion"].startswith("monitoring.coreos.com/")]


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_monitors_for_the_mesh_the_producers_and_the_extender(helm: Helm,
                                                              protocol: str) -> None:
    objs = helm.template([{
        "protocol": protocol, "netmarks": {"enabled": True},
        "monitors": {"labels": {"release": "kps"}, "mesh": {"enabled": True},
                     "producers": {"enabled": True}, "extender": {"enabled": True}}}],
        release="exp", namespace="bench")
    pods = kinds(objs, "PodMonitor")
    mesh, own = pods["exp-settlers-testbed-mesh"], pods["exp-settlers-testbed-producers"]
    (svc,) = kinds(objs, "ServiceMonitor").values()
    for mon in (mesh, own, svc):
        assert mon["apiVersion"] == "monitoring.coreos.com/v1"
        assert mon["metadata"]["labels"]["release"] == "kps"
        assert mon["spec"]["namespaceSelector"] == {"matchNames": ["bench"]}
    (ep,) = mesh["spec"]["podMetricsEndpoints"]
    assert ep["path"] == "/stats/prometheus"
    keep, address = ep["relabelings"][:2]
    assert keep["action"] == "keep" and keep["regex"] == "istio-proxy;http-envoy-prom"
    assert address["targetLabel"] == "__address__" and address["replacement"] == "${1}:15020"
    assert mesh["spec"]["selector"]["matchLabels"]["app.kubernetes.io/instance"] == "exp"
    (ep,) = own["spec"]["podMetricsEndpoints"]
    # The producers' metrics port, by the name the Deployments give it.
    assert ep["port"] == ("http-metrics" if protocol == "grpc" else "http-producer")
    bread = kinds(objs, "Deployment")["bread"]["spec"]["template"]["spec"]["containers"][0]
    assert ep["port"] in {p["name"] for p in bread["ports"]}
    assert svc["spec"]["endpoints"][0]["port"] == "http-extender"


# -- the order Job and helm test ---------------------------------------------------------

def test_order_job_is_a_hook_that_reruns_on_upgrade_only_when_asked(helm: Helm) -> None:
    once = job(helm.template([{"orderApp": {"enabled": True}}]), "-order-app")
    assert once["metadata"]["annotations"]["helm.sh/hook"] == "post-install"
    again = job(helm.template([{"orderApp": {"enabled": True, "rerunOnUpgrade": True}}]),
                "-order-app")
    assert again["metadata"]["annotations"] == {
        "helm.sh/hook": "post-install,post-upgrade",
        "helm.sh/hook-delete-policy": "before-hook-creation"}


@pytest.mark.parametrize("suffix", ["-order-app", "-test-order"])
def test_job_pods_wait_for_every_producer_and_stop_a_sidecar(helm: Helm, suffix: str) -> None:
    objs = helm.template([{"orderApp": {"enabled": True, "waitSeconds": 120}}])
    pod = job(objs, suffix)["spec"]["template"]
    (c,) = pod["spec"]["containers"]
    assert c["name"] == "order-app"
    env = {e["name"]: e["value"] for e in c["env"]}
    assert sorted(env["SETTLERS_WAIT_TARGETS"].split()) == sorted(
        f"{item}:8080" for item in load_economy().names)
    assert env["SETTLERS_WAIT_SECONDS"] == "120" and env["SETTLERS_WAIT_PROTOCOL"] == "http"
    script = c["command"][2]
    assert script.index("quitquitquit") < script.index("order-app sweep")
    assert "trap quit_proxy EXIT" in script and "exec " not in script
    annotations = pod["metadata"]["annotations"]
    assert annotations["sidecar.istio.io/nativeSidecar"] == "true"
    assert "holdApplicationUntilProxyStarts" in annotations["proxy.istio.io/config"]


def test_helm_test_may_get_a_sidecar(helm: Helm) -> None:
    def inject(values: Obj) -> str | None:
        labels = job(helm.template([values]), "-test-order")["spec"]["template"]["metadata"][
            "labels"]
        return labels.get("sidecar.istio.io/inject")

    assert inject({}) is None  # the namespace decides, as for the producers
    assert inject({"istio": {"sidecarInject": True}}) == "true"
    assert inject({"istio": {"sidecarInject": True}, "tests": {"sidecarInject": False}}) == (
        "false")


PRELUDE = (CHART_DIR / "files" / "job-prelude.sh").read_text()


@pytest.fixture
def producer() -> Iterator[tuple[str, list[int]]]:
    """A stand-in producer whose /healthz fails twice (not ready yet), then answers."""
    calls: list[int] = []

    class Producer(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            calls.append(1)
            self.send_response(200 if len(calls) > 2 else 503)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Producer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"127.0.0.1:{server.server_port}", calls
    server.shutdown()


def _run_prelude(targets: str, seconds: int, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    # The prelude calls `python3`: this interpreter, first on PATH.
    shim = tmp_path / "bin"
    shim.mkdir(exist_ok=True)
    (shim / "python3").symlink_to(sys.executable)
    env = {"PATH": f"{shim}:/usr/bin:/bin", "SETTLERS_WAIT_TARGETS": targets,
           "SETTLERS_WAIT_SECONDS": str(seconds), "SETTLERS_WAIT_PROTOCOL": "http"}
    return subprocess.run(["sh", "-c", PRELUDE + "\necho ORDERS-SENT\n"], env=env,
                          capture_output=True, text=True, timeout=60, check=False)


def test_the_job_prelude_waits_until_producers_answer(producer: tuple[str, list[int]],
                                                       tmp_path: Path) -> None:
    address, calls = producer
    proc = _run_prelude(address, 30, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert len(calls) == 3 and "1 producer(s) ready" in proc.stdout
    assert "ORDERS-SENT" in proc.stdout


def test_the_job_prelude_gives_up_naming_the_producer(tmp_path: Path) -> None:
    proc = _run_prelude("127.0.0.1:9", 1, tmp_path)  # discard port: nothing answers
    assert proc.returncode == 1 and "ORDERS-SENT" not in proc.stdout
    assert "producers not ready after 1 s: 127.0.0.1:9" in proc.stderr


# -- probes --------------------------------------------------------------------------

@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_producers_have_a_startup_probe_and_a_lenient_liveness(helm: Helm,
                                                               protocol: str) -> None:
    c = kinds(helm.template([{"protocol": protocol}]), "Deployment")["bread"]["spec"][
        "template"]["spec"]["containers"][0]
    start, ready, live = c["startupProbe"], c["readinessProbe"], c["livenessProbe"]
    assert start["periodSeconds"] * start["failureThreshold"] >= 60
    # A busy producer leaves the Service (readiness) long before it is restarted.
    assert (live["periodSeconds"] * live["failureThreshold"]
            > 3 * ready["periodSeconds"] * ready["failureThreshold"])
    assert live["timeoutSeconds"] > ready["timeoutSeconds"]
    tuned = kinds(helm.template([{"probes": {"liveness": {"failureThreshold": 9}}}]),
                  "Deployment")["bread"]["spec"]["template"]["spec"]["containers"][0]
    assert tuned["livenessProbe"]["failureThreshold"] == 9


def test_extender_has_startup_and_liveness_probes(helm: Helm) -> None:
    deps = kinds(helm.template([{"netmarks": {"enabled": True}}]), "Deployment")
    (ext,) = [d for n, d in deps.items() if n.endswith("-netmarks-extender")]
    c = ext["spec"]["template"]["spec"]["containers"][0]
    assert {"startupProbe", "readinessProbe", "livenessProbe"} <= set(c)


# -- the schema and the templates refuse ---------------------------------------------------

CYCLE = {"economy": {"items": {"ore": {"inputs": {"metal": 1}}, "metal": {"inputs": ["ore"]},
                               "water": {}}}}
REFUSED = [
    (CYCLE, ["the inputs form a cycle", "metal <- ore", "ore <- metal"]),
    ({"podLabels": {"app": "x"}}, ["/podLabels/app"]),
    ({"podLabels": {"app.kubernetes.io/name": "x"}}, ["/podLabels/app.kubernetes.io"]),
    ({"items": {"bread": {"podLabels": {"version": "2"}}}}, ["/items/bread/podLabels/version"]),
    ({"fullnameOverride": "Upper"}, ["/fullnameOverride", "does not match pattern"]),
    ({"nameOverride": "a_b"}, ["/nameOverride"]),
    ({"netmarks": {"scheduler": {"image": {"tag": "1.30.0"}}}},
     ["/netmarks/scheduler/image/tag"]),
    ({"podSecurityContext": {"runAsUser": 0}}, ["/podSecurityContext/runAsUser", "minimum"]),
    ({"securityContext": {"runAsUser": 0}}, ["/securityContext/runAsUser", "minimum"]),
    ({"orderApp": {"sizes": [16, 2 * wire.DEFAULT_MAX_SIZE]}}, ["/orderApp/sizes/1", "maximum"]),
    ({"tests": {"size": wire.DEFAULT_MAX_SIZE + 1}}, ["/tests/size", "maximum"]),
    ({"economyFile": "name: x\nitems: {a: {}}\n", "economy": {"items": {"b": {}}}},
     ["economyFile and economy.items both give the economy"]),
    ({"economyFile": "name: x\nitem: {}\n"}, ['unknown top-level key "item"']),
    ({"economy": {"items": [{"name": "a"}, {"name": "a"}]}}, ['item "a" is listed twice']),
    ({"netmarks": {"extender": {"awaitBinds": 5}}}, ["/netmarks/extender/awaitBinds"]),
]


@pytest.mark.parametrize(("values", "messages"), REFUSED, ids=[str(v)[:60] for v, _ in REFUSED])
def test_refused_with_a_clear_message(helm: Helm, values: Obj, messages: list[str]) -> None:
    with pytest.raises(HelmError) as info:
        helm.template([values])
    for message in messages:
        assert message in str(info.value)


def test_accepted_edges(helm: Helm) -> None:
    ok: list[Obj] = [{"podLabels": {"team": "a", "app.example.com/x": "y"}},
                     {"fullnameOverride": "bench-1"},
                     {"netmarks": {"scheduler": {"image": {"tag": "v1.30.2-eks-1234"}}}},
                     {"orderApp": {"sizes": [1, wire.DEFAULT_MAX_SIZE]}}]
    for values in ok:
        helm.template([values])


def test_the_schema_cap_is_the_producers() -> None:
    schema = json.loads((CHART_DIR / "values.schema.json").read_text())
    assert schema["definitions"]["orderSize"]["maximum"] == wire.DEFAULT_MAX_SIZE


# -- the economy in the documented format -------------------------------------------------

def producer_deployments(objs: list[Obj]) -> dict[str, Obj]:
    return {n: d for n, d in kinds(objs, "Deployment").items()
            if d["metadata"]["labels"]["app.kubernetes.io/component"] == "producer"}


def test_the_economy_file_format_in_values(helm: Helm, tmp_path: Path) -> None:
    economy = {"name": "tiny", "defaults": {"replicas": 2, "resources": {"cpu": "50m"}},
               "items": [{"name": "ore", "replicas": 3}, {"name": "coal"},
                         {"name": "metal", "inputs": ["ore", "coal"],
                          "resources": {"memory": "128Mi"}}]}
    objs = helm.template([{"economy": economy, "items": {"coal": {"replicas": 1}}}])
    deps = producer_deployments(objs)
    got = {n: (d["spec"]["replicas"],
               d["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"])
           for n, d in deps.items()}
    assert got == {"ore": (3, {"cpu": "50m", "memory": "64Mi"}),
                   "coal": (1, {"cpu": "50m", "memory": "64Mi"}),  # items.<item> wins
                   "metal": (2, {"cpu": "50m", "memory": "128Mi"})}
    # The producers read the economy as given, and it loads.
    (cm,) = kinds(objs, "ConfigMap").values()
    path = tmp_path / "economy.yaml"
    path.write_text(cm["data"]["economy.yaml"])
    loaded = load_economy(path)
    assert loaded["metal"].inputs == {"ore": 1, "coal": 1} and loaded["ore"].replicas == 3


@pytest.mark.parametrize("path", sorted((REPO / "settlers" / "data").glob("*.yaml")),
                         ids=lambda p: p.name)
def test_a_shipped_economy_file_with_set_file(helm: Helm, path: Path) -> None:
    economy = load_economy(path)
    out = helm.run("template", "t", str(CHART_DIR), "--set-file", f"economyFile={path}")
    objs = [d for d in yaml.safe_load_all(out) if d]
    deps = producer_deployments(objs)
    assert set(deps) == set(economy.names)
    for item in economy:
        assert deps[item.name]["spec"]["replicas"] == item.replicas
    (cm,) = kinds(objs, "ConfigMap").values()
    assert cm["data"]["economy.yaml"].strip() == path.read_text().strip()


def test_the_default_economy_still_follows_the_top_level_values(helm: Helm) -> None:
    deps = producer_deployments(helm.template([{"replicas": 2, "resources": {
        "requests": {"cpu": "300m"}}}]))
    bread = deps["bread"]
    assert bread["spec"]["replicas"] == 2
    # The shipped economy's defaults are the chart's: the values still set them.
    assert bread["spec"]["template"]["spec"]["containers"][0]["resources"] == {
        "requests": {"cpu": "300m", "memory": "64Mi"}, "limits": {"memory": "256Mi"}}


# -- pinning and the extender's scope ------------------------------------------------------

def test_pinning_keeps_the_users_other_affinities(helm: Helm) -> None:
    anti = {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": 1, "podAffinityTerm": {"topologyKey": "zone",
                                          "labelSelector": {"matchLabels": {"a": "b"}}}}]}}
    objs = helm.template([{"affinity": anti, "items": {"coal": {"nodes": ["node-1"]}}}])
    spec = producer_deployments(objs)["coal"]["spec"]["template"]["spec"]
    assert spec["affinity"]["podAntiAffinity"] == anti["podAntiAffinity"]
    terms = spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert terms["nodeSelectorTerms"][0]["matchFields"][0]["values"] == ["node-1"]
    assert "nodeName" not in spec


def test_extender_options(helm: Helm) -> None:
    objs = helm.template([{"netmarks": {"enabled": True, "extender": {
        "allNamespaces": True, "bind": False, "networkPolicy": {"enabled": False}}}}],
        release="exp", namespace="bench")
    (role,) = [r for r in objs if r["kind"] == "ClusterRole"
               and r["metadata"]["name"].endswith("-netmarks-extender")]
    assert [rule["resources"] for rule in role["rules"]] == [["pods"]]
    assert not kinds(objs, "NetworkPolicy")
    ext = kinds(objs, "Deployment")["exp-settlers-testbed-netmarks-extender"]
    args = ext["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--bind" not in args and not any(a.startswith("--namespace") for a in args)
    config = yaml.safe_load(kinds(objs, "ConfigMap")["exp-settlers-testbed-netmarks-scheduler"][
        "data"]["config.yaml"])
    assert "bindVerb" not in config["extenders"][0]
    allowed = helm.template([{"netmarks": {"enabled": True, "extender": {"networkPolicy": {
        "from": [{"namespaceSelector": {"matchLabels": {"name": "monitoring"}}}]}}}}])
    (policy,) = kinds(allowed, "NetworkPolicy").values()
    assert len(policy["spec"]["ingress"][0]["from"]) == 2
