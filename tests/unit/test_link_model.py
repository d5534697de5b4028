"""The link model's arithmetic: latency, serialisation, shared up- and downlinks."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.backends.emulated.links import LinkModel
from results.links import LINK_PRESETS, LinkProfile, resolve_link

MB = 1_000_000


def test_lone_chunk_takes_latency_plus_serialisation() -> None:
    model = LinkModel(LinkProfile(latency_ms=2.0, bandwidth_mbps=8.0))  # 1 byte per microsecond
    assert model.schedule("node-1", "node-2", 1000, now=10.0) == pytest.approx(10.0 + 0.001 + 0.002)


def test_stream_on_one_link_runs_at_the_bandwidth() -> None:
    model = LinkModel(LinkProfile(latency_ms=5.0, bandwidth_mbps=80.0))  # 10 MB/s
    last = 0.0
    for _ in range(100):  # 100 x 100 kB sent at once
        last = model.schedule("a", "b", 100_000, now=0.0)
    assert last == pytest.approx(1.0 + 0.005)


def test_flows_sharing_an_uplink_share_its_bandwidth() -> None:
    model = LinkModel(LinkProfile(latency_ms=0.0, bandwidth_mbps=8.0))
    to_b = model.schedule("a", "b", MB, now=0.0)
    to_c = model.schedule("a", "c", MB, now=0.0)
    assert (to_b, to_c) == (pytest.approx(1.0), pytest.approx(2.0))


def test_flows_sharing_a_downlink_share_its_bandwidth() -> None:
    model = LinkModel(LinkProfile(latency_ms=1.0, bandwidth_mbps=8.0))
    from_a = model.schedule("a", "c", MB, now=0.0)
    from_b = model.schedule("b", "c", MB, now=0.0)
    assert from_a == pytest.approx(1.001)
    assert from_b == pytest.approx(2.001)


def test_disjoint_links_do_not_interfere() -> None:
    model = LinkModel(LinkProfile(latency_ms=1.0, bandwidth_mbps=8.0))
    assert model.schedule("a", "b", MB, now=0.0) == pytest.approx(1.001)
    assert model.schedule("c", "d", MB, now=0.0) == pytest.approx(1.001)


def test_idle_link_does_not_bank_credit() -> None:
    model = LinkModel(LinkProfile(latency_ms=0.0, bandwidth_mbps=8.0))
    model.schedule("a", "b", MB, now=0.0)
    assert model.schedule("a", "b", MB, now=5.0) == pytest.approx(6.0)


def test_unlimited_bandwidth_is_pure_latency() -> None:
    model = LinkModel(LinkProfile(latency_ms=3.0, bandwidth_mbps=math.inf))
    assert model.schedule("a", "b", 10 * MB, now=1.0) == pytest.approx(1.003)


@given(st.lists(st.tuples(st.sampled_from("abc"), st.sampled_from("abc"),
                          st.integers(1, 10**6), st.floats(0, 0.01)), min_size=1, max_size=50))
def test_chunks_on_one_path_never_overtake(chunks: list[tuple[str, str, int, float]]) -> None:
    model = LinkModel(LinkProfile(latency_ms=1.0, bandwidth_mbps=100.0))
    now = 0.0
    last: dict[tuple[str, str], float] = {}
    for src, dst, n, gap in chunks:
        now += gap
        when = model.schedule(src, dst, n, now)
        assert when >= now + 0.001 + n * 8 / 100e6 - 1e-12
        assert when >= last.get((src, dst), 0.0)
        last[(src, dst)] = when


def test_presets_and_overrides() -> None:
    assert set(LINK_PRESETS) == {"lan", "edge", "wan"}
    assert resolve_link("wan") == LINK_PRESETS["wan"]
    assert resolve_link("edge", latency_ms=7).latency_ms == 7
    assert resolve_link("edge", latency_ms=7).bandwidth_mbps == LINK_PRESETS["edge"].bandwidth_mbps
    custom = LinkProfile(1, 2)
    assert resolve_link(custom, bandwidth_mbps=5) == LinkProfile(1, 5)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"latency_ms": -1, "bandwidth_mbps": 1}, "latency"),
    ({"latency_ms": math.nan, "bandwidth_mbps": 1}, "latency"),
    ({"latency_ms": 1, "bandwidth_mbps": 0}, "bandwidth"),
])
def test_bad_profiles_are_refused_clearly(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        LinkProfile(**kwargs)


def test_unknown_preset_lists_the_known_ones() -> None:
    with pytest.raises(ValueError, match="lan, edge, wan"):
        resolve_link("moon")
