"""Creation order (`--order`): each redeployment's Deployment order, drawn reproducibly,
handed to every placer, recorded per placement and stated in the report."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from typer.testing import CliRunner

from harness.backends.layoutspace import LayoutSpace
from harness.backends.local.placer import ModelPlacer
from harness.backends.registry import describe
from harness.experiment import Experiment
from harness.testing import ModelCluster
from results.config import DEFAULT_ORDER, ConfigError, ExperimentConfig, build_config
from results.manifest import Manifest, new_manifest
from results.store import ResultsStore
from schedulers import CREATION_ORDERS, CreationOrder, Pod, in_creation_order
from settlers.economy import load_economy
from settlers.tables import read_parquet

ECONOMY = load_economy(None)
WORKLOADS = [item.name for item in ECONOMY]


# -- the orders themselves ---------------------------------------------------------------

def test_file_and_reverse_are_the_economys_order_and_its_mirror() -> None:
    assert CreationOrder("file").for_deployment(7, WORKLOADS) == tuple(WORKLOADS)
    assert CreationOrder("reverse").for_deployment(7, WORKLOADS) == tuple(reversed(WORKLOADS))
    # The economy's order puts every item after its inputs (flour after grain).
    assert WORKLOADS.index("grain") < WORKLOADS.index("flour")


def test_random_draws_a_new_permutation_per_redeployment_reproducibly() -> None:
    order = CreationOrder("random", seed=3)
    drawn = [order.for_deployment(d, WORKLOADS) for d in range(50)]
    assert all(sorted(o) == sorted(WORKLOADS) for o in drawn)
    assert len(set(drawn)) == 50  # 19! orders: a repeat would be a bug
    # From (seed, deployment) alone: the same in any sequence, in a fresh object.
    again = CreationOrder("random", seed=3)
    assert [again.for_deployment(d, WORKLOADS) for d in reversed(range(50))] == drawn[::-1]
    # Another seed, other orders.
    other = CreationOrder("random", seed=4)
    assert sum(other.for_deployment(d, WORKLOADS) == drawn[d] for d in range(50)) == 0


def test_a_random_order_does_not_depend_on_the_process(tmp_path: Path) -> None:
    # Python salts str hashes per process; the draw must not depend on that.
    import subprocess
    import sys

    code = ("from schedulers import CreationOrder; "
            "print(','.join(CreationOrder('random', 1).for_deployment(5, list('abcdefgh'))))")
    runs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           env={"PYTHONHASHSEED": str(h), "PATH": ""}, check=True,
                           cwd=Path(__file__).resolve().parents[2]).stdout
            for h in (1, 2)}
    assert runs == {",".join(CreationOrder("random", 1).for_deployment(5, list("abcdefgh")))
                    + "\n"}


def test_an_unknown_mode_is_refused_with_the_choices() -> None:
    with pytest.raises(ValueError, match="unknown creation order 'sideways'; known: "
                                         "file, reverse, random"):
        CreationOrder("sideways")  # type: ignore[arg-type]
    assert CREATION_ORDERS == ("file", "reverse", "random")


def test_pods_follow_their_deployments_and_replicas_keep_together() -> None:
    pods = [Pod("a-0", "a"), Pod("a-1", "a"), Pod("b-0", "b"), Pod("c-0", "c"),
            Pod("c-1", "c")]
    ordered = in_creation_order(pods, ["c", "a", "b"])
    assert [p.name for p in ordered] == ["c-0", "c-1", "a-0", "a-1", "b-0"]
    with pytest.raises(ValueError, match="lacks Deployment"):
        in_creation_order(pods, ["a", "b"])


# -- the setting -------------------------------------------------------------------------

def test_the_setting_defaults_validates_and_reaches_the_placers() -> None:
    assert build_config().order == DEFAULT_ORDER == "random"
    cfg = build_config(overrides={"order": "reverse", "seed": 9})
    assert cfg.creation_order() == CreationOrder("reverse", 9)
    with pytest.raises(ConfigError, match=r"order: Input should be 'file', 'reverse' or "
                                          r"'random'"):
        build_config(overrides={"order": "alphabetical"})


def test_an_experiment_file_sets_it(tmp_path: Path) -> None:
    path = tmp_path / "experiment.yaml"
    path.write_text("order: file\n")
    assert build_config(file=path).order == "file"
    assert build_config(file=path, overrides={"order": "reverse"}).order == "reverse"
    path.write_text("order: shuffled\n")
    with pytest.raises(ConfigError, match=r"experiment.yaml\):\n  order: Input should be"):
        build_config(file=path)


def test_a_record_from_before_the_setting_reads_as_file_order() -> None:
    old = build_config().model_dump(mode="json")
    del old["order"]
    assert ExperimentConfig.recorded(old).order == "file"
    # A record that has it keeps it.
    assert ExperimentConfig.recorded({**old, "order": "random"}).order == "random"


def test_the_manifest_records_the_mode(tmp_path: Path) -> None:
    cfg = build_config(overrides={"order": "random"})
    manifest = new_manifest(cfg, describe(cfg.backend))
    stored = json.loads(manifest.to_json())
    assert stored["config"]["order"] == "random"
    assert Manifest.read(stored).config.order == "random"


# -- the placers -------------------------------------------------------------------------

def _place(placer: Any, order: CreationOrder, n: int, scheduler: str = "kube_default",
           seed: int = 1) -> list[Any]:
    return asyncio.run(placer.place(scheduler, n, traffic=None, seed=seed, order=order))


def test_the_local_placer_places_in_the_order_and_records_it() -> None:
    placer = ModelPlacer(ECONOMY, 5)
    # File order is what the placer did before the setting: the same placements.
    before = asyncio.run(placer.place("kube_default", 20, traffic=None, seed=1))
    file = _place(placer, CreationOrder("file"), 20)
    assert [p.assignments for p in file] == [p.assignments for p in before]
    assert all(p.creation_order == tuple(WORKLOADS) for p in file)
    rev = _place(placer, CreationOrder("reverse"), 3)
    assert all(p.creation_order == tuple(reversed(WORKLOADS)) for p in rev)
    order = CreationOrder("random", 5)
    shuffled = _place(placer, order, 60)
    assert [p.creation_order for p in shuffled] == [
        order.for_deployment(d, WORKLOADS) for d in range(60)]
    # Reproducible, and the same orders for another scheduler (paired).
    assert [p.assignments for p in _place(placer, order, 60)] == [
        p.assignments for p in shuffled]
    assert [p.creation_order for p in _place(placer, order, 60, "netmarks", seed=2)] == [
        p.creation_order for p in shuffled]


def test_the_order_changes_what_kube_default_splits() -> None:
    # In the economy's order flour is created right after grain's level and kube_default
    # spreads it away from grain almost always; reversed, flour comes long before grain.
    placer = ModelPlacer(ECONOMY, 5)

    def flour_split(order: CreationOrder) -> float:
        placed = _place(placer, order, 200)
        return float(sum(p.assignments["flour-0"] != p.assignments["grain-0"]
                         for p in placed) / len(placed))

    assert flour_split(CreationOrder("file")) > 0.95
    assert flour_split(CreationOrder("reverse")) < 0.9


def test_the_models_queue_gets_the_pods_in_creation_order() -> None:
    space = LayoutSpace.uniform(ECONOMY, 3)
    created = CreationOrder("random", 2).for_deployment(0, WORKLOADS)
    assert [p.workload for p in space.pods_in(created)] == list(created)
    from schedulers.policies import kube_default

    # queue_jitter 0: kube-scheduler's queue is exactly the creation order.
    policy = kube_default.new(seed=1, queue_jitter=0)
    result = policy.schedule(space.pods_in(created), space.nodes)
    assert [name.rsplit("-", 1)[0] for name in result.order] == list(created)


def test_the_kwok_placer_creates_the_deployments_in_each_rounds_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import harness.backends.k8s as k8s
    from harness.backends.k8s.placements import PlacementRound, economy_deployments
    from harness.backends.kwok import placer as kwok_placer

    assert [s.name for s in economy_deployments(ECONOMY, WORKLOADS[::-1])] == WORKLOADS[::-1]
    with pytest.raises(ValueError, match="not a permutation"):
        economy_deployments(ECONOMY, WORKLOADS[1:])

    def rounds(cluster: Any, economy: Any, name: str, n: int, *, orders: Any,
               **_: Any) -> list[PlacementRound]:
        out = []
        for i in range(n):
            specs = economy_deployments(economy, orders(i))
            out.append(PlacementRound({f"{s.name}-0": "node-1" for s in specs}, 0.1,
                                      tuple(s.name for s in specs)))
        return out

    monkeypatch.setattr(kwok_placer, "sigterm_as_interrupt", lambda: None)
    monkeypatch.setattr(k8s, "collect_rounds", rounds)
    placer = kwok_placer.KwokPlacer(ECONOMY, 3)
    monkeypatch.setattr(placer, "_ensure_cluster", lambda: SimpleNamespace(kubeconfig="k"))
    order = CreationOrder("random", 8)
    placed = _place(placer, order, 4)
    assert [p.creation_order for p in placed] == [
        order.for_deployment(d, WORKLOADS) for d in range(4)]


def test_the_kubernetes_placer_scales_up_in_the_order() -> None:
    from harness.backends.kubernetes.placer import KubernetesPlacer
    from schedulers import uniform_nodes

    scaled: list[list[str]] = []

    class Cluster:
        def scale_producers(self, replicas: dict[str, int]) -> None:
            if any(replicas.values()):
                scaled.append(list(replicas))

        def delete_producer_pods(self, timeout: float) -> None: ...

        def wait_no_producers(self, timeout: float) -> None: ...

        def wait_placed(self, n: int, timeout: float, *, started: float) -> Any:
            return SimpleNamespace(pods=[], seconds=0.1, unschedulable=())

    import threading

    release = SimpleNamespace(economy=ECONOMY, nodes=uniform_nodes(3), cluster=Cluster(),
                              busy=threading.Lock(), check_open=lambda: None,
                              options=SimpleNamespace(timeout_s=5))
    placer = KubernetesPlacer(release)  # type: ignore[arg-type]
    placer.redeploy_once(tuple(reversed(WORKLOADS)))
    placer.redeploy_once()
    assert scaled == [WORKLOADS[::-1], WORKLOADS]


# -- the experiment, the record, the report ---------------------------------------------

@pytest.mark.parametrize("mode", CREATION_ORDERS)
def test_each_placement_records_its_order_and_the_report_states_it(
    tmp_path: Path, mode: str,
) -> None:
    from analysis.report import build_report

    cfg = build_config(overrides={
        "deployments": 8, "nodes": 3, "items": ["flour", "bread"], "sizes": [16],
        "protocols": ["http"], "repetitions": 1, "layout_budget": 4, "warmup_orders": 1,
        "warmup_seconds": 0, "bootstrap": 100, "order": mode, "seed": 4,
    })
    store = ResultsStore.create(tmp_path / "run", new_manifest(cfg, describe(cfg.backend)))
    backend = ModelCluster(cfg.load_economy(), cfg.nodes)
    asyncio.run(Experiment(cfg, store, backend.backend(), sweep=backend.sweep).run())

    placements = store.read_table("placements")
    expected = [",".join(cfg.creation_order().for_deployment(d, WORKLOADS)) for d in range(8)]
    for _, group in placements.groupby("scheduler"):
        # The same order for redeployment d under every scheduler.
        assert list(group.sort_values("deployment")["creation_order"]) == expected
    assert store.manifest().config.order == mode
    text = build_report(store.root, figures=False).path.read_text()
    what_was_run = text.split("## What was run", 1)[1].split("## Where", 1)[0]
    assert f"creation order of the Deployments: `{mode}`" in what_was_run
    if mode == "random":
        assert "8 distinct orders over 16 placements" in " ".join(what_was_run.split())
    else:
        assert ", ".join(expected[0].split(",")) in " ".join(what_was_run.split())


def test_a_run_from_before_the_setting_reports_file_order(tmp_path: Path) -> None:
    from analysis.report import build_report

    cfg = build_config(overrides={
        "deployments": 4, "nodes": 2, "items": ["flour"], "sizes": [16],
        "protocols": ["http"], "repetitions": 1, "layout_budget": 2, "warmup_orders": 1,
        "warmup_seconds": 0, "bootstrap": 100, "order": "file",
    })
    store = ResultsStore.create(tmp_path / "run", new_manifest(cfg, describe(cfg.backend)))
    backend = ModelCluster(cfg.load_economy(), cfg.nodes)
    asyncio.run(Experiment(cfg, store, backend.backend(), sweep=backend.sweep).run())
    # As such a run stored it: no order in its config, no column in its placements.
    manifest = json.loads((store.root / "manifest.json").read_text())
    del manifest["config"]["order"]
    (store.root / "manifest.json").write_text(json.dumps(manifest))
    store.write_table("placements", store.read_table("placements").drop(
        columns="creation_order"))
    text = " ".join(build_report(store.root, figures=False).path.read_text().split())
    assert ("creation order of the Deployments: `file`, the economy's order (inputs first, "
            "as in the file), every redeployment (before it was recorded per placement)"
            ) in text


# -- harness schedule --------------------------------------------------------------------

runner = CliRunner()


@pytest.mark.cli
def test_harness_schedule_orders_and_records(tmp_path: Path) -> None:
    from harness.cli import app

    out = tmp_path / "p.parquet"
    args = ["schedule", "-s", "kube_default", "--deployments", "4", "--nodes", "3",
            "--seed", "2", "--out", str(out)]
    done = runner.invoke(app, [*args, "--order", "reverse"])
    assert done.exit_code == 0, done.output
    assert set(read_parquet(out)["creation_order"]) == {",".join(reversed(WORKLOADS))}
    assert "creation order" in done.output
    done = runner.invoke(app, [*args, "--order", "random"])
    assert done.exit_code == 0, done.output
    first = read_parquet(out)
    assert first.groupby("deployment")["creation_order"].first().tolist() == [
        ",".join(CreationOrder("random", 2).for_deployment(d, WORKLOADS)) for d in range(4)]
    assert runner.invoke(app, [*args, "--order", "random"]).exit_code == 0
    assert read_parquet(out).equals(first)  # --seed reproduces orders and placements


@pytest.mark.cli
def test_harness_schedule_refuses_a_bad_order(tmp_path: Path) -> None:
    from harness.cli import app

    done = runner.invoke(app, ["schedule", "-s", "kube_default", "--order", "sorted",
                               "--out", str(tmp_path / "p.parquet")])
    assert done.exit_code == 2
    assert "'sorted' is not a creation order; choose one of file, reverse, random" in " ".join(
        done.output.replace("│", " ").split())


# -- the committed measurement ----------------------------------------------------------

def test_the_committed_creation_order_bench_is_what_the_code_gives() -> None:
    """bench/results/creation-order.json (docs/experiment.md quotes it) is deterministic:
    recompute kube_default's figures for every order."""
    import importlib.util

    root = Path(__file__).resolve().parents[2]
    spec = importlib.util.spec_from_file_location("_bench_creation_order",
                                                  root / "bench" / "creation_order.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    committed = json.loads((root / "bench/results/creation-order.json").read_text())["orders"]
    for mode in CREATION_ORDERS:
        assert module.measure(mode, "kube_default") == committed[mode]["kube_default"], mode
