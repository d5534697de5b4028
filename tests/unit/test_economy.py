"""The economy model: the shipped default, validation messages, derived quantities."""

from __future__ import annotations

from pathlib import Path

import pytest

from settlers.economy import Economy, EconomyError, Item, load_economy


def _load(tmp_path: Path, text: str) -> Economy:
    path = tmp_path / "economy.yaml"
    path.write_text(text)
    return load_economy(path)


def test_default_economy_is_the_19_item_settlers_table() -> None:
    econ = load_economy()
    assert econ.name == "settlers2"
    assert len(econ) == 19
    assert sorted(i.name for i in econ if i.is_raw) == ["fish", "grain", "tree", "water"]
    assert dict(econ["bread"].inputs) == {"flour": 1, "water": 1}
    assert dict(econ["tools"].inputs) == {"board": 1, "iron": 1}
    assert set(econ["coal"].inputs) == {"bread", "fish", "meat"}


def test_the_work_economy_is_the_paper_graph_with_cpu_work_by_its_stated_rule() -> None:
    paper, work = load_economy(), load_economy("settlers2-work")
    assert work.names == paper.names
    assert all(dict(work[n].inputs) == dict(paper[n].inputs) for n in paper.names)
    assert all(paper[n].work_ms == 0 for n in paper.names)   # the paper's stays payload-only
    # the rule its header and docs/workload.md state: 1 ms + 2 ms per input unit
    assert {n: work[n].work_ms for n in work.names} == {
        n: 1 + 2 * sum(work[n].inputs.values()) for n in work.names}
    assert work["water"].work_ms == 1 and work["coal"].work_ms == 7


def test_items_are_in_topological_order() -> None:
    econ = load_economy()
    position = {name: n for n, name in enumerate(econ.names)}
    for consumer, src, _ in econ.edges():
        assert position[src] < position[consumer], (src, consumer)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("items:\n  bread: {inputs: {flour: 1}}\n", "item 'bread': unknown input 'flour'"),
        ("items:\n  a: {inputs: {b: 1}}\n  b: {inputs: {a: 1}}\n", "cycle among items"),
        ("items:\n  a: {inputs: {a: 1}}\n", "item 'a': consumes itself"),
        ("items:\n  w: {}\n  b: {inputs: {w: 0}}\n", "item 'b': input 'w' has quantity 0"),
        ("items:\n  w: {}\n  b: {inputs: {w: -2}}\n", "item 'b': input 'w' has quantity -2"),
        ("items:\n  w: {}\n  b: {inputs: {w: 1.5}}\n", "quantities must be positive integers"),
        ("items:\n  Bread: {}\n", "item 'Bread': the name must be a lowercase DNS label"),
        ("items:\n  bad_name: {}\n", "item 'bad_name': the name must be"),
        ("items:\n  w: {replicas: 0}\n", "item 'w': replicas must be an integer >= 1"),
        ("items:\n  w: {work_ms: -1}\n", "item 'w': work_ms must be a number >= 0"),
        ("items:\n  w: {colour: red}\n", "item 'w': unknown key(s) ['colour']"),
        ("items:\n  w: {colour: red, 1: x}\n",
         "item 'w': unknown key(s) [1, 'colour']; allowed: ['description', 'inputs', 'name', "
         "'replicas', 'resources', 'work_ms']"),
        ("items:\n  w: {resources: {gpu: 1}}\n",
         "item 'w': resources may only set ['cpu', 'memory'], not ['gpu']"),
        ("defaults: {cpu: 1}\nitems:\n  w: {}\n",
         "'defaults' may only set ['replicas', 'resources', 'work_ms'], not ['cpu']"),
        ("items:\n  w: {resources: {cpu: lots}}\n", "item 'w': invalid CPU quantity 'lots'"),
        ("items: {}\n", "the economy has no items"),
        ("stuff: 1\n", "unknown top-level key(s) ['stuff']; "
         "allowed: ['defaults', 'description', 'items', 'name']"),
        ("- a\n- b\n", "an economy must be a mapping"),
        ("items: [\n", "not valid YAML"),
    ],
)
def test_invalid_economies_name_the_item_and_problem(tmp_path: Path, text: str,
                                                     expected: str) -> None:
    with pytest.raises(EconomyError) as err:
        _load(tmp_path, text)
    assert expected in str(err.value)
    assert str(tmp_path / "economy.yaml") in str(err.value)  # says which file


def test_cycle_message_shows_the_cycle(tmp_path: Path) -> None:
    text = "items:\n  w: {}\n  a: {inputs: {c: 1, w: 1}}\n  b: {inputs: {a: 1}}\n" \
           "  c: {inputs: {b: 1}}\n"
    with pytest.raises(EconomyError, match=r"cycle among items: (\w) -> (\w) -> (\w) -> \1"):
        _load(tmp_path, text)


def test_duplicate_item_in_mapping_form_is_refused(tmp_path: Path) -> None:
    # Plain PyYAML would keep only the second 'water' and say nothing.
    text = "items:\n  water: {}\n  grain: {}\n  water: {inputs: {grain: 1}}\n"
    with pytest.raises(EconomyError, match=r"item 'water': defined twice \(lines 2 and 4\)"):
        _load(tmp_path, text)


def test_duplicate_item_in_list_form_is_refused(tmp_path: Path) -> None:
    text = "items:\n  - name: water\n  - name: grain\n  - name: water\n"
    with pytest.raises(EconomyError, match="item 'water': duplicate item"):
        _load(tmp_path, text)


def test_duplicate_input_key_is_refused(tmp_path: Path) -> None:
    text = "items:\n  water: {}\n  flour: {inputs: {water: 1, water: 2}}\n"
    with pytest.raises(EconomyError, match="key 'water': defined twice"):
        _load(tmp_path, text)


def test_list_form_and_input_list_shorthand(tmp_path: Path) -> None:
    econ = _load(tmp_path, "name: tiny\nitems:\n  - name: bread\n    inputs: [flour, water]\n"
                           "  - name: flour\n    inputs: {grain: 2}\n  - {name: grain}\n"
                           "  - {name: water}\n")
    assert econ.name == "tiny"
    assert dict(econ["bread"].inputs) == {"flour": 1, "water": 1}
    assert econ.names.index("grain") < econ.names.index("flour") < econ.names.index("bread")


def test_defaults_apply_and_items_override(tmp_path: Path) -> None:
    econ = _load(tmp_path, "defaults: {work_ms: 2, replicas: 3, resources: {cpu: 250m}}\n"
                           "items:\n  a: {}\n  b: {inputs: {a: 1}, replicas: 1, "
                           "resources: {memory: 1Gi}}\n")
    assert econ["a"].work_ms == 2.0 and econ["a"].replicas == 3
    assert econ["b"].replicas == 1
    assert econ["b"].resources.cpu_m == 250 and econ["b"].resources.memory == 2**30


def test_missing_file_and_unknown_shipped_name() -> None:
    with pytest.raises(EconomyError, match="cannot read economy file"):
        load_economy("/nonexistent/economy.yaml")
    with pytest.raises(EconomyError, match="no such economy file or shipped economy"):
        load_economy("no-such-economy")


def test_units_needed_multiplies_quantities_along_the_chain() -> None:
    econ = Economy.from_mapping({"items": {
        "grain": {}, "water": {},
        "flour": {"inputs": {"grain": 3}},
        "bread": {"inputs": {"flour": 2, "water": 1}},
    }})
    assert econ.units_needed("bread", 5) == {"bread": 5, "flour": 10, "grain": 30, "water": 5}
    assert econ.units_needed("grain") == {"grain": 1}


def test_units_needed_sums_shared_supply_chains() -> None:
    econ = load_economy()
    units = econ.units_needed("sword")  # sword <- coal, iron; iron <- coal, ironore
    assert units["coal"] == 2
    assert units["bread"] == 3  # coal twice, ironore once
    assert units["sword"] == 1


def test_closure_and_subset() -> None:
    econ = load_economy()
    assert econ.closure("bread") == [n for n in econ.names if n in {"bread", "flour", "grain",
                                                                     "water"}]
    sub = econ.subset(["bread", "boat"])
    assert set(sub.names) == {"bread", "flour", "grain", "water", "boat", "board", "log", "tree"}


def test_unknown_item_lookup_lists_known_items() -> None:
    with pytest.raises(KeyError, match="unknown item 'cake'; known items: water"):
        load_economy()["cake"]


def test_yaml_round_trip(tmp_path: Path) -> None:
    econ = load_economy()
    again = _load(tmp_path, econ.to_yaml())
    assert again.names == econ.names
    assert [dict(i.inputs) for i in again] == [dict(i.inputs) for i in econ]


def test_economy_object_validates_its_graph() -> None:
    with pytest.raises(EconomyError, match="unknown input 'x'"):
        Economy(name="e", items={"a": Item("a", inputs={"x": 1})})
