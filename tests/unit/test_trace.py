"""The trace carried back with every order: encoding and inter-node hop counting."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from settlers.trace import ORDER_CALLER, Hop, decode_trace, encode_trace, inter_node_hops

BREAD = [
    Hop("bread", "bread-0", ORDER_CALLER, 32, 4.5),
    Hop("flour", "flour-0", "bread-0", 32, 2.25),
    Hop("grain", "grain-0", "flour-0", 32, 0.1),
    Hop("water", "water-0", "bread-0", 32, 0.1),
]

_names = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=20)
_hops = st.builds(Hop, _names, _names, _names, st.integers(0, 2**40),
                  st.floats(0, 1e6, allow_nan=False).map(lambda f: round(f, 3)))


def test_encode_is_compact_json_of_five_element_lists() -> None:
    text = encode_trace(BREAD[:2])
    assert text == '[["bread","bread-0","",32,4.5],["flour","flour-0","bread-0",32,2.25]]'
    assert json.loads(text)[1] == ["flour", "flour-0", "bread-0", 32, 2.25]


def test_round_trip_of_a_chain() -> None:
    assert decode_trace(encode_trace(BREAD)) == BREAD
    assert decode_trace(encode_trace(BREAD).encode()) == BREAD


@given(st.lists(_hops, max_size=30))
def test_round_trip_property(hops: list[Hop]) -> None:
    assert decode_trace(encode_trace(hops)) == hops


def test_header_safe_ascii() -> None:
    # The trace travels in an HTTP header: non-ASCII names must be escaped.
    text = encode_trace([Hop("brot", "bäckerei-0", "", 1)])
    assert text.isascii()
    assert decode_trace(text)[0].pod == "bäckerei-0"


def test_decode_accepts_dict_hops() -> None:
    hop = decode_trace('[{"item": "a", "pod": "a-0", "caller": "", "bytes": 3}]')[0]
    assert hop == Hop("a", "a-0", "", 3, 0.0)


@pytest.mark.parametrize("bad", ['{"item": 1}', "not json", '[["a", "b"]]'])
def test_decode_rejects_malformed(bad: str) -> None:
    with pytest.raises((ValueError, TypeError)):
        decode_trace(bad)


def test_inter_node_hops_counts_caller_and_pod_on_different_nodes() -> None:
    placement = {"bread-0": "node-1", "flour-0": "node-2", "grain-0": "node-2",
                 "water-0": "node-1"}
    crossing = inter_node_hops(BREAD, placement)
    assert [h.item for h in crossing] == ["flour"]  # bread->flour crosses; others local


def test_inter_node_hops_all_colocated_is_empty() -> None:
    placement = dict.fromkeys(["bread-0", "flour-0", "grain-0", "water-0"], "node-1")
    assert inter_node_hops(BREAD, placement) == []


def test_order_hop_never_counts_even_if_the_entry_pod_is_far() -> None:
    placement = {"bread-0": "node-3", "flour-0": "node-3", "grain-0": "node-3",
                 "water-0": "node-3"}
    assert inter_node_hops(BREAD[:1], placement) == []


def test_inter_node_hops_unknown_pod_raises() -> None:
    with pytest.raises(KeyError):
        inter_node_hops(BREAD, {"bread-0": "node-1"})
