"""The results directory: atomic parts, done markers, refusing to overwrite."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from harness.store import ResultsStore, StoreError, chunk_name


def _frame(n: int) -> pd.DataFrame:
    return pd.DataFrame({"x": range(n)})


def test_create_open_and_manifest(tmp_path: Path) -> None:
    store = ResultsStore.create(tmp_path / "run", {"config": {"a": 1}})
    store.update_manifest(finished_at="now")
    again = ResultsStore.open(tmp_path / "run")
    assert again.manifest() == {"config": {"a": 1}, "finished_at": "now"}


def test_create_refuses_a_non_empty_directory(tmp_path: Path) -> None:
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "file").write_text("x")
    with pytest.raises(StoreError, match="--resume"):
        ResultsStore.create(tmp_path / "old", {})


def test_open_refuses_what_is_not_a_results_directory(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="not a results directory"):
        ResultsStore.open(tmp_path)


def test_chunks_are_done_only_when_the_sample_part_exists(tmp_path: Path) -> None:
    store = ResultsStore.create(tmp_path / "run", {})
    name = chunk_name("L1", "http")
    assert not store.chunk_done(name)
    store.write_chunk(name, _frame(3), _frame(2))
    assert store.chunk_done(name) and store.done_chunks() == {name}
    # An orphaned telemetry part (killed between the two writes) is ignored.
    (tmp_path / "run" / "telemetry" / "L2-http.parquet").write_bytes(
        (tmp_path / "run" / "telemetry" / f"{name}.parquet").read_bytes()
    )
    assert len(store.samples()) == 3 and len(store.telemetry()) == 2
    store.consolidate_telemetry()
    assert len(store.read_table("telemetry")) == 2
    assert not list((tmp_path / "run").rglob("*.tmp"))


def test_missing_table_says_what_is_missing(tmp_path: Path) -> None:
    store = ResultsStore.create(tmp_path / "run", {})
    with pytest.raises(StoreError, match=r"placements\.parquet is missing"):
        store.read_table("placements")
