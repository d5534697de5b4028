"""`harness run --replicates 2` on the emulated cluster through the CLI: the directory
layout, the two seeds, each replicate's report and the combined report at the top."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from harness.replicates import replicate_seed

TINY = ["run", "--deployments", "10", "--items", "flour", "--sizes", "4096",
        "--protocol", "http", "--repetitions", "1", "--layout-budget", "2",
        "--warmup-orders", "1", "--warmup-seconds", "1", "--nodes", "2", "--seed", "5",
        "--replicates", "2"]


@pytest.mark.slow
def test_replicated_run_through_the_cli(tmp_path: Path) -> None:
    from harness.cli import app

    out = tmp_path / "run"
    done = CliRunner().invoke(app, [*TINY, "--out", str(out)])
    assert done.exit_code == 0, done.output

    top = json.loads((out / "manifest.json").read_text())
    assert top["config"]["replicates"] == 2
    seeds = [r["seed"] for r in top["replicates"]]
    assert seeds == [5, replicate_seed(5, 2)]
    for index, seed in enumerate(seeds, start=1):
        sub = out / "replicates" / f"r{index}"
        m = json.loads((sub / "manifest.json").read_text())
        assert (m["replicate"], m["config"]["seed"], m["config"]["replicates"]) == \
            (index, seed, 1)
        assert m["finished_at"] and (sub / "report.md").is_file()
        assert list((sub / "samples").glob("*.parquet"))
    combined = pd.read_csv(out / "tables" / "replicates_combined.csv")
    row = combined[(combined["metric"] == "rt_reduction_largest_pct")
                   & (combined["scheduler"] == "netmarks")]
    assert len(row) == 1 and int(row["replicates"].iloc[0]) == 2
    text = (out / "report.md").read_text()
    assert "2 independent replications" in text
    assert "replicates/r2/report.md" in text and str(seeds[1]) in text
    assert (out / "figures" / "replicates.svg").is_file()

    # Resuming a finished replicated run measures nothing again.
    before = {p: p.stat().st_mtime_ns for p in out.rglob("samples/*.parquet")}
    again = CliRunner().invoke(app, ["run", "--resume", str(out), "--no-report"])
    assert again.exit_code == 0, again.output
    assert {p: p.stat().st_mtime_ns for p in out.rglob("samples/*.parquet")} == before

