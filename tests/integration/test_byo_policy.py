"""The worked example of docs/schedulers.md, "Bring your own scheduler", end to end.

A policy package of its own (examples/byo-policy, the ``pack`` policy) installed next
to the testbed is found through its entry point and measured like a built-in: a real
``pip install`` of it, and a short ``harness run -s pack --quick`` on the local backend.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from analysis.report import build_report
from results.store import ResultsStore

pytestmark = pytest.mark.slow

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "byo-policy"
HARNESS = [sys.executable, "-c", "from harness.cli import main; main()"]
SCHEDULERS = [sys.executable, "-c", "from schedulers.cli import main; main()"]


def _env(site: Path) -> dict[str, str]:
    parts = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    return {**os.environ, "PYTHONPATH": os.pathsep.join([*parts, str(site)]),
            "PYTHONUNBUFFERED": "1"}


def test_pip_installs_the_example_and_the_testbed_finds_it(tmp_path: Path) -> None:
    # Built from a copy: setuptools writes build/ and *.egg-info next to the sources.
    project = shutil.copytree(EXAMPLE, tmp_path / "byo-policy",
                              ignore=shutil.ignore_patterns("__pycache__", "build", "*.egg-info"))
    site = tmp_path / "site"
    done = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
         "--no-build-isolation", "--target", str(site), str(project)],
        capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    listed = subprocess.run([*SCHEDULERS, "policies"], capture_output=True, text=True,
                            env=_env(site), timeout=60)
    assert listed.returncode == 0, listed.stderr[-3000:]
    assert ("pack  (entry point 'pack = settlers_pack.policy' of distribution "
            "settlers-pack-policy 0.1.0)") in listed.stdout


def test_harness_run_measures_the_plugin_like_a_builtin(tmp_path: Path,
                                                         pack_site: Path) -> None:
    out = tmp_path / "run"
    # --quick as the docs show it, shortened by flags (flags beat the preset).
    done = subprocess.run(
        [*HARNESS, "run", "-s", "pack", "--quick", "--out", str(out), "--nodes", "3",
         "--deployments", "10", "--layout-budget", "3", "--sizes", "16,4096",
         "--repetitions", "1", "--warmup-seconds", "2"],
        capture_output=True, text=True, timeout=300, env=_env(pack_site))
    assert done.returncode == 0, done.stderr[-3000:]
    store = ResultsStore.open(out)
    placements = store.read_table("placements")
    assert set(placements["scheduler"]) == {"kube_default", "pack"}
    pack = placements[placements["scheduler"] == "pack"]
    # Bin-packing: every redeployment puts the whole economy on one node ...
    assert all(len(set(json.loads(a).values())) == 1 for a in pack["assignments"])
    samples = store.samples()
    assert samples["ok"].all()
    # ... so its layout, measured like any other, sends nothing between nodes.
    packed = samples[samples["layout_id"].isin(set(pack["layout_id"]))]
    assert len(packed) and (packed["inter_node_transfers"] == 0).all()
    report = build_report(out, figures=False)
    assert list(report.headline["scheduler"]) == ["kube_default", "pack"]
    assert (out / "report.md").is_file()
