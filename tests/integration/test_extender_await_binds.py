"""The extender's --await-binds: a pod is scored only once the pods scored before it are
bound, so its score counts them (over real HTTP, kube-scheduler's JSON)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from schedulers import TrafficMatrix
from schedulers.extender import Placements, StaticTraffic, make_app
from schedulers.extender.app import INFLIGHT_KEY

TRAFFIC = TrafficMatrix({("bread", "flour"): 900.0})
NODES = ["node-1", "node-2", "node-3"]


def pod(name: str, app: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "s", "labels": {"app": app}}}


def bound(name: str, app: str, node: str) -> dict[str, Any]:
    return {**pod(name, app), "spec": {"nodeName": node}, "status": {"phase": "Running"}}


async def _scores(c: TestClient[Any, Any], name: str, app: str) -> list[int]:
    resp = await c.post("/prioritize", json={"Pod": pod(name, app), "NodeNames": NODES})
    assert resp.status == 200
    return [h["Score"] for h in await resp.json()]


async def test_the_next_pod_waits_for_the_binding_of_the_one_scored_before() -> None:
    placements = Placements()
    app = make_app(StaticTraffic(TRAFFIC), placements, await_binds_s=4.0)
    async with TestClient(TestServer(app)) as c:
        await _scores(c, "flour-a", "flour")  # scored: kube-scheduler will bind it
        bread = asyncio.create_task(_scores(c, "bread-b", "bread"))
        await asyncio.sleep(0.05)
        assert not bread.done()  # waiting: flour-a is not bound yet
        # The pod watch (another thread in the real extender) reports the binding.
        placements.apply_event("MODIFIED", bound("flour-a", "flour", "node-2"))
        assert await asyncio.wait_for(bread, 4) == [0, 10, 0]
        assert app[INFLIGHT_KEY].waits == 1 and app[INFLIGHT_KEY].timeouts == 0


async def test_a_pod_bound_then_deleted_is_not_waited_for() -> None:
    # The end of a redeployment: the last pod scored is bound, then deleted before the
    # next redeployment's first pod is scored.
    placements = Placements()
    app = make_app(StaticTraffic(TRAFFIC), placements, await_binds_s=4.0)
    async with TestClient(TestServer(app)) as c:
        await _scores(c, "flour-a", "flour")
        placements.apply_event("MODIFIED", bound("flour-a", "flour", "node-2"))
        placements.apply_event("DELETED", bound("flour-a", "flour", "node-2"))
        assert await asyncio.wait_for(_scores(c, "bread-b", "bread"), 1) == [0, 0, 0]
        assert app[INFLIGHT_KEY].timeouts == 0


async def test_without_the_option_the_pod_is_scored_at_once_on_what_is_known() -> None:
    async with TestClient(TestServer(make_app(StaticTraffic(TRAFFIC), Placements()))) as c:
        await _scores(c, "flour-a", "flour")
        # flour-a's binding not seen yet: no vote.
        assert await asyncio.wait_for(_scores(c, "bread-b", "bread"), 4) == [0, 0, 0]


async def test_a_pod_never_bound_costs_one_wait_then_is_forgotten() -> None:
    app = make_app(StaticTraffic(TRAFFIC), Placements(), await_binds_s=0.05)
    async with TestClient(TestServer(app)) as c:
        await _scores(c, "flour-a", "flour")
        assert await _scores(c, "bread-b", "bread") == [0, 0, 0]
        assert app[INFLIGHT_KEY].timeouts == 1
        # bread-b is now the one in flight; a retry of bread-b does not wait for itself.
        assert await _scores(c, "bread-b", "bread") == [0, 0, 0]
        assert app[INFLIGHT_KEY].timeouts == 1


@pytest.mark.parametrize("bad", ["-1", "5", "nan"])
def test_cli_rejects_a_wait_outside_the_extender_timeout(bad: str, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from schedulers.cli import app

    matrix = tmp_path / "t.csv"
    TRAFFIC.to_csv(matrix)
    result = CliRunner().invoke(app, ["netmarks-extender", "--traffic", str(matrix),
                                      f"--await-binds={bad}"])
    assert result.exit_code == 2
    assert "between 0 and 4 seconds" in result.output


def test_cli_rejects_a_wait_with_fixed_pods(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from schedulers.cli import app

    matrix, pods = tmp_path / "t.csv", tmp_path / "pods.json"
    TRAFFIC.to_csv(matrix)
    pods.write_text('{"items": []}')
    result = CliRunner().invoke(app, ["netmarks-extender", "--traffic", str(matrix),
                                      "--pods", str(pods), "--await-binds", "0.5"])
    assert result.exit_code == 2
    assert "sees none" in result.output


async def test_a_late_watch_event_of_the_unbound_pod_does_not_undo_our_bind() -> None:
    # kube-scheduler hands the extender the binding (--bind) before the pod watch has
    # even reported the pod's creation; that creation event (no nodeName) comes later.
    placements = Placements()

    class Binder:
        async def bind(self, namespace: str, pod: str, node: str) -> None:
            return None

    app = make_app(StaticTraffic(TRAFFIC), placements, Binder(), await_binds_s=4.0)
    async with TestClient(TestServer(app)) as c:
        await _scores(c, "flour-a", "flour")
        resp = await c.post("/bind", json={"PodName": "flour-a", "PodNamespace": "s",
                                           "Node": "node-2"})
        assert (await resp.json()) == {"Error": ""}
        placements.apply_event("ADDED", {**pod("flour-a", "flour"), "spec": {},
                                         "status": {"phase": "Pending"}})
        assert "s/flour-a" in placements
        assert await asyncio.wait_for(_scores(c, "bread-b", "bread"), 1) == [0, 10, 0]
        assert app[INFLIGHT_KEY].waits == 0
