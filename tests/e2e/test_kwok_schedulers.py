"""The project's schedulers against the real control plane: the real kube-scheduler
calling the NetMARKS extender (as `netmarks-scheduler`), and the firmament custom
scheduler binding pods through the API."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from harness.backends.k8s import (
    ExtraScheduler,
    KwokCluster,
    KwokError,
    counterpart,
    extender_stanza,
)
from harness.backends.k8s.process import stop_process, wait_http_ok
from harness.backends.k8s.workloads import DeploymentSpec, create_deployments, wait_bound

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

# The profile the netmarks policy's table entry names (netmarks-scheduler).
NETMARKS_SCHEDULER = getattr(counterpart("netmarks"), "scheduler_name", "")

# Heavy traffic inside each pair, none across pairs: NetMARKS must co-locate each pair.
PAIRS = [("alpha", "beta"), ("gamma", "delta"), ("kappa", "omega")]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _schedulers_cli(*args: str, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-c", "from schedulers.cli import main; main()", *args],
            stdout=out,
            stderr=subprocess.STDOUT,
        )


@pytest.fixture(scope="module")
def extender_url(
    kwok_cluster: KwokCluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("extender")
    traffic = tmp / "traffic.csv"
    traffic.write_text(
        "source,destination,bytes\n" + "".join(f"{a},{b},1000000\n" for a, b in PAIRS)
    )
    port = _free_port()
    log = tmp / "extender.log"
    proc = _schedulers_cli(
        "netmarks-extender",
        "--traffic", str(traffic),
        "--port", str(port),
        "--kubeconfig", str(kwok_cluster.kubeconfig),
        log=log,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http_ok(f"{url}/healthz", proc, log, timeout=60)
        yield url
    finally:
        stop_process(proc)


@pytest.fixture(scope="module")
def netmarks_scheduler(kwok_cluster: KwokCluster, extender_url: str) -> Iterator[ExtraScheduler]:
    ext = extender_stanza(extender_url + "/", weight=5)
    with ExtraScheduler.start(kwok_cluster, NETMARKS_SCHEDULER, extenders=[ext]) as sched:
        yield sched


def _prioritize_calls(extender_url: str) -> float:
    with urllib.request.urlopen(f"{extender_url}/metrics", timeout=5) as r:
        text = r.read().decode()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("netmarks_extender_requests_total") and "prioritize" in line
    )


def _wait_extender_sees(extender_url: str, namespace: str, pods: list[Any]) -> None:
    """Until the extender's pod watch counts every one of ``pods`` on its node."""
    want = {f"{namespace}/{p.metadata.name}": p.spec.node_name for p in pods}
    deadline = time.monotonic() + 30
    seen: dict[str, str] = {}
    while time.monotonic() < deadline:
        with urllib.request.urlopen(f"{extender_url}/placements", timeout=5) as r:
            seen = {k: v["node"] for k, v in json.load(r)["pods"].items() if k in want}
        if seen == want:
            return
        time.sleep(0.05)  # poll interval, not a wait for the condition
    raise AssertionError(f"extender still sees {seen}, not {want}")


def _place_pairs(
    cluster: KwokCluster, namespace: str, scheduler: str, pairs: list[tuple[str, str]],
    extender_url: str | None = None,
) -> dict[str, str]:
    """Deploy each pair's first workload, then (once bound, and counted by the extender
    where it was bound) its partner; app -> node."""
    firsts = [DeploymentSpec(a, cpu_m=200) for a, _ in pairs]
    create_deployments(cluster, namespace, firsts, scheduler)
    bound = wait_bound(cluster, namespace, len(pairs))
    if extender_url is not None:
        _wait_extender_sees(extender_url, namespace, bound)
    partners = [DeploymentSpec(b, cpu_m=200) for _, b in pairs]
    create_deployments(cluster, namespace, partners, scheduler)
    pods = wait_bound(cluster, namespace, 2 * len(pairs))
    return {p.metadata.labels["app"]: p.spec.node_name for p in pods}


def test_real_kube_scheduler_calls_extender_and_colocates_pairs(
    kwok_cluster: KwokCluster,
    namespace: str,
    extender_url: str,
    netmarks_scheduler: ExtraScheduler,
) -> None:
    before = _prioritize_calls(extender_url)
    where = _place_pairs(kwok_cluster, namespace, NETMARKS_SCHEDULER, PAIRS, extender_url)
    assert _prioritize_calls(extender_url) > before, "kube-scheduler never called /prioritize"
    for a, b in PAIRS:
        assert where[a] == where[b], f"{b} not placed with its traffic partner {a}: {where}"
    events = kwok_cluster.core_v1().list_namespaced_event(namespace).items
    reporters = {
        e.reporting_component or e.source.component for e in events if e.reason == "Scheduled"
    }
    assert reporters == {NETMARKS_SCHEDULER}


def test_default_scheduler_ignores_traffic(kwok_cluster: KwokCluster, namespace: str) -> None:
    # The control: the stock scheduler spreads (LeastAllocated) and knows no traffic, so
    # with 2 pairs on 5 nodes a partner always picks an empty node over its first's.
    where = _place_pairs(kwok_cluster, namespace, "default-scheduler", PAIRS[:2])
    assert all(where[a] != where[b] for a, b in PAIRS[:2]), where


@contextmanager
def _firmament(cluster: KwokCluster, log: Path, *flags: str) -> Iterator[None]:
    """The firmament binder as a process for the block; a bind timeout inside shows its log."""
    proc = _schedulers_cli(
        "firmament", "--kubeconfig", str(cluster.kubeconfig), "--scheduler-name", "firmament",
        *flags, log=log,
    )  # fmt: skip
    try:
        yield
    except KwokError as exc:
        pytest.fail(f"firmament did not bind all pods ({exc}):\n{log.read_text()[-3000:]}")
    finally:
        stop_process(proc)


def test_firmament_binds_every_pod(
    kwok_cluster: KwokCluster, namespace: str, tmp_path: Path
) -> None:
    with _firmament(kwok_cluster, tmp_path / "firmament.log", "--interval", "0.5"):
        create_deployments(
            kwok_cluster, namespace, [DeploymentSpec("web", replicas=8, cpu_m=500)], "firmament"
        )
        pods = wait_bound(kwok_cluster, namespace, 8, timeout=60)
    assert {p.spec.node_name for p in pods} <= set(kwok_cluster.node_names)
    per_node: dict[str, int] = {}
    for p in pods:
        per_node[p.spec.node_name] = per_node.get(p.spec.node_name, 0) + 1
    assert max(per_node.values()) * 500 <= 4000, per_node  # capacity respected
    deadline = time.monotonic() + 30
    core = kwok_cluster.core_v1()
    while time.monotonic() < deadline:
        if {p.status.phase for p in core.list_namespaced_pod(namespace).items} == {"Running"}:
            break
        time.sleep(0.2)
    assert {p.status.phase for p in core.list_namespaced_pod(namespace).items} == {"Running"}


def _wait_for_rounds(rounds: Callable[[], list[str]], n: int) -> None:
    """The binder logs a round after its bindings land: wait for the n-th line before
    counting (once, a full CI run read the log a moment too early)."""
    deadline = time.monotonic() + 30
    while len(rounds()) < n:
        assert time.monotonic() < deadline, f"fewer than {n} rounds logged: {rounds()}"
        time.sleep(0.05)  # poll interval


def test_firmament_settle_places_a_trickling_deployment_in_one_round(
    kwok_cluster: KwokCluster, namespace: str, tmp_path: Path
) -> None:
    # Three waves 0.4 s apart: cut at a 0.1 s interval they would be 3+ rounds; with
    # --settle 2.0 (a margin for a slow API server) the binder waits for the last wave
    # and places all six pods at once.
    log = tmp_path / "firmament.log"

    def rounds() -> list[str]:
        return [line for line in log.read_text().splitlines() if "round:" in line]

    with _firmament(kwok_cluster, log, "--interval", "0.1", "--settle", "2.0"):
        # A first pod bound proves the binder is up before the timed waves start.
        create_deployments(
            kwok_cluster, namespace, [DeploymentSpec("ready", cpu_m=100)], "firmament"
        )
        wait_bound(kwok_cluster, namespace, 1, timeout=60)
        # The binder logs its round after the binding lands: wait for that line, or it
        # would count among the waves' rounds (it did, once in a full CI run).
        _wait_for_rounds(rounds, 1)
        before = len(rounds())
        for wave in ("one", "two", "three"):
            create_deployments(
                kwok_cluster, namespace, [DeploymentSpec(wave, replicas=2, cpu_m=100)],
                "firmament",
            )
            time.sleep(0.4)
        wait_bound(kwok_cluster, namespace, 7, timeout=60)
        _wait_for_rounds(rounds, before + 1)
    waves = rounds()[before:]
    assert len(waves) == 1 and "6 pending, 6 bound" in waves[0], waves
