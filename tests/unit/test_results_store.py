"""The results directory: atomic parts, done markers, refusing to overwrite; the typed
manifest, and manifests of the earlier format."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from results.config import build_config
from results.links import LINK_PRESETS, LinkProfile
from results.manifest import BackendDescription, Manifest, new_manifest
from results.store import ResultsStore, StoreError, chunk_name

BACKEND = BackendDescription(name="local", places="the models", measures="the cluster")


def _manifest() -> Manifest:
    return new_manifest(build_config(overrides={"nodes": 3}), BACKEND)


def _frame(n: int) -> pd.DataFrame:
    return pd.DataFrame({"x": range(n)})


def test_create_open_and_manifest(tmp_path: Path) -> None:
    manifest = _manifest()
    store = ResultsStore.create(tmp_path / "run", manifest)
    store.update_manifest(finished_at="now")
    again = ResultsStore.open(tmp_path / "run").manifest()
    assert again == manifest.updated(finished_at="now")
    assert again.config.nodes == 3 and again.backend == BACKEND
    assert again.link_profile == LINK_PRESETS["edge"]
    assert json.loads((tmp_path / "run" / "manifest.json").read_text())["format"] == 2


def test_a_stored_config_is_read_for_its_shape_only(tmp_path: Path) -> None:
    # The economy file is gone and the policy unknown: the record still opens.
    data = json.loads(_manifest().to_json())
    data["config"].update(economy=str(tmp_path / "moved.yaml"), schedulers=["kube_default",
                                                                              "mine"])
    read = Manifest.read(data)
    assert read.config.schedulers == ["kube_default", "mine"]
    with pytest.raises(StoreError, match="not a manifest"):
        (tmp_path / "bad").mkdir()
        (tmp_path / "bad" / "manifest.json").write_text('{"format": 3}')
        ResultsStore.open(tmp_path / "bad").manifest()


def test_a_format_1_manifest_is_read_with_its_backend_and_link_profile(tmp_path: Path) -> None:
    # What `harness run` wrote before the results package (abridged from a kwok run).
    data = json.loads(_manifest().to_json())
    for key in ("backend", "producers", "plan"):
        del data[key]
    data["format"] = 1
    data["config"]["backend"] = "kwok"
    data["link_profile"] = "(LinkProfile(latency_ms=2.5, bandwidth_mbps=300.0))"
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "manifest.json").write_text(json.dumps(data))
    store = ResultsStore.open(tmp_path / "old")
    old = store.manifest()
    assert old.format == 2 and old.backend.name == "kwok"
    assert old.backend.places.startswith("the real kube-scheduler")
    assert old.link_profile == LinkProfile(2.5, 300.0)   # as stored, whatever edge is now
    assert old.plan is None and old.producers is None
    store.update_manifest(finished_at="later")  # rewritten in this format
    assert store.manifest().finished_at == "later"


def test_create_refuses_a_non_empty_directory(tmp_path: Path) -> None:
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "file").write_text("x")
    with pytest.raises(StoreError, match="--resume"):
        ResultsStore.create(tmp_path / "old", _manifest())


def test_open_refuses_what_is_not_a_results_directory(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="not a results directory"):
        ResultsStore.open(tmp_path)


def test_chunks_are_done_only_when_the_sample_part_exists(tmp_path: Path) -> None:
    store = ResultsStore.create(tmp_path / "run", _manifest())
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
    store = ResultsStore.create(tmp_path / "run", _manifest())
    with pytest.raises(StoreError, match=r"placements\.parquet is missing"):
        store.read_table("placements")
