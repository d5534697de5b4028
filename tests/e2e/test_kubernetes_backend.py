"""The kubernetes backend against the kwok cluster: helm install, N redeployments under
each scheduler, placements read back from the API, cleanup (also after Ctrl-C).

On kwok the backend runs netmarks-scheduler (the real kube-scheduler + the NetMARKS
extender) and firmament as processes on this machine: kwok pods run no containers,
so the chart's scheduler Deployments could not. For the same reason layouts are
measured on the emulated data plane; the in-cluster order Job needs real nodes.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from harness.backends import open_backend
from harness.backends.base import BackendUnavailable
from harness.backends.k8s import KwokCluster, counterpart
from harness.backends.kubernetes import (
    Helm,
    KubernetesOptions,
    KubernetesPlacer,
    open_kubernetes,
)
from settlers.economy import Economy, Item

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

# The profile the netmarks policy's table entry names (netmarks-scheduler).
NETMARKS_SCHEDULER = getattr(counterpart("netmarks"), "scheduler_name", "")

# Four items: enough for a chain with a shared input, and quick to redeploy.
MINI = Economy(
    name="mini",
    items={
        "grain": Item("grain"),
        "water": Item("water"),
        "flour": Item("flour", inputs={"grain": 1}),
        "bread": Item("bread", inputs={"flour": 1, "water": 1}),
    },
)


def check(backend: KubernetesPlacer, placements: list[object], n: int) -> None:
    assert len(placements) == n
    for p in placements:
        assignments = p.assignments  # type: ignore[attr-defined]
        assert sorted(assignments) == sorted(backend.pod_names)
        assert set(assignments.values()) <= set(backend.node_names)
        assert not p.unschedulable  # type: ignore[attr-defined]
        assert p.seconds > 0  # type: ignore[attr-defined]
        backend.canonical(assignments)


@pytest.fixture
def mini_backend(kwok_cluster: KwokCluster, namespace: str) -> Iterator[KubernetesPlacer]:
    b, _ = open_kubernetes(
        MINI,
        KubernetesOptions(
            kubeconfig=kwok_cluster.kubeconfig,
            namespace=namespace,
            release=f"kn{uuid.uuid4().hex[:4]}",
            timeout_s=90,
        ),
    )
    yield b
    asyncio.run(b.close())


def test_redeploys_under_each_scheduler_and_cleans_up(
    kwok_cluster: KwokCluster, namespace: str, mini_backend: KubernetesPlacer
) -> None:
    """kube_default is the cluster's own scheduler. For netmarks and firmament the
    backend runs, on kwok, the real kube-scheduler + NetMARKS extender and the
    firmament binder as processes here, fed with the warm-up's traffic matrix."""
    from schedulers import TrafficMatrix

    backend = mini_backend
    assert backend.node_names == kwok_cluster.node_names
    steps: list[int] = []
    placements = asyncio.run(backend.place("kube_default", 2, advance=steps.append))
    check(backend, placements, 2)
    assert steps == [1, 1]
    pods = kwok_cluster.core_v1().list_namespaced_pod(namespace).items
    assert {p.spec.scheduler_name for p in pods} == {"default-scheduler"}
    with pytest.raises(BackendUnavailable,
                       match="optimal has no real-scheduler counterpart on the kubernetes"):
        asyncio.run(backend.place("optimal", 1))

    traffic = TrafficMatrix.from_dataframe(
        pd.DataFrame(
            [(consumer, src, 1000.0 * q) for consumer, src, q in MINI.edges()],
            columns=["source", "destination", "bytes"],
        )
    )
    assert backend.scheduler_mode() == "host"
    placements = asyncio.run(backend.place("netmarks", 1, traffic=traffic))
    check(backend, placements, 1)
    pods = kwok_cluster.core_v1().list_namespaced_pod(namespace).items
    assert {p.spec.scheduler_name for p in pods} == {NETMARKS_SCHEDULER}
    # The chart's own scheduler Deployments stay off: they could not run on kwok.
    deployments = kwok_cluster.apps_v1().list_namespaced_deployment(namespace).items
    assert {d.metadata.name for d in deployments} == set(MINI.names)

    placements = asyncio.run(backend.place("firmament", 1, traffic=traffic))
    check(backend, placements, 1)
    pods = kwok_cluster.core_v1().list_namespaced_pod(namespace).items
    assert {p.spec.scheduler_name for p in pods} == {"firmament"}
    # No scheduler process outlives its phase (ours are children of this process).
    me = os.getpid()
    kids = Path(f"/proc/{me}/task/{me}/children").read_text().split()
    cmdlines = [
        Path(f"/proc/{k}/cmdline").read_bytes() for k in kids if Path(f"/proc/{k}/cmdline").exists()
    ]
    assert not [c for c in cmdlines if b"schedulers.cli" in c or b"kube-scheduler" in c]

    asyncio.run(backend.close())
    assert backend.release.helm.status(backend.options.release, namespace) is None
    assert not kwok_cluster.apps_v1().list_namespaced_deployment(namespace).items


def test_ctrl_c_uninstalls_the_release(
    kwok_cluster: KwokCluster, namespace: str, tmp_path: Path
) -> None:
    """A run interrupted mid-redeployment (SIGINT, as Ctrl-C) leaves nothing behind."""
    release = f"kc{uuid.uuid4().hex[:4]}"
    script = tmp_path / "run.py"
    script.write_text(
        textwrap.dedent(f"""
        import asyncio
        from pathlib import Path
        from harness.backends.kubernetes import KubernetesOptions, open_kubernetes
        from settlers.economy import load_economy

        async def main():
            b, _ = open_kubernetes(load_economy(), KubernetesOptions(
                kubeconfig=Path({str(kwok_cluster.kubeconfig)!r}), namespace={namespace!r},
                release={release!r}, timeout_s=90))
            try:
                await b.place("kube_default", 0)  # installs the chart only
                print("placed", flush=True)
                await b.place("kube_default", 1000,
                              advance=lambda n: print("redeployed", n, flush=True))
                print("finished", flush=True)
            finally:
                await b.close()
        asyncio.run(main())
    """)
    )
    proc = subprocess.Popen(
        [sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.strip() == "placed", line + proc.stdout.read()
    line = proc.stdout.readline()  # the first redeployment is done: inside the loop now
    assert line.startswith("redeployed"), line + proc.stdout.read()
    os.kill(proc.pid, signal.SIGINT)
    out, _ = proc.communicate(timeout=120)
    # Interrupted by that Ctrl-C (Python re-raises SIGINT at exit), not crashed or done.
    assert proc.returncode == -signal.SIGINT, out
    assert "KeyboardInterrupt" in out and "finished" not in out, out
    status = Helm(kubeconfig=kwok_cluster.kubeconfig).status(release, namespace)
    assert status is None, out
    assert not kwok_cluster.apps_v1().list_namespaced_deployment(namespace).items


def test_the_experiment_runs_end_to_end_on_kwok(
    kwok_cluster: KwokCluster, namespace: str, tmp_path: Path
) -> None:
    """What `harness run --backend kubernetes --scheduler netmarks` does against kwok:
    warm-up, redeployments under kube_default and netmarks, measured layouts."""
    from harness.backends.registry import describe
    from harness.experiment import Experiment
    from results.config import build_config
    from results.manifest import new_manifest
    from results.store import ResultsStore

    # The four-item economy keeps the emulated data plane (one process per pod) small.
    economy = tmp_path / "mini.yaml"
    economy.write_text(MINI.to_yaml())
    cfg = build_config(
        overrides={
            "backend": "kubernetes",
            "schedulers": ["netmarks"],
            "items": ["flour", "bread"],
            "economy": str(economy),
            "deployments": 2,
            "sizes": [16],
            "protocols": ["http"],
            "repetitions": 1,
            "layout_budget": 2,
            "warmup_orders": 1,
            "bootstrap": 100,
        }
    )
    store = ResultsStore.create(tmp_path / "run", new_manifest(cfg, describe(cfg.backend)))
    backend = open_backend(
        "kubernetes",
        cfg.load_economy(),
        KubernetesOptions(
            kubeconfig=kwok_cluster.kubeconfig,
            namespace=namespace,
            release=f"kx{uuid.uuid4().hex[:4]}",
            timeout_s=90,
        ),
    )
    asyncio.run(Experiment(cfg, store, backend).run())

    placements = store.read_table("placements")
    assert sorted(placements["scheduler"].unique()) == ["kube_default", "netmarks"]
    assert len(placements) == 2 * 2
    samples = store.samples()
    assert samples["ok"].all(), samples.loc[~samples["ok"], "error"].tolist()
    assert 1 <= samples["layout_id"].nunique() <= 2
    assert set(samples["layout_id"]) <= set(placements["layout_id"])
    # The emulated data plane ran the cluster's layouts: every order's hops are known.
    assert (samples["transfers"] > 0).all()
    # Cleaned up: the release is gone.
    assert isinstance(backend.placer, KubernetesPlacer)
    release = backend.placer.release
    assert release.helm.status(release.options.release, namespace) is None


def test_cluster_data_plane_pins_layouts_and_starts_the_order_job(
    kwok_cluster: KwokCluster, namespace: str
) -> None:
    """The in-cluster data plane as far as kwok allows: every layout is pinned through
    the chart (a required node affinity, placed by the default scheduler) and checked
    against the API; the order Job is created
    and completes (kwok's fake pod cannot print results, so no samples here)."""
    from kubernetes import client

    from harness.backends.kubernetes import KubernetesDataPlane

    _, planes = open_kubernetes(
        MINI,
        KubernetesOptions(
            kubeconfig=kwok_cluster.kubeconfig,
            namespace=namespace,
            release=f"kd{uuid.uuid4().hex[:4]}",
            data_plane="cluster",
            timeout_s=90,
        ),
    )
    core = kwok_cluster.core_v1()

    def where() -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        selector = "app.kubernetes.io/component=producer"
        for p in core.list_namespaced_pod(namespace, label_selector=selector).items:
            if p.metadata.deletion_timestamp is None:
                out.setdefault(p.metadata.labels["app"], []).append(p.spec.node_name)
        return out

    async def flow() -> None:
        first = {"grain-0": "node-1", "water-0": "node-2", "flour-0": "node-1", "bread-0": "node-3"}
        plane = await planes.start("grpc", first)
        assert isinstance(plane, KubernetesDataPlane)
        assert where() == {"grain": ["node-1"], "water": ["node-2"], "flour": ["node-1"],
                           "bread": ["node-3"]}
        together = dict.fromkeys(first, "node-4")
        await plane.relayout(together)
        assert where() == {item: ["node-4"] for item in MINI.names}
        assert plane.entry("bread") == f"bread.{namespace}.svc:8080"

        job = plane.order_job("grpc", ["bread"], [16, 4096], repeat=3, warmup=1)
        args = job["spec"]["template"]["spec"]["containers"][0]["args"]
        assert args[:2] == ["-p", "grpc"] and "bread=bread:8080" in args
        # The chart's hook annotations are dropped: the harness creates the Job itself.
        assert not any(k.startswith("helm.sh/hook") for k in job["metadata"]["annotations"])
        assert "16,4096" in args
        batch = client.BatchV1Api(kwok_cluster.api_client())
        batch.create_namespaced_job(namespace, job)
        deadline = time.monotonic() + 60
        name = job["metadata"]["name"]
        while not batch.read_namespaced_job_status(name, namespace).status.succeeded:
            assert time.monotonic() < deadline, "order Job not completed"
            await asyncio.sleep(0.5)

    try:
        asyncio.run(flow())
    finally:
        asyncio.run(planes.close())
    # close() also deleted the Jobs it labelled as its own.
    left = client.BatchV1Api(kwok_cluster.api_client()).list_namespaced_job(namespace).items
    assert not [j for j in left if j.metadata.deletion_timestamp is None]
