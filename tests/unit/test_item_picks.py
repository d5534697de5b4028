"""Items picked from an economy's graph when none are given (settlers.picks), and the
defaults and presets of the harness that use them on economies other than Settlers."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import yaml

from analysis.report import build_report
from harness.backends.registry import describe
from harness.experiment import Experiment
from harness.testing import ModelCluster
from results.config import (
    DEFAULT_ITEMS,
    PRESETS,
    ConfigError,
    ItemsOrigin,
    build_config,
    items_note,
)
from results.manifest import new_manifest
from results.store import ResultsStore
from settlers.economy import Economy, load_economy
from settlers.picks import depths, representative_items, same_graph, shared_inputs


def economy(items: dict[str, list[str]], name: str = "hand") -> Economy:
    return Economy.from_mapping({"name": name, "items": {n: {"inputs": i} for n, i in
                                                         items.items()}})


def picks(eco: Economy) -> dict[str, tuple[str, ...]]:
    return {p.item: p.roles for p in representative_items(eco)}


# A workshop: a chain (sand -> glass -> lens), a diamond (ore feeds metal, metal feeds
# both frame and scope), and a deeper item on top of both.
WORKSHOP = {
    "ore": [], "sand": [], "glass": ["sand"], "lens": ["glass"], "metal": ["ore"],
    "frame": ["metal"], "scope": ["lens", "frame", "metal"], "kit": ["scope"],
}


def test_workshop_gets_a_deepest_a_chain_and_a_shared_supply_item() -> None:
    eco = economy(WORKSHOP)
    assert depths(eco)["kit"] == 4 and depths(eco)["lens"] == 2
    assert shared_inputs(eco, "scope") == ["metal"]
    assert picks(eco) == {
        "lens": ("simple chain",),        # deepest single path; frame ties, lens is first
        "scope": ("shared supply",),      # the smallest closure with a shared input
        "kit": ("deepest",),
    }
    [lens, scope, kit] = representative_items(eco)  # in the economy's order
    assert lens.describe() == "lens (simple chain: lens <- glass <- sand)"
    assert "metal reached along two paths" in scope.describe()
    assert "4 hops to a raw item" in kit.describe()


def test_without_any_shared_input_there_is_no_shared_supply_pick() -> None:
    # Two independent chains joined at the top: no item is reached along two paths.
    eco = economy({"a": [], "b": ["a"], "c": ["b"], "x": [], "y": ["x"], "top": ["c", "y"]})
    assert picks(eco) == {"c": ("simple chain",), "top": ("deepest",)}


def test_a_pure_chain_is_one_item_with_both_roles() -> None:
    eco = economy({"a": [], "b": ["a"], "c": ["b"]})
    assert picks(eco) == {"c": ("deepest", "simple chain")}


def test_the_only_diamond_being_the_deepest_item_merges_the_roles() -> None:
    eco = economy({"w": [], "p": ["w"], "q": ["w"], "top": ["p", "q"]})
    assert picks(eco) == {"p": ("simple chain",), "top": ("deepest", "shared supply")}


@pytest.mark.parametrize("items", [{"solo": []}, {"a": [], "b": [], "c": []}])
def test_tiny_or_all_raw_economies_fall_back_to_one_item(items: dict[str, list[str]]) -> None:
    [pick] = representative_items(economy(items))
    assert pick.item == next(iter(items)) and pick.roles == ("deepest",)
    assert "every item is raw" in pick.describe()


def test_picks_are_deterministic_and_independent_of_file_order_among_equals() -> None:
    eco = economy(WORKSHOP)
    assert representative_items(eco) == representative_items(economy(WORKSHOP))
    settlers = load_economy()
    assert [p.item for p in representative_items(settlers)] == ["boat", "coal", "tools"]


def test_same_graph_ignores_deployment_details_but_not_edges() -> None:
    a = economy({"a": [], "b": ["a"]})
    assert same_graph(a, Economy.from_mapping(
        {"name": "other", "items": {"a": {"work_ms": 3}, "b": {"inputs": ["a"], "replicas": 2}}}))
    assert not same_graph(a, economy({"a": [], "b": []}))


# --- the harness's defaults on another economy --------------------------------------


@pytest.fixture
def workshop_file(tmp_path: Path) -> Path:
    path = tmp_path / "workshop.yaml"
    lines = ["name: workshop", "items:"]
    lines += [f"  {n}: {{inputs: [{', '.join(i)}]}}" for n, i in WORKSHOP.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_settlers_keeps_the_papers_items_for_the_default_and_quick() -> None:
    assert build_config().items == DEFAULT_ITEMS
    assert build_config(preset="quick").items == PRESETS["quick"]["items"]
    assert build_config(preset="quick", overrides={"economy": "settlers2"}).items == [
        "boat", "bread", "coal", "sword"]
    assert build_config().items_origin() == ItemsOrigin(how="paper")


@pytest.mark.parametrize("preset", [None, "quick"])
def test_another_economy_gets_items_from_its_graph(workshop_file: Path,
                                                   preset: str | None) -> None:
    cfg = build_config(preset=preset, overrides={"economy": str(workshop_file), "nodes": 4})
    assert cfg.items == ["lens", "scope", "kit"]
    origin = cfg.items_origin()
    assert origin.how == "derived" and origin.economy == "workshop"
    assert [(p.item, p.roles) for p in origin.picks] == [
        ("lens", ["simple chain"]), ("scope", ["shared supply"]), ("kit", ["deepest"])]
    assert items_note(origin) == ("items derived from economy 'workshop': lens (simple "
                                  "chain); scope (shared supply); kit (deepest)")


def test_an_economy_from_a_config_file_also_gets_derived_items(workshop_file: Path,
                                                               tmp_path: Path) -> None:
    exp = tmp_path / "exp.yaml"
    exp.write_text(f"economy: {workshop_file}\nitems: null\n")
    assert build_config(preset="quick", file=exp).items == ["lens", "scope", "kit"]


def test_given_items_are_kept_and_checked(workshop_file: Path) -> None:
    cfg = build_config(preset="quick", overrides={"economy": str(workshop_file),
                                                  "items": ["glass"]})
    assert cfg.items == ["glass"] and cfg.items_origin() == ItemsOrigin(how="given")
    with pytest.raises(ConfigError) as err:
        build_config(preset="quick", overrides={"economy": str(workshop_file),
                                                "items": ["boat", "lens"]})
    assert "items not in economy 'workshop': boat" in str(err.value)
    every = build_config(overrides={"economy": str(workshop_file), "items": "all"})
    assert sorted(every.item_list()) == sorted(WORKSHOP)


def test_a_stored_config_validates_again_with_its_items(workshop_file: Path) -> None:
    cfg = build_config(preset="quick", overrides={"economy": str(workshop_file)})
    again = type(cfg).model_validate(cfg.model_dump(mode="json"))  # what --resume does
    assert again == cfg and again.items_origin() == cfg.items_origin()


def test_a_copy_of_the_settlers_graph_keeps_the_papers_items(tmp_path: Path) -> None:
    copy = tmp_path / "copy.yaml"
    data = load_economy().to_dict()
    data["name"] = "my-settlers"
    for spec in data["items"].values():
        spec["work_ms"] = 1.0  # deployment details do not change which items fit
    copy.write_text(yaml.safe_dump(data))
    assert build_config(preset="quick", overrides={"economy": str(copy)}).items == [
        "boat", "bread", "coal", "sword"]


def test_a_quick_run_on_another_economy_reports_its_derived_items(
    workshop_file: Path, tmp_path: Path,
) -> None:
    cfg = build_config(preset="quick", overrides={
        "economy": str(workshop_file), "nodes": 4, "deployments": 20, "warmup_seconds": 0,
        "bootstrap": 200,
    })
    store = ResultsStore.create(tmp_path / "run", new_manifest(cfg, describe(cfg.backend)))
    manifest = store.manifest()
    assert manifest.items == ["lens", "scope", "kit"]
    assert manifest.items_origin is not None and manifest.items_origin.how == "derived"
    backend = ModelCluster(cfg.load_economy(), cfg.nodes)
    asyncio.run(Experiment(cfg, store, backend.backend(), sweep=backend.sweep).run())
    text = build_report(store.root, figures=False).path.read_text()
    assert "items derived from economy 'workshop'" in text
    for fragment in ("lens (simple chain: lens <- glass <- sand)",
                     "scope (shared supply: metal reached along two paths",
                     "kit (deepest: 4 hops to a raw item"):
        assert fragment in text
    assert set(store.samples()["item"]) == {"lens", "scope", "kit"}
