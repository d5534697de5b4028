"""`harness sweep` on the emulated cluster through the command line: two tiny points, each
a complete results directory, then the sweep's table, figures and report."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from harness.cli import app
from results.store import ResultsStore
from results.sweep import read_sweep_manifest

pytestmark = pytest.mark.slow


def test_a_two_point_sweep_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "sweep"
    args = ["sweep", "--factor", "order=file,reverse", "--nodes", "2", "--deployments", "10",
            "--items", "flour", "--sizes", "16", "--protocol", "http", "--repetitions", "1",
            "--layout-budget", "2", "--warmup-seconds", "2", "--out", str(out)]
    result = CliRunner().invoke(app, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output

    manifest = read_sweep_manifest(out)
    assert manifest.finished_at and [p.values for p in manifest.points] == [
        {"order": "file"}, {"order": "reverse"}]
    assert "--factor order=file,reverse" in manifest.command
    for point in manifest.points:
        store = ResultsStore.open(manifest.point_dir(out, point))
        run = store.manifest()
        assert run.finished_at and run.config.order == point.values["order"]
        assert (store.root / "report.md").is_file()  # each point a complete run
    table = pd.read_csv(out / "tables" / "sweep.csv")
    assert set(table["order"]) == {"file", "reverse"}
    assert "rt_reduction_largest_pct" in set(table["metric"])
    assert (out / "figures" / "sweep_rt_reduction_largest_pct.png").is_file()
    assert "`order`: file, reverse" in (out / "report.md").read_text()

    # Resuming a finished sweep measures nothing again.
    again = CliRunner().invoke(app, ["sweep", "--resume", str(out)], catch_exceptions=False)
    assert again.exit_code == 0, again.output
    assert "already finished, kept" in again.output
