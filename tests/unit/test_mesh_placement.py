"""Placement helpers: validation messages, spread, random, placement files."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.backends.emulated.placement import (
    load_placement,
    node_names,
    random_placement,
    spread_placement,
    validate_placement,
)

PODS = ["grain-0", "flour-0", "bread-0"]
NODES = ["node-1", "node-2"]


def test_node_names() -> None:
    assert node_names(3) == ["node-1", "node-2", "node-3"]
    with pytest.raises(ValueError, match="at least one node"):
        node_names(0)


def test_spread_uses_every_node_in_turn() -> None:
    assert spread_placement(PODS, NODES) == {"grain-0": "node-1", "flour-0": "node-2",
                                             "bread-0": "node-1"}


def test_random_is_seeded_and_valid() -> None:
    a = random_placement(PODS, NODES, seed=4)
    assert a == random_placement(PODS, NODES, seed=4)
    assert set(a) == set(PODS) and set(a.values()) <= set(NODES)


def test_validate_names_the_problem() -> None:
    with pytest.raises(ValueError, match=r"unknown pod.*mill-0"):
        validate_placement({"mill-0": "node-1"}, PODS, NODES, complete=False)
    with pytest.raises(ValueError, match=r"unknown node.*node-9"):
        validate_placement({"grain-0": "node-9"}, PODS, NODES, complete=False)
    with pytest.raises(ValueError, match="unplaced: flour-0, bread-0"):
        validate_placement({"grain-0": "node-1"}, PODS, NODES, complete=True)
    assert validate_placement({"grain-0": "node-1"}, PODS, NODES, complete=False) == {
        "grain-0": "node-1"}


def test_placement_files(tmp_path: Path) -> None:
    yml = tmp_path / "p.yaml"
    yml.write_text("grain-0: node-1\nflour-0: node-2\n")
    assert load_placement(yml) == {"grain-0": "node-1", "flour-0": "node-2"}
    js = tmp_path / "p.json"
    js.write_text('{"placement": {"grain-0": "node-2"}}')
    assert load_placement(js) == {"grain-0": "node-2"}
    bad = tmp_path / "bad.yaml"
    bad.write_text("[1, 2]")
    with pytest.raises(ValueError, match="maps pod name -> node name"):
        load_placement(bad)
    with pytest.raises(ValueError, match="cannot read"):
        load_placement(tmp_path / "missing.yaml")
