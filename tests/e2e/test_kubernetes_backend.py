"""The kubernetes backend's placement half against the kwok cluster: helm install, N
redeployments under each scheduler, placements read back from the API, cleanup.

The schedulers run as host processes against the kwok API server (kwok pods run no
containers, so the chart's own scheduler Deployments could not schedule anything):
the real kube-scheduler as `netmarks-scheduler` calling the real NetMARKS extender,
and the firmament binder. The measurement half needs real nodes and is not run here.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.backends.base import BackendUnavailable
from harness.backends.kubernetes import Helm, KubernetesBackend, KubernetesOptions
from harness.backends.kwok import NETMARKS_SCHEDULER, ExtraScheduler, KwokCluster, extender_stanza
from settlers.economy import load_economy

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ECONOMY = load_economy()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def schedulers_cli(*args: str, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-c", "from schedulers.cli import main; main()", *args],
            stdout=out, stderr=subprocess.STDOUT)


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def wait_http(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    pytest.fail(f"{url} not up:\n{log.read_text()[-3000:]}")


@pytest.fixture
def backend(kwok_cluster: KwokCluster, namespace: str,
            k8s_binaries: object) -> Iterator[KubernetesBackend]:
    opts = KubernetesOptions(kubeconfig=kwok_cluster.kubeconfig, namespace=namespace,
                             release=f"kb{uuid.uuid4().hex[:4]}", deploy_schedulers=False,
                             timeout_s=90)
    b = KubernetesBackend(ECONOMY, opts,
                          helm=Helm(kubeconfig=kwok_cluster.kubeconfig, timeout_s=300))
    yield b
    asyncio.run(b.close())


def check(backend: KubernetesBackend, placements: list[object], n: int) -> None:
    assert len(placements) == n
    for p in placements:
        assignments = p.assignments  # type: ignore[attr-defined]
        assert sorted(assignments) == sorted(backend.pod_names)
        assert set(assignments.values()) <= set(backend.node_names)
        assert not p.unschedulable  # type: ignore[attr-defined]
        assert p.seconds > 0  # type: ignore[attr-defined]
        backend.canonical(assignments)


def test_redeploys_under_the_default_scheduler_and_cleans_up(
    kwok_cluster: KwokCluster, namespace: str, backend: KubernetesBackend
) -> None:
    assert backend.node_names == kwok_cluster.node_names
    steps: list[int] = []
    placements = asyncio.run(backend.place("kube_default", 3, advance=steps.append))
    check(backend, placements, 3)
    assert steps == [1, 1, 1]
    pods = kwok_cluster.core_v1().list_namespaced_pod(namespace).items
    assert {p.spec.scheduler_name for p in pods} == {"default-scheduler"}
    # The default scheduler spreads 19 small pods over 5 empty nodes.
    assert len(set(placements[0].assignments.values())) >= 3

    with pytest.raises(BackendUnavailable, match="no Kubernetes implementation"):
        asyncio.run(backend.place("optimal", 1))

    asyncio.run(backend.close())
    assert backend.helm.status(backend.options.release, namespace) is None
    assert not kwok_cluster.apps_v1().list_namespaced_deployment(namespace).items


def test_redeploys_under_netmarks_and_firmament(
    kwok_cluster: KwokCluster, namespace: str, backend: KubernetesBackend, tmp_path: Path
) -> None:
    # The extender scores with a fixed traffic matrix: the economy's edges.
    traffic = tmp_path / "traffic.csv"
    traffic.write_text("source,destination,bytes\n" + "".join(
        f"{consumer},{src},{1000 * q}\n" for consumer, src, q in ECONOMY.edges()))
    port = free_port()
    ext_log = tmp_path / "extender.log"
    ext = schedulers_cli("netmarks-extender", "--traffic", str(traffic), "--port", str(port),
                         "--kubeconfig", str(kwok_cluster.kubeconfig), log=ext_log)
    firm_log = tmp_path / "firmament.log"
    firm = schedulers_cli("firmament", "--kubeconfig", str(kwok_cluster.kubeconfig),
                          "--scheduler-name", "firmament", "--interval", "0.5", log=firm_log)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_http(f"{url}/healthz", ext, ext_log)
        stanza = extender_stanza(url + "/", weight=5)
        with ExtraScheduler.start(kwok_cluster, NETMARKS_SCHEDULER, extenders=[stanza]):
            placements = asyncio.run(backend.place("netmarks", 2))
            check(backend, placements, 2)
            pods = kwok_cluster.core_v1().list_namespaced_pod(namespace).items
            assert {p.spec.scheduler_name for p in pods} == {NETMARKS_SCHEDULER}
            with urllib.request.urlopen(f"{url}/metrics", timeout=5) as r:
                assert "prioritize" in r.read().decode()
        try:
            placements = asyncio.run(backend.place("firmament", 2))
        except Exception:
            pytest.fail(f"firmament placement failed:\n{firm_log.read_text()[-3000:]}")
        check(backend, placements, 2)
        pods = kwok_cluster.core_v1().list_namespaced_pod(namespace).items
        assert {p.spec.scheduler_name for p in pods} == {"firmament"}
    finally:
        stop(ext)
        stop(firm)


def test_ctrl_c_uninstalls_the_release(kwok_cluster: KwokCluster, namespace: str,
                                       tmp_path: Path) -> None:
    """A run interrupted mid-redeployment (SIGINT, as Ctrl-C) leaves nothing behind."""
    release = f"kc{uuid.uuid4().hex[:4]}"
    script = tmp_path / "run.py"
    script.write_text(textwrap.dedent(f"""
        import asyncio
        from pathlib import Path
        from harness.backends.kubernetes import KubernetesBackend, KubernetesOptions
        from settlers.economy import load_economy

        async def main():
            b = KubernetesBackend(load_economy(), KubernetesOptions(
                kubeconfig=Path({str(kwok_cluster.kubeconfig)!r}), namespace={namespace!r},
                release={release!r}, deploy_schedulers=False, timeout_s=90))
            try:
                await b.place("kube_default", 1)
                print("placed", flush=True)
                await b.place("kube_default", 1000)
            finally:
                await b.close()
        asyncio.run(main())
    """))
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.strip() == "placed", line + proc.stdout.read()
    time.sleep(1.0)  # somewhere inside the redeploy loop
    os.kill(proc.pid, signal.SIGINT)
    out, _ = proc.communicate(timeout=120)
    assert "KeyboardInterrupt" in out or proc.returncode != 0
    status = Helm(kubeconfig=kwok_cluster.kubeconfig).status(release, namespace)
    assert status is None, out
    assert not kwok_cluster.apps_v1().list_namespaced_deployment(namespace).items


def test_layouts_on_kwok_are_measured_on_the_emulated_data_plane(
    kwok_cluster: KwokCluster, namespace: str
) -> None:
    """Placement from the real scheduler via the chart, orders through the emulated
    cluster that executes that layout (kwok nodes run no containers)."""
    from order_app import run_sweep
    from settlers.economy import Economy, Item

    tiny = Economy(name="tiny", items={"ore": Item("ore"), "coal": Item("coal"),
                                       "metal": Item("metal", inputs={"ore": 1, "coal": 1})})
    b = KubernetesBackend(tiny, KubernetesOptions(
        kubeconfig=kwok_cluster.kubeconfig, namespace=namespace,
        release=f"ke{uuid.uuid4().hex[:4]}", deploy_schedulers=False, timeout_s=90))

    async def flow() -> tuple[dict[str, str], dict[str, str], object]:
        try:
            (placement,) = await b.place("kube_default", 1)
            plane = await b.start_data_plane("http", placement.assignments)
            try:
                frame = await run_sweep({"metal": plane.entry("metal")}, "http", ["metal"],
                                        [16], repeat=2, warmup=0, progress=False)
                return dict(placement.assignments), dict(plane.placement), frame
            finally:
                await plane.stop()
        finally:
            await b.close()

    assert b.emulated
    assignments, plane_placement, frame = asyncio.run(flow())
    assert plane_placement == assignments
    assert frame["ok"].all() and len(frame) == 2  # type: ignore[attr-defined]
