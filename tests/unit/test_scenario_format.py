"""The scenario format: presets, files, and the errors bad files get."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from results.scenario import (
    SCENARIO_PRESETS,
    Scenario,
    ScenarioError,
    done_schedulers,
    load_scenario,
    read_scenario,
    read_scenario_tables,
    resolve_scenario,
    write_scenario,
    write_scenario_tables,
)
from settlers.economy import load_economy

NODES = [f"node-{i}" for i in range(1, 6)]


@pytest.mark.parametrize("name", list(SCENARIO_PRESETS))
def test_presets_fit_the_default_economy(name: str) -> None:
    scenario = resolve_scenario(name)
    scenario.check(load_economy().names, NODES)
    assert len(scenario.phases) == 2
    assert scenario.boundaries()[1][1] == scenario.phases[0].duration_s


def test_shift_moves_from_chains_to_shared_supply() -> None:
    first, second = resolve_scenario("shift").phases
    assert set(first.orders.items) == {"flour", "board", "boat"}
    assert set(second.orders.items) == {"iron", "coin", "sword", "tools"}


def test_scaled_halves_durations_and_event_times() -> None:
    s = resolve_scenario("drain").scaled(0.5)
    assert s.phases[0].duration_s == 20
    assert s.duration_s == resolve_scenario("drain").duration_s / 2


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "s.yaml"
    path.write_text(text)
    return path


GOOD = """
phases:
  - name: a
    duration_s: 10
    orders: {items: [flour], rate: 2}
    events: [{at_s: 1, kind: degrade, node: node-1, latency_ms: 5}]
"""


def test_a_file_loads_and_takes_its_name_from_the_file(tmp_path: Path) -> None:
    s = load_scenario(_write(tmp_path, GOOD))
    assert s.name == "s"
    assert s.phases[0].events[0].describe() == "degrade node-1's links to 5 ms"


@pytest.mark.parametrize(("text", "message"), [
    ("phases: []", "phases"),
    ("- a\n- b", "a scenario file is a mapping"),
    ("phases: [{name: a, duration_s: 0, orders: {items: [flour], rate: 1}}]", "duration_s"),
    ("phases: [{name: a, duration_s: 5, orders: {items: [], rate: 1}}]", "items"),
    ("phases: [{name: a, duration_s: 5, orders: {items: [flour], rate: -1}}]", "rate"),
    ("phases: [{name: a, duration_s: 5, orders: {items: [flour], rate: 1, sizes: [0]}}]",
     "sizes must be 1 B .. 16 MiB"),
    ("phases: [{name: a, duration_s: 5, orders: {items: [flour], rate: 1},"
     " events: [{kind: explode, node: node-1}]}]", "kind"),
    ("phases: [{name: a, duration_s: 5, orders: {items: [flour], rate: 1},"
     " events: [{kind: degrade, node: node-1}]}]", "needs latency_ms"),
    ("phases: [{name: a, duration_s: 5, orders: {items: [flour], rate: 1},"
     " events: [{kind: drain, node: node-1, latency_ms: 3}]}]", "belong to degrade"),
    ("phases: [{name: a, duration_s: 5, orders: {items: [flour], rate: 1},"
     " events: [{at_s: 7, kind: drain, node: node-1}]}]", "after the phase's end"),
    ("phases: [{name: a, duration_s: 5, orders: {items: [flour], rate: 1},"
     " events: [{kind: add_node, node: node-6}]}]", "standby_nodes does not list"),
    ("phases: [{name: a, duration_s: 5, orders: {items: [flour], rate: 1}},"
     " {name: a, duration_s: 5, orders: {items: [flour], rate: 1}}]", "unique"),
    ("phases: [{name: a, duration_s: 5, orders: {items: [flour], rate: 1}}]\nspeed: 3",
     "speed"),
    ("phases: [{name: a, duration_s: 5, orders: {items: [flour], rate: 1}}", "not valid YAML"),
])
def test_bad_files_say_what_is_wrong(tmp_path: Path, text: str, message: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ScenarioError, match=r"s\.yaml") as info:
        load_scenario(path)
    assert message in str(info.value)


def test_check_names_unknown_items_and_nodes(tmp_path: Path) -> None:
    s = load_scenario(_write(tmp_path, GOOD.replace("flour", "unobtainium")
                             .replace("node-1", "node-9")))
    with pytest.raises(ScenarioError) as info:
        s.check(load_economy().names, NODES)
    assert "unobtainium" in str(info.value) and "node-9" in str(info.value)


def test_draining_every_node_is_refused() -> None:
    s = Scenario.model_validate({"phases": [{
        "name": "a", "duration_s": 5, "orders": {"items": ["flour"], "rate": 1},
        "events": [{"kind": "drain", "node": "node-1"}]}], "name": "x"})
    with pytest.raises(ScenarioError, match="drains every node"):
        s.check(["flour"], ["node-1"])


def test_unknown_preset_or_missing_file() -> None:
    with pytest.raises(ScenarioError, match="neither a preset"):
        resolve_scenario("no-such-scenario-here")


def test_store_round_trip_and_resume_guard(tmp_path: Path) -> None:
    s = resolve_scenario("shift")
    write_scenario(tmp_path, s)
    write_scenario(tmp_path, s)      # the same one again: fine (a resume)
    assert read_scenario(tmp_path) == s
    with pytest.raises(ScenarioError, match="different scenario"):
        write_scenario(tmp_path, s.scaled(0.5))
    assert done_schedulers(tmp_path) == []
    write_scenario_tables(tmp_path, "netmarks", {"orders": pd.DataFrame({"t_s": [0.5]})})
    write_scenario_tables(tmp_path, "firmament", {"orders": pd.DataFrame({"t_s": [1.5]})})
    assert done_schedulers(tmp_path) == ["firmament", "netmarks"]
    tables = read_scenario_tables(tmp_path)
    assert sorted(tables["orders"]["t_s"]) == [0.5, 1.5]
    assert tables["migrations"].empty
    with pytest.raises(ValueError, match="unknown scenario table"):
        write_scenario_tables(tmp_path, "x", {"bogus": pd.DataFrame()})
