"""`harness cluster up|status|down --backend kwok`: the CLI drives a real kwok control plane."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

import pytest

from harness.backends.k8s import K8sBinariesMissing, binaries

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def _cli(*args: str, workdir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", "from harness.cli import main; main()",
                           "cluster", *args, "--backend", "kwok"], capture_output=True, text=True,
                          timeout=400, env={**os.environ, "SETTLERS_KWOK_WORKDIR": str(workdir),
                                            "COLUMNS": "200"})


def test_cli_starts_inspects_and_deletes_a_kwok_cluster(
    tmp_path: Path, missing_tool: Callable[[str], NoReturn]
) -> None:
    try:
        binaries()
    except K8sBinariesMissing as exc:
        missing_tool(f"the Kubernetes binaries are not built (tools/k8s/build): {exc}")
    up = _cli("up", "--nodes", "2", "--topology", "zones", "--node-cpu", "1500m",
              workdir=tmp_path)
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        assert "node-1, node-2" in up.stdout and "kubeconfig" in up.stdout
        status = _cli("status", workdir=tmp_path)
        assert status.returncode == 0, status.stdout + status.stderr
        assert "nodes: node-1, node-2" in status.stdout
        # each node's zone and its allocatable CPU, which is --node-cpu on kwok
        rows = [[c.strip() for c in re.split(r"[│|┃]", line) if c.strip()]
                for line in status.stdout.splitlines()]
        assert ["node-1", "region-1", "zone-a", "1500m", "0m", "0"] in rows, status.stdout
        assert ["node-2", "region-1", "zone-b", "1500m", "0m", "0"] in rows, status.stdout
    finally:
        down = _cli("down", workdir=tmp_path)
    assert down.returncode == 0, down.stdout + down.stderr
    assert "deleted" in down.stdout
    assert "nothing to stop" in _cli("down", workdir=tmp_path).stdout
