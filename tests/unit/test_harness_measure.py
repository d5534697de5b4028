"""Inter-node counting from traces and telemetry deltas."""

from __future__ import annotations

import math

import pandas as pd

from harness.measure import hop_counts, telemetry_delta
from settlers.trace import Hop, encode_trace

PLACEMENT = {"bread-0": "node-1", "flour-0": "node-1", "water-0": "node-2", "grain-0": "node-2"}


def test_hop_counts_follow_the_placement() -> None:
    trace = encode_trace([
        Hop("bread", "bread-0", "", 100),
        Hop("flour", "flour-0", "bread-0", 40),
        Hop("grain", "grain-0", "flour-0", 30),
        Hop("water", "water-0", "bread-0", 20),
    ])
    counts = hop_counts(trace, PLACEMENT)
    assert counts == {"transfers": 3.0, "inter_node_transfers": 2.0, "transfer_bytes": 90.0,
                      "inter_node_bytes": 50.0}


def test_hop_counts_are_nan_when_unknown() -> None:
    assert math.isnan(hop_counts("", PLACEMENT)["transfers"])
    unknown = encode_trace([Hop("x", "x-0", "bread-0", 1)])
    assert math.isnan(hop_counts(unknown, PLACEMENT)["inter_node_transfers"])


def _snap(rows: list[tuple[str, str, str, str, int]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["source_workload", "destination_workload", "src_node",
                                       "dst_node", "bytes"])


def test_telemetry_delta_differences_cumulative_counters() -> None:
    before = _snap([("bread", "flour", "node-1", "node-2", 100)])
    after = _snap([("bread", "flour", "node-1", "node-2", 150),
                   ("bread", "water", "node-1", "node-1", 30)])
    delta = telemetry_delta(before, after)
    assert sorted(delta["bytes"]) == [30, 50]
    assert telemetry_delta(after, after).empty
    assert list(telemetry_delta(_snap([]), after)["bytes"]) == [150, 30]
