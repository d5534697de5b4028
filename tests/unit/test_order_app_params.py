"""Parsing user input and writing order tables (no services needed)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from order_app.output import read_table, write_table
from order_app.params import (
    MAX_SIZE,
    UsageError,
    check_count,
    check_protocol,
    check_target,
    parse_duration,
    parse_size,
    parse_sizes,
    resolve_targets,
)
from order_app.sweep import COLUMNS


def test_paper_sizes_parse() -> None:
    assert parse_sizes("16,256,4096,65536,1048576") == [16, 256, 4096, 65536, 1048576]


@pytest.mark.parametrize(("text", "size"), [
    ("16", 16), (" 4096 ", 4096), ("4KiB", 4096), ("64k", 65536), ("1MiB", 1048576),
    ("1M", 1048576), ("16MiB", MAX_SIZE), ("512B", 512),
])
def test_size_units(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize(("text", "message"), [
    ("", "empty entry"),
    ("16,,256", "empty entry"),
    ("16,abc", "'abc' is not a number of bytes"),
    ("16,-4", "'-4' is not a number of bytes"),
    ("0", "at least 1 byte"),
    ("16MiB,17MiB", "above the 16 MiB limit"),
    ("16777217", "above the 16 MiB limit"),
    ("16,16", "same size twice"),
])
def test_bad_size_lists_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        parse_sizes(text)


@given(st.lists(st.integers(1, MAX_SIZE), min_size=1, max_size=8, unique=True))
def test_any_valid_size_list_round_trips(sizes: list[int]) -> None:
    assert parse_sizes(",".join(map(str, sizes))) == sizes


def test_protocol_and_count() -> None:
    assert check_protocol(" GRPC ") == "grpc"
    with pytest.raises(UsageError, match="unknown protocol 'quic': use one of http, grpc"):
        check_protocol("quic")
    assert check_count(3) == 3
    with pytest.raises(UsageError, match="count 0 is out of range"):
        check_count(0)


@pytest.mark.parametrize("bad", ["localhost", "http://127.0.0.1:9000", "127.0.0.1:0",
                                 "127.0.0.1:70000", ":9000", "a b:1"])
def test_bad_targets(bad: str) -> None:
    with pytest.raises(UsageError, match="target"):
        check_target(bad)


def test_resolve_targets_named_and_default() -> None:
    assert resolve_targets(["127.0.0.1:9000"], ["flour", "bread"]) == {
        "flour": "127.0.0.1:9000", "bread": "127.0.0.1:9000"}
    assert resolve_targets(["flour=127.0.0.1:9001", "bread=[::1]:9002"], []) == {
        "flour": "127.0.0.1:9001", "bread": "[::1]:9002"}
    mixed = resolve_targets(["127.0.0.1:9000", "bread=127.0.0.1:9002"], ["flour", "bread"])
    assert mixed == {"flour": "127.0.0.1:9000", "bread": "127.0.0.1:9002"}


@pytest.mark.parametrize(("specs", "items", "message"), [
    ([], ["flour"], "give a target"),
    (["127.0.0.1:9000"], [], "name the item"),
    (["flour=127.0.0.1:9001"], ["bread"], "no target for item 'bread'"),
    (["127.0.0.1:1", "127.0.0.1:2"], ["flour"], "at most one bare"),
    (["=127.0.0.1:1"], [], "empty item name"),
    (["flour=127.0.0.1:1", "flour=127.0.0.1:2"], [], "two targets"),
])
def test_resolve_targets_errors(specs: list[str], items: list[str], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        resolve_targets(specs, items)


@pytest.mark.parametrize(("text", "seconds"), [
    ("30", 30), ("30s", 30), ("1m30s", 90), ("2h", 7200), ("0.5s", 0.5), ("1m", 60)])
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["", "abc", "0s", "1x", "s"])
def test_bad_durations(bad: str) -> None:
    with pytest.raises(UsageError, match="duration"):
        parse_duration(bad)


def _orders() -> pd.DataFrame:
    rows = [
        {"item": "flour", "size": 16, "protocol": "http", "count": 1, "repeat": 0,
         "latency_ms": 1.25, "ok": True, "error": "", "payload_bytes": 16, "hops": 2,
         "pods": "flour-0,grain-0",
         "trace": '[["flour","flour-0","",16,1.0],["grain","grain-0","flour-0",16,0.1]]'},
        {"item": "flour", "size": 16, "protocol": "http", "count": 1, "repeat": 1,
         "latency_ms": 30.0, "ok": False, "error": "127.0.0.1:1: HTTP 502: grain failed",
         "payload_bytes": 0, "hops": 0, "pods": "", "trace": ""},
    ]
    return pd.DataFrame(rows, columns=COLUMNS)


@pytest.mark.parametrize("name", ["orders.csv", "orders.parquet", "sub/dir/orders.pq"])
def test_tables_round_trip(tmp_path: Path, name: str) -> None:
    frame = _orders()
    path = write_table(frame, tmp_path / name)
    back = read_table(path)
    assert list(back.columns) == COLUMNS
    pd.testing.assert_frame_equal(back, frame, check_dtype=False)
    assert back["ok"].dtype == bool
    assert back.loc[0, "error"] == "" and back.loc[1, "trace"] == ""


def test_unknown_table_format_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"must end in \.csv or \.parquet \(got \.xlsx\)"):
        write_table(_orders(), tmp_path / "orders.xlsx")


def test_count_times_size_is_capped() -> None:
    assert check_count(16, [MAX_SIZE // 16]) == 16
    with pytest.raises(UsageError, match="count 2 x size 16777216 = 33554432 bytes is above"):
        check_count(2, [16, MAX_SIZE])
