"""Writing order tables: CSV or Parquet, chosen by the file's extension."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from order_app.params import UsageError
from settlers.tables import read_parquet

__all__ = ["TABLE_FORMATS", "check_table_path", "read_table", "write_table"]

TABLE_FORMATS = {".csv": "CSV", ".parquet": "Parquet", ".pq": "Parquet"}


def check_table_path(path: Path) -> Path:
    """Refuse an unknown extension before any order is sent, not after."""
    if path.suffix.lower() not in TABLE_FORMATS:
        raise UsageError(
            f"output file {str(path)!r} must end in .csv or .parquet (got {path.suffix or 'none'})"
        )
    if path.exists() and path.is_dir():
        raise UsageError(f"output file {str(path)!r} is a directory")
    return path


def write_table(frame: pd.DataFrame, path: Path) -> Path:
    check_table_path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if TABLE_FORMATS[path.suffix.lower()] == "CSV":
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path, index=False)
    return path


def read_table(path: Path) -> pd.DataFrame:
    """Read back what :func:`write_table` wrote (errors come back as "" not NaN)."""
    check_table_path(path)
    if TABLE_FORMATS[path.suffix.lower()] == "CSV":
        return pd.read_csv(path, keep_default_na=False,
                           dtype={"error": str, "pods": str, "trace": str, "item": str})
    # No Arrow reader threads: they can abort the interpreter at exit (settlers.tables).
    return read_parquet(path)
