"""The testbed's schedulers as processes on this machine, for clusters whose pods cannot
run them (kwok: pods are fake, so the chart's scheduler Deployments never start). Used by
the kwok backend and by the kubernetes backend's ``schedulers: host`` mode.

`host_schedulers(...)` runs, for the duration of a placement phase:

- netmarks: the NetMARKS extender (`schedulers netmarks-extender`, scoring with the
  warm-up's traffic matrix) and a real kube-scheduler whose only profile is
  `netmarks-scheduler` and whose `extenders:` entry points at it;
- firmament: the firmament binder (`schedulers firmament`).

Everything listens on 127.0.0.1 and talks to the cluster through a kubeconfig that
pins the chosen context. Processes are stopped when the block ends, whatever happens.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from harness.backends.base import BackendUnavailable
from harness.backends.emulated.procs import free_port
from harness.backends.k8s.cluster import KwokError
from harness.backends.k8s.process import stop_process, wait_http_ok
from harness.backends.k8s.scheduler import extender_stanza, scheduler_config

if TYPE_CHECKING:
    from schedulers import TrafficMatrix

__all__ = ["host_schedulers", "pinned_kubeconfig"]


def pinned_kubeconfig(kubeconfig: Path | None, context: str | None, dest: Path) -> Path:
    """Write ``kubeconfig`` (default $KUBECONFIG / ~/.kube/config) with ``context`` made
    current, so processes that take only a file use the right cluster."""
    source = kubeconfig or Path(os.environ.get("KUBECONFIG", "~/.kube/config").split(
        os.pathsep)[0]).expanduser()
    doc = yaml.safe_load(source.read_text())
    if context:
        if context not in {c["name"] for c in doc.get("contexts") or []}:
            raise BackendUnavailable(f"context {context!r} is not in {source}")
        doc["current-context"] = context
    dest.write_text(yaml.safe_dump(doc))
    dest.chmod(0o600)
    return dest


@contextlib.contextmanager
def host_schedulers(policy: str, scheduler_name: str, *, kubeconfig: Path | None,
                    context: str | None, traffic: TrafficMatrix | None,
                    timeout_s: float = 60.0) -> Iterator[None]:
    """Run ``policy``'s scheduler processes (nothing for kube_default) while the block runs."""
    if policy not in ("netmarks", "firmament"):
        yield
        return
    work = Path(tempfile.mkdtemp(prefix=f"settlers-{policy}-"))
    procs: list[subprocess.Popen[bytes]] = []
    try:
        kc = pinned_kubeconfig(kubeconfig, context, work / "kubeconfig.yaml")
        matrix = work / "traffic.csv"
        if traffic is not None:
            traffic.to_csv(matrix)
        else:
            matrix.write_text("source,destination,bytes\n")
        if policy == "firmament":
            procs.append(_schedulers_cli(
                work / "firmament.log", "firmament", "--kubeconfig", str(kc),
                # --settle: one redeployment's pods trickle in over ~1 s; wait for
                # them all, so each redeployment is one batch like the Python model's.
                "--scheduler-name", scheduler_name, "--interval", "0.2", "--settle", "0.5",
                "--traffic", str(matrix)))
            time.sleep(0.5)
            _check_alive(procs[-1], work / "firmament.log")
        else:
            port = free_port()
            procs.append(_schedulers_cli(
                work / "extender.log", "netmarks-extender", "--traffic", str(matrix),
                "--host", "127.0.0.1", "--port", str(port), "--kubeconfig", str(kc)))
            url = f"http://127.0.0.1:{port}"
            _wait_ok(f"{url}/healthz", procs[-1], work / "extender.log", timeout_s)
            config = work / "scheduler.yaml"
            config.write_text(yaml.safe_dump(scheduler_config(
                scheduler_name, kc, extenders=[extender_stanza(url + "/")])))
            sport = free_port()
            procs.append(_popen(work / "kube-scheduler.log", [
                str(_kube_scheduler()), "--config", str(config), "--bind-address",
                "127.0.0.1", "--secure-port", str(sport), "--v", "2"]))
            _wait_ok(f"https://127.0.0.1:{sport}/healthz", procs[-1],
                     work / "kube-scheduler.log", timeout_s)
        yield
    finally:
        for proc in reversed(procs):
            stop_process(proc)
        shutil.rmtree(work, ignore_errors=True)


def _kube_scheduler() -> Path:
    from harness.backends.k8s.binaries import bin_dir

    built = bin_dir() / "kube-scheduler"
    if built.is_file():
        return built
    found = shutil.which("kube-scheduler")
    if not found:
        raise BackendUnavailable("no kube-scheduler binary: run tools/k8s/build")
    return Path(found)


def _schedulers_cli(log: Path, *args: str) -> subprocess.Popen[bytes]:
    return _popen(log, [sys.executable, "-c", "from schedulers.cli import main; main()", *args])


def _popen(log: Path, argv: list[str]) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        # Own session: a Ctrl-C meant for the harness must not kill them before
        # the harness has cleaned up the cluster.
        return subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)


def _check_alive(proc: subprocess.Popen[bytes], log: Path) -> None:
    if proc.poll() is not None:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-20:])
        raise BackendUnavailable(f"{log.stem} exited with {proc.returncode}:\n{tail}")


def _wait_ok(url: str, proc: subprocess.Popen[bytes], log: Path, timeout_s: float) -> None:
    # The kube-scheduler's serving certificate is self-signed; wait_http_ok accepts it.
    try:
        wait_http_ok(url, proc, log, timeout_s)
    except KwokError as exc:
        raise BackendUnavailable(str(exc)) from None
