"""`harness run` with real processes: a tiny experiment end to end, and kill -9 + --resume.

These start the emulated cluster (real `settlers serve` pods, the mesh, Prometheus when
installed), so they are marked slow; each stays well under a minute and a half.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from analysis.report import build_report
from harness.backends.registry import describe
from harness.run_cmd import run_experiment
from results.config import build_config
from results.manifest import new_manifest
from results.store import ResultsStore
from settlers.tables import read_parquet

pytestmark = pytest.mark.slow

# The console script, without relying on PATH.
HARNESS = [sys.executable, "-c", "from harness.cli import main; main()"]

TINY = {
    "nodes": 2, "items": ["flour", "bread", "coal"], "deployments": 10,
    "sizes": [16, 4096], "protocols": ["http"], "repetitions": 2, "layout_budget": 3,
    "warmup_orders": 1, "warmup_seconds": 2, "bootstrap": 200,
}


def test_tiny_experiment_end_to_end(tmp_path: Path) -> None:
    cfg = build_config(overrides=TINY)
    store = ResultsStore.create(tmp_path / "run", new_manifest(cfg, describe(cfg.backend)))
    run_experiment(cfg, store, quiet=True)

    placements = store.read_table("placements")
    assert len(placements) == 2 * 10
    samples = store.samples()
    assert samples["ok"].all(), samples.loc[~samples["ok"], "error"].tolist()
    measured = samples["layout_id"].nunique()
    assert 1 <= measured <= 3
    assert len(samples) == measured * 3 * 2 * 2  # layouts x items x sizes x reps
    assert (samples["inter_node_transfers"] <= samples["transfers"]).all()
    # Cross-check the two byte sources per layout: the mesh carried at least the
    # payload bytes the traces say crossed nodes, and nothing crossed when no hop did.
    tel = store.read_table("telemetry")
    tel_inter = (tel[tel["src_node"] != tel["dst_node"]].groupby("layout_id")["bytes"].sum()
                 .reindex(samples["layout_id"].unique(), fill_value=0))
    trace_inter = samples.groupby("layout_id")["inter_node_bytes"].sum()
    for lid, traced in trace_inter.items():
        assert tel_inter[lid] >= traced
        assert (tel_inter[lid] == 0) == (traced == 0)
    manifest = store.manifest()
    assert manifest.finished_at and manifest.traffic_source
    report = build_report(store.root, figures=False)
    assert list(report.headline["scheduler"]) == ["kube_default", "netmarks"]


def _descendants(pid: int) -> set[int]:
    out: set[int] = set()
    todo = [pid]
    while todo:
        p = todo.pop()
        try:
            text = Path(f"/proc/{p}/task/{p}/children").read_text()
        except OSError:
            continue
        kids = {int(x) for x in text.split()}
        out |= kids
        todo.extend(kids)
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_kill_and_resume_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    out = tmp_path / "run"
    args = [
        *HARNESS, "run", "--scheduler", "netmarks", "--out", str(out),
        "--nodes", "2", "--items", "flour,bread,coal", "--deployments", "10",
        "--sizes", "16,4096", "--protocol", "http", "--repetitions", "2",
        "--layout-budget", "4", "--warmup-orders", "1", "--warmup-seconds", "2",
        "--no-report",
    ]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    samples_dir = out / "samples"
    deadline = time.monotonic() + 120
    try:
        while not (samples_dir.is_dir() and list(samples_dir.glob("*.parquet"))):
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            assert time.monotonic() < deadline, "no measurement part after 120 s"
            time.sleep(0.05)
        children = _descendants(proc.pid)
        proc.send_signal(signal.SIGKILL)  # no cleanup, no flush: the worst case
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    # The cluster's processes die with their owner (PR_SET_PDEATHSIG), none left behind.
    end = time.monotonic() + 15
    while any(_alive(p) for p in children) and time.monotonic() < end:
        time.sleep(0.2)
    assert not [p for p in children if _alive(p)]
    before = {p.name: p.stat().st_mtime_ns for p in samples_dir.glob("*.parquet")}
    units = read_parquet(out / "units.parquet")
    from results.layouts import measurement_order

    planned = measurement_order(units)
    assert 1 <= len(before) < len(planned), "killed too late to test resuming"

    done = subprocess.run(
        [*HARNESS, "run", "--resume", str(out), "--no-report"],
        capture_output=True, text=True, timeout=240, env=env,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    after = {p.name: p.stat().st_mtime_ns for p in samples_dir.glob("*.parquet")}
    assert set(after) == {f"{lid}-http.parquet" for lid in planned}
    assert all(after[name] == mtime for name, mtime in before.items())
    samples = ResultsStore.open(out).samples()
    assert not samples.duplicated(["layout_id", "protocol", "item", "size", "repeat"]).any()
    assert len(samples) == len(planned) * 3 * 2 * 2  # layouts x items x sizes x reps
    manifest = ResultsStore.open(out).manifest()
    assert manifest.resumed_at and manifest.finished_at
    assert not list(out.rglob("*.tmp"))


@pytest.mark.cli
def test_invalid_experiment_fails_fast_with_a_clear_message(tmp_path: Path) -> None:
    bad = tmp_path / "exp.yaml"
    bad.write_text("schedulers: [netmarks, kube-magic]\nnodez: 3\n")
    done = subprocess.run(
        [*HARNESS, "run", "--config", str(bad)],
        capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 2
    assert "unknown scheduler 'kube-magic'" in done.stderr
    assert "nodez: unknown setting" in done.stderr
    assert not (tmp_path / "runs").exists()


# An economy no other test uses: a brewery. The paper's items (boat, bread, ...) are not
# in it, so `--quick` must pick its items from the graph: malt <- barley is the deepest
# simple chain, wort (whose closure consumes water twice: in mash and in wort itself)
# the smallest shared supply, and keg the deepest item.
BREWERY = """\
name: brewery
items:
  barley: {}
  water: {}
  hops: {}
  malt: {inputs: [barley]}
  mash: {inputs: [malt, water]}
  wort: {inputs: [mash, hops, water]}
  keg: {inputs: [wort]}
"""


def test_quick_on_an_economy_the_paper_never_named(tmp_path: Path) -> None:
    economy = tmp_path / "brewery.yaml"
    economy.write_text(BREWERY)
    out = tmp_path / "run"
    # --quick as a user types it, with the run itself shortened by flags (flags beat the
    # preset; the items still come from the preset's defaults).
    done = subprocess.run(
        [*HARNESS, "run", "--scheduler", "netmarks", "--quick", "--economy", str(economy),
         "--nodes", "4", "--out", str(out), "--deployments", "10", "--layout-budget", "3",
         "--sizes", "16,4096", "--repetitions", "1", "--warmup-seconds", "2"],
        capture_output=True, text=True, timeout=300,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    manifest = ResultsStore.open(out).manifest()
    assert manifest.items == ["malt", "wort", "keg"]
    assert manifest.items_origin is not None and manifest.items_origin.how == "derived"
    assert "items derived from economy 'brewery'" in " ".join(done.stderr.split())
    samples = ResultsStore.open(out).samples()
    assert samples["ok"].all() and set(samples["item"]) == {"malt", "wort", "keg"}
    report = " ".join((out / "report.md").read_text().split())  # unwrapped
    assert "items derived from economy 'brewery'" in report
    for fragment in ("malt (simple chain: malt <- barley)",
                     "wort (shared supply: water reached along two paths",
                     "keg (deepest: 4 hops to a raw item"):
        assert fragment in report


def test_load_list_measures_each_layout_under_background_load(tmp_path: Path) -> None:
    out = tmp_path / "run"
    done = subprocess.run(
        [*HARNESS, "run", "--scheduler", "netmarks", "--out", str(out), "--load", "0,20",
         "--nodes", "2", "--items", "flour,bread,coal", "--deployments", "10",
         "--sizes", "16,4096", "--protocol", "http", "--repetitions", "2",
         "--layout-budget", "2", "--warmup-orders", "1", "--warmup-seconds", "2"],
        capture_output=True, text=True, timeout=300,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    store = ResultsStore.open(out)
    planned = store.manifest().plan.layouts  # type: ignore[union-attr]
    assert store.done_chunks() == {f"{lid}-http-load{x}" for lid in planned for x in (0, 20)}
    samples = store.samples()
    assert samples["ok"].all(), samples.loc[~samples["ok"], "error"].tolist()
    assert set(samples["load_rps"]) == {0.0, 20.0}
    assert (samples.loc[samples["load_rps"] == 0, "load_achieved_rps"] == 0).all()
    background = store.background_load().set_index("load_rps")
    loaded = background.loc[[20.0]]
    # The background load really ran: most of its offered orders were answered.
    assert (loaded["ok"] > 0).all() and (loaded["errors"] == 0).all()
    assert (loaded["achieved_rps"] > 0.5 * 20).all(), loaded.to_dict("records")
    report = (out / "report.md").read_text()
    assert "## Response time against background load" in report
    assert "figures/response_time_vs_load.png" in report
    rl = pd.read_csv(out / "tables" / "response_time_vs_load.csv")
    assert set(rl["load_rps"]) == {0.0, 20.0}
    assert set(rl["scheduler"]) == {"kube_default", "netmarks"}
    assert (out / "figures" / "response_time_vs_load.png").stat().st_size > 0


def test_zones_capacity_and_load_on_an_economy_the_paper_never_named(
    tmp_path: Path, cgroup_cpu: Path
) -> None:
    """Everything issue 13 adds at once, on a graph none of its presets was made for:
    the zones topology, enforced node capacity and a background load."""
    economy = tmp_path / "brewery.yaml"
    economy.write_text(BREWERY)
    out = tmp_path / "run"
    done = subprocess.run(
        [*HARNESS, "run", "-s", "netmarks", "-s", "firmament", "--quick",
         "--economy", str(economy), "--topology", "zones", "--nodes", "3",
         "--node-cpu", "2", "--load", "0,10", "--out", str(out), "--deployments", "10",
         "--layout-budget", "2", "--sizes", "16,4096", "--repetitions", "1",
         "--warmup-seconds", "2"],
        capture_output=True, text=True, timeout=300,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    store = ResultsStore.open(out)
    manifest = store.manifest()
    assert manifest.capacity is not None and manifest.capacity["enforced"], manifest.capacity
    assert set(manifest.capacity["capacity_m"].values()) == {2000}
    samples = store.samples()
    assert samples["ok"].all() and set(samples["item"]) == {"malt", "wort", "keg"}
    assert set(samples["load_rps"]) == {0.0, 10.0}
    report = (out / "report.md").read_text()
    # capacity in the report's first lines, the topology in "What was run", and the
    # response time against load
    assert "node capacity 2000m per node enforced" in "\n".join(report.splitlines()[:4])
    assert "topology zones: 3 node(s) in 3 zone(s)" in " ".join(report.split())
    assert "## Response time against background load" in report
    assert (out / "figures" / "response_time_vs_load.png").is_file()
    # one node per zone: no two nodes are interchangeable, so each canonical layout keeps
    # the three nodes apart (a group per node)
    canonical = pd.read_parquet(out / "layouts.parquet")["canonical"]
    assert all(c.count(" | ") == 2 for c in canonical), canonical.tolist()
