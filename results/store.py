"""The results directory: append-only, resumable, readable by the analysis alone.

Layout of a results directory::

    manifest.json          config, backend, versions, machine, seeds, stage times,
                           measurement plan (results.manifest.Manifest)
    traffic.parquet        the traffic matrix NetMARKS scheduled with (from the warm-up)
    placements.parquet     every pod of every redeployment: scheduler, deployment, pod, node
    layouts.parquet        distinct layouts: id, canonical form, a representative placement
    units.parquet          the estimator's units: which layout each unit stands for
    samples/<chunk>.parquet    raw orders of one measured (layout, protocol) chunk
    telemetry/<chunk>.parquet  mesh byte-counter deltas over the same chunk
    load/<chunk>.parquet       runs with --load: the background load's summary (one row)
    telemetry.parquet      all telemetry parts, consolidated at the end of a run

With ``--load`` a chunk is a (layout, protocol, load) triple, named
``<layout>-<protocol>-load<rps>``; runs without it keep ``<layout>-<protocol>``.

A chunk is done if and only if its sample part exists. Parts are written to a
temporary name and renamed, so a killed run leaves either a whole part or none,
and ``--resume`` redoes exactly the missing chunks: nothing lost, nothing twice.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import ValidationError

from results.manifest import Manifest

# Never pd.read_parquet: its threads can abort `harness run` at exit (settlers.tables).
from settlers.tables import read_parquet

__all__ = ["ResultsStore", "StoreError", "chunk_name"]

MANIFEST = "manifest.json"


class StoreError(RuntimeError):
    """A results directory is missing, incomplete or not a results directory."""


def chunk_name(layout_id: str, protocol: str, load: float | None = None) -> str:
    """The part files' name; ``load`` (orders per second) only for runs with --load."""
    if load is None:
        return f"{layout_id}-{protocol}"
    # Exact for the config's rates (rounded to 3 decimals): 20 -> load20, 0.5 -> load0.5.
    return f"{layout_id}-{protocol}-load{f'{load:.3f}'.rstrip('0').rstrip('.')}"


class ResultsStore:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    # -- creation / opening -------------------------------------------------

    @classmethod
    def create(cls, root: Path, manifest: Manifest) -> ResultsStore:
        root = Path(root)
        if root.exists() and any(root.iterdir()):
            raise StoreError(
                f"{root} exists and is not empty; pick another --out or continue it "
                f"with --resume {root}"
            )
        (root / "samples").mkdir(parents=True, exist_ok=True)
        (root / "telemetry").mkdir(exist_ok=True)
        store = cls(root)
        store.write_manifest(manifest)
        return store

    @classmethod
    def open(cls, root: Path) -> ResultsStore:
        root = Path(root)
        if not (root / MANIFEST).is_file():
            raise StoreError(f"{root} is not a results directory (no {MANIFEST})")
        (root / "samples").mkdir(exist_ok=True)
        (root / "telemetry").mkdir(exist_ok=True)
        return cls(root)

    # -- manifest -----------------------------------------------------------

    def manifest(self) -> Manifest:
        path = self.root / MANIFEST
        try:
            return Manifest.read(json.loads(path.read_text()))
        except (ValueError, ValidationError) as exc:  # JSONDecodeError is a ValueError
            raise StoreError(f"{path} is not a manifest this version reads: {exc}") from None

    def write_manifest(self, manifest: Manifest) -> None:
        _atomic_write_bytes(self.root / MANIFEST, manifest.to_json().encode())

    def update_manifest(self, **fields: Any) -> None:
        """Set manifest fields (by their names in :class:`Manifest`), validated."""
        self.write_manifest(self.manifest().updated(**fields))

    # -- whole tables -------------------------------------------------------

    def has(self, name: str) -> bool:
        return (self.root / f"{name}.parquet").is_file()

    def write_table(self, name: str, frame: pd.DataFrame) -> None:
        _atomic_write_parquet(self.root / f"{name}.parquet", frame)

    def read_table(self, name: str) -> pd.DataFrame:
        path = self.root / f"{name}.parquet"
        if not path.is_file():
            raise StoreError(f"{self.root}: {name}.parquet is missing (run did not get that far)")
        return read_parquet(path)

    # -- chunk parts --------------------------------------------------------

    def chunk_done(self, chunk: str) -> bool:
        return (self.root / "samples" / f"{chunk}.parquet").is_file()

    def done_chunks(self) -> set[str]:
        return {p.stem for p in (self.root / "samples").glob("*.parquet")}

    def write_chunk(self, chunk: str, samples: pd.DataFrame, telemetry: pd.DataFrame,
                    load: pd.DataFrame | None = None) -> None:
        # Telemetry (and load) first: the sample part is the "done" marker, so a kill
        # between the writes redoes the chunk and overwrites the orphaned parts.
        _atomic_write_parquet(self.root / "telemetry" / f"{chunk}.parquet", telemetry)
        if load is not None:
            (self.root / "load").mkdir(exist_ok=True)
            _atomic_write_parquet(self.root / "load" / f"{chunk}.parquet", load)
        _atomic_write_parquet(self.root / "samples" / f"{chunk}.parquet", samples)

    def samples(self) -> pd.DataFrame:
        return _concat(self._parts("samples"))

    def telemetry(self) -> pd.DataFrame:
        # Only parts whose chunk is done count; see write_chunk.
        done = self.done_chunks()
        return _concat(p for p in self._parts("telemetry") if p.stem in done)

    def background_load(self) -> pd.DataFrame:
        """The background load's summaries of the done chunks (empty without --load)."""
        done = self.done_chunks()
        return _concat(p for p in self._parts("load") if p.stem in done)

    def consolidate_telemetry(self) -> None:
        self.write_table("telemetry", self.telemetry())

    def _parts(self, folder: str) -> Iterator[Path]:
        return iter(sorted((self.root / folder).glob("*.parquet")))


def _concat(paths: Iterator[Path]) -> pd.DataFrame:
    frames = [read_parquet(p) for p in paths]
    frames = [f for f in frames if not f.empty]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _atomic_write_parquet(path: Path, frame: pd.DataFrame) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        frame.to_parquet(tmp, index=False)
        _fsync_file(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _fsync_file(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
