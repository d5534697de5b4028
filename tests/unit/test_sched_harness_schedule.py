"""`harness schedule`: placements only, Parquet out, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from harness.cli import app
from settlers.tables import read_parquet

pytestmark = pytest.mark.cli  # asserts on what the commands print

runner = CliRunner()


@pytest.mark.parametrize("scheduler", ["kube_default", "netmarks", "firmament", "random",
                                       "optimal"])
def test_each_policy_writes_placements(tmp_path: Path, scheduler: str) -> None:
    out = tmp_path / "p.parquet"
    result = runner.invoke(app, ["schedule", "--scheduler", scheduler, "--deployments", "5",
                                 "--nodes", "3", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "distinct layouts" in result.output and "inter-node traffic" in result.output
    df = read_parquet(out)
    assert len(df) == 5 * 19 and df["node"].notna().all()
    assert set(df["node"]) <= {"node-1", "node-2", "node-3"}
    assert df.groupby("deployment")["layout"].nunique().eq(1).all()


def test_netmarks_with_a_traffic_file(tmp_path: Path) -> None:
    traffic = tmp_path / "t.csv"
    traffic.write_text("source,destination,bytes\nbread,flour,1000\n")
    out = tmp_path / "p.parquet"
    result = runner.invoke(app, ["schedule", "-s", "netmarks", "--deployments", "3",
                                 "--traffic", str(traffic), "--out", str(out)])
    assert result.exit_code == 0, result.output
    df = read_parquet(out)
    for _, d in df.groupby("deployment"):
        nodes = dict(zip(d["pod"], d["node"], strict=True))
        assert nodes["bread-0"] == nodes["flour-0"]


def test_bad_inputs_get_clear_errors(tmp_path: Path) -> None:
    out = str(tmp_path / "p.parquet")
    r = runner.invoke(app, ["schedule", "-s", "nope", "--out", out])
    assert r.exit_code != 0 and "unknown scheduler 'nope'" in r.output
    r = runner.invoke(app, ["schedule", "-s", "netmarks", "--traffic",
                            str(tmp_path / "missing.csv"), "--out", out])
    assert r.exit_code != 0 and "no such traffic file" in r.output
    r = runner.invoke(app, ["schedule", "-s", "kube_default", "--nodes", "1", "--node-cpu",
                            "500m", "--out", out])
    assert r.exit_code != 0 and "impossible capacity" in r.output


def test_prometheus_traffic_since_t0_or_a_window(tmp_path: Path) -> None:
    from harness.schedule_cmd import _interval

    since = _interval("2026-12-01T22:50:03Z", 300)
    assert since.mode == "since" and since.since == 1796165403.0
    assert _interval(None, 60).window_s == 60
    out = str(tmp_path / "p.parquet")
    r = runner.invoke(app, ["schedule", "-s", "netmarks", "--since", "1796165403",
                            "--out", out])
    assert r.exit_code != 0 and "needs --prometheus URL" in r.output
    r = runner.invoke(app, ["schedule", "-s", "netmarks", "--prometheus", "http://127.0.0.1:9",
                            "--since", "yesterday", "--out", out])
    assert r.exit_code != 0 and "--since" in r.output


def test_resume_names_the_flags_to_drop_as_they_are_typed(tmp_path: Path) -> None:
    r = runner.invoke(app, ["run", "--resume", str(tmp_path), "-s", "netmarks",
                            "--protocol", "http", "--external-scheduler", "mine=my-scheduler"])
    assert r.exit_code == 2
    assert "drop --scheduler, --protocol, --external-scheduler" in " ".join(r.output.split())


def test_a_topology_gives_the_nodes_labels_and_capacities(tmp_path: Path) -> None:
    example = Path(__file__).resolve().parents[2] / "examples/topologies/two-regions.yaml"
    out = tmp_path / "p.parquet"
    result = runner.invoke(app, ["schedule", "-s", "kube_default", "--deployments", "5",
                                 "--topology", str(example), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "on 4 nodes of topology two-regions" in result.output
    # node-1 and node-2 (same zone, same size) are one group; the others each alone.
    assert " | g1:" in result.output and " | g2:" in result.output
    assert set(read_parquet(out)["node"]) <= {"node-1", "node-2", "node-3", "node-4"}


def test_a_bad_topology_is_refused_with_the_reason(tmp_path: Path) -> None:
    result = runner.invoke(app, ["schedule", "-s", "kube_default", "--topology", "zonez",
                                 "--out", str(tmp_path / "p.parquet")])
    assert result.exit_code == 2
    assert "neither a preset" in result.output
