"""`harness run --backend kwok`: placements by the real kube-scheduler (and the NetMARKS
extender behind a second kube-scheduler) on a kwok control plane, layouts measured on
the emulated data plane."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.backends.pids import pid_alive
from harness.backends.registry import describe
from harness.run_cmd import run_experiment
from results.config import build_config
from results.manifest import new_manifest
from results.store import ResultsStore

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_experiment_on_the_kwok_backend(k8s_binaries: object, tmp_path: Path) -> None:
    cfg = build_config(overrides={
        "backend": "kwok", "schedulers": ["netmarks"], "nodes": 3,
        "items": ["flour", "bread"], "deployments": 20, "sizes": [16, 4096],
        "protocols": ["http"], "repetitions": 1, "layout_budget": 3, "warmup_orders": 1,
        "warmup_seconds": 2, "bootstrap": 100,
    })
    store = ResultsStore.create(tmp_path / "run", new_manifest(cfg, describe(cfg.backend)))
    run_experiment(cfg, store, quiet=True)

    placements = store.read_table("placements")
    assert sorted(placements["scheduler"].unique()) == ["kube_default", "netmarks"]
    assert len(placements) == 2 * 20
    samples = store.samples()
    assert samples["ok"].all(), samples.loc[~samples["ok"], "error"].tolist()
    assert 1 <= samples["layout_id"].nunique() <= 3
    # The real schedulers took measurable time to bind every pod through the API.
    assert (placements["seconds"] > 0).all()
    # Each redeployment created its Deployments in a new random order (the default),
    # the same one under both schedulers.
    orders = placements.groupby("deployment")["creation_order"].nunique()
    assert (orders == 1).all() and placements["creation_order"].nunique() == 20


def test_sigterm_deletes_the_kwok_control_plane(k8s_binaries: object, tmp_path: Path) -> None:
    from harness.backends.k8s import KwokCluster

    workdir = tmp_path / "kwok"
    env = {**os.environ, "SETTLERS_KWOK_WORKDIR": str(workdir)}
    proc = subprocess.Popen(
        [sys.executable, "-c", "from harness.cli import main; main()", "run",
         "--backend", "kwok", "--scheduler", "kube_default", "--quick", "--nodes", "2",
         "--out", str(tmp_path / "run")],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        deadline = time.monotonic() + 240
        pids: list[int] = []
        while time.monotonic() < deadline and proc.poll() is None:
            names = KwokCluster.list_names(workdir)
            if names and (workdir / "clusters" / names[0] / "kubeconfig.yaml").is_file():
                pids = KwokCluster(names[0], workdir).pids()
                if len(pids) >= 4:  # etcd, apiserver, controller manager, scheduler, kwok
                    break
            time.sleep(0.5)
        assert pids, f"no kwok cluster came up:\n{proc.stdout.read() if proc.stdout else ''}"
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, out
    assert "interrupted" in out
    assert KwokCluster.list_names(workdir) == []
    assert not [p for p in pids if pid_alive(p)]

