"""Traffic matrices (files, economy, PromQL results) and canonical layouts."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from schedulers import (
    Node,
    TrafficError,
    TrafficMatrix,
    canonical_layout,
    example_traffic_path,
    inter_node_traffic,
    uniform_nodes,
)
from schedulers.promtraffic import _combine, queries
from schedulers.traffic import traffic_from_economy
from settlers.economy import load_economy


def test_shipped_example_is_derived_from_the_default_economy() -> None:
    shipped = TrafficMatrix.from_file(example_traffic_path())
    derived = traffic_from_economy(load_economy())
    assert shipped.to_dataframe().equals(derived.to_dataframe())
    # bread -> flour carries one unit per order of every item that needs bread.
    assert shipped.get("bread", "flour") > 0 and shipped.get("flour", "bread") == 0
    assert shipped.between("flour", "bread") == shipped.get("bread", "flour")


def test_economy_traffic_hand_computed() -> None:
    econ = load_economy().subset(["flour"])  # flour <- grain
    t = traffic_from_economy(econ, sizes=[100], orders_per_s=2.0)
    # One order of flour: flour calls grain once: 200 + 200 + 1 * 100 bytes, twice a second.
    assert t.get("flour", "grain") == pytest.approx(2 * 500)


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".yaml"])
def test_file_formats_round_trip(tmp_path: Path, suffix: str) -> None:
    df = pd.DataFrame({"source": ["a", "b"], "destination": ["b", "c"],
                       "bytes": [600.0, 60.0], "window_s": [60, 60]})
    path = tmp_path / f"t{suffix}"
    if suffix == ".csv":
        df.to_csv(path, index=False)
    elif suffix == ".parquet":
        df.to_parquet(path)
    else:
        path.write_text("window_s: 60\nedges:\n- {source: a, destination: b, bytes: 600}\n"
                        "- {source: b, destination: c, bytes: 60}\n")
    t = TrafficMatrix.from_file(path)
    assert t.get("a", "b") == 10.0 and t.get("b", "c") == 1.0
    assert t.neighbours("b") == {"a": 10.0, "c": 1.0}


def test_bad_traffic_files_say_what_is_wrong(tmp_path: Path) -> None:
    with pytest.raises(TrafficError, match="no such traffic file"):
        TrafficMatrix.from_file(tmp_path / "missing.csv")
    bad = tmp_path / "bad.csv"
    bad.write_text("from,to,bytes\na,b,1\n")
    with pytest.raises(TrafficError, match="missing column"):
        TrafficMatrix.from_file(bad)
    bad.write_text("source,destination,bytes\na,b,lots\n")
    with pytest.raises(TrafficError, match="not a number"):
        TrafficMatrix.from_file(bad)
    odd = tmp_path / "t.txt"
    odd.write_text("x")
    with pytest.raises(TrafficError, match="unknown traffic file type"):
        TrafficMatrix.from_file(odd)
    with pytest.raises(TrafficError, match=">= 0"):
        TrafficMatrix({("a", "b"): -1.0})


def test_promql_and_reporter_dedup() -> None:
    assert queries("l7", 60)[0] == ("sum by (source_workload, destination_workload, reporter) "
                                    "(increase(istio_request_bytes_sum[60000ms]))")
    assert "istio_tcp_sent_bytes_total" in queries("l4", 60)[1]

    def series(src: str, dst: str, reporter: str, value: str) -> dict[str, object]:
        return {"metric": {"source_workload": src, "destination_workload": dst,
                           "reporter": reporter}, "value": [0, value]}

    requests = [series("a", "b", "source", "600"), series("a", "b", "destination", "600"),
                series("unknown", "b", "destination", "999"), series("b", "c", "source", "NaN")]
    responses = [series("a", "b", "source", "1200"), series("a", "b", "destination", "1200")]
    t = _combine([requests, responses], 60.0, "test")
    # F(a,b) = (600 + 1200) / 60 s; both reporters saw the same call: counted once.
    assert t.get("a", "b") == 30.0 and len(t) == 1


def test_canonical_layout_ignores_identical_node_names() -> None:
    nodes = uniform_nodes(3)
    one = {"a-0": "node-1", "b-0": "node-1", "c-0": "node-2"}
    two = {"a-0": "node-3", "b-0": "node-3", "c-0": "node-1"}
    other = {"a-0": "node-1", "b-0": "node-2", "c-0": "node-2"}
    assert canonical_layout(one, nodes) == canonical_layout(two, nodes) == "[][a,b][c]"
    assert canonical_layout(other, nodes) != canonical_layout(one, nodes)
    # Replicas of one workload are interchangeable too.
    assert canonical_layout({"a-0": "node-1", "a-1": "node-2"}, nodes) == canonical_layout(
        {"a-1": "node-1", "a-0": "node-2"}, nodes)


def test_canonical_layout_keeps_different_nodes_apart() -> None:
    nodes = [Node("small", 1000, 2**30), Node("big-1", 4000, 2**30), Node("big-2", 4000, 2**30)]
    x = canonical_layout({"a-0": "small", "b-0": "big-1"}, nodes)
    y = canonical_layout({"a-0": "big-2", "b-0": "small"}, nodes)
    assert x != y
    assert x == canonical_layout({"a-0": "small", "b-0": "big-2"}, nodes)
    with pytest.raises(ValueError, match="unknown node"):
        canonical_layout({"a-0": "nowhere"}, nodes)


def test_inter_node_traffic_with_replicas() -> None:
    t = TrafficMatrix({("a", "b"): 100.0})
    # b has 2 replicas, one with a: half of a<->b stays local.
    crossing, total = inter_node_traffic({"a-0": "n1", "b-0": "n1", "b-1": "n2"}, t)
    assert (crossing, total) == (50.0, 100.0)
