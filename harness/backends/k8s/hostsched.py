"""The testbed's schedulers as processes on this machine, for clusters whose pods cannot
run them (kwok: pods are fake, so the chart's scheduler Deployments never start). Used by
the kwok backend and by the kubernetes backend's ``schedulers: host`` mode.

`host_schedulers(...)` runs, for the duration of a placement phase, what a policy's
real counterpart (``schedulers.spec.KubernetesCounterpart``) says, by its kind:

- extender: its ``host_command`` (e.g. `schedulers netmarks-extender`, scoring with
  the warm-up's traffic matrix) or the user's extender at a URL (``extender``), and a
  real kube-scheduler whose only profile is its schedulerName and whose
  `extenders:` entry calls it;
- custom: its ``host_command`` (e.g. `schedulers firmament`, binding pods itself; with
  ``--network FILE`` too when its policy weighs delays between nodes, e.g. `schedulers
  trade`);
- plugins: its ``binary`` (e.g. kube-scheduler-diktyo) with one profile enabling the
  plugins, given the phase's ``PluginSetup`` (`pluginsched`; the caller installs the
  CRDs and objects it names first);
- either: the user's own program (``command``), with $KUBECONFIG set;
- default, or a scheduler the user runs (``external``): nothing.

Everything listens on 127.0.0.1 and talks to the cluster through a kubeconfig that
pins the chosen context. Processes are stopped when the block ends, whatever happens.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import yaml

from harness.backends.base import BackendUnavailable
from harness.backends.emulated.procs import free_port
from harness.backends.k8s.cluster import KwokError
from harness.backends.k8s.process import stop_process, wait_http_ok
from harness.backends.k8s.scheduler import extender_stanza, scheduler_config

if TYPE_CHECKING:
    from schedulers import TrafficMatrix
    from schedulers.network import NodeNetwork
    from schedulers.spec import KubernetesCounterpart, PluginSetup

__all__ = ["check_listening", "host_schedulers", "pinned_kubeconfig"]


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
def host_schedulers(found: KubernetesCounterpart | None, scheduler_name: str, *,
                    kubeconfig: Path | None, context: str | None,
                    traffic: TrafficMatrix | None, timeout_s: float = 60.0,
                    network: NodeNetwork | None = None,
                    setup: PluginSetup | None = None,
                    client_connection: Mapping[str, Any] | None = None) -> Iterator[None]:
    """Run the processes of the real scheduler ``found`` (a policy's counterpart, under
    ``scheduler_name``) on this machine while the block runs. Nothing to run for
    kube-scheduler's default profile, for None, or for a scheduler the user runs.

    ``network``: the delays between nodes, for a custom scheduler whose policy weighs
    them (``PolicySpec.uses_network``, e.g. trade): it also gets ``--network FILE``.
    ``setup``: a "plugins" counterpart's profile (required for that kind).
    ``client_connection``: the ``clientConnection`` settings (qps, burst) of a
    kube-scheduler started here (default: kube-scheduler's own)."""
    if found is None or found.kind == "default" or found.external:
        yield
        return
    if found.kind == "plugins" and setup is None:
        raise BackendUnavailable(
            f"{found.component} runs only on the kwok backend for now (the harness writes "
            "the objects its plugins read there); use --backend kwok")
    work = Path(tempfile.mkdtemp(prefix=f"settlers-{scheduler_name}-"))
    procs: list[subprocess.Popen[bytes]] = []
    # Processes without a health endpoint, and their logs: checked alive at the end.
    unprobed: list[tuple[subprocess.Popen[bytes], Path]] = []
    try:
        kc = pinned_kubeconfig(kubeconfig, context, work / "kubeconfig.yaml")
        if found.command:
            log = work / "command.log"
            procs.append(_user_command(log, found.command, kc, scheduler_name))
            unprobed.append((procs[-1], log))
        if found.kind == "custom" and found.host_command:
            log = work / f"{found.host_command[0]}.log"
            procs.append(_schedulers_cli(
                log, *found.host_command, "--kubeconfig", str(kc),
                "--scheduler-name", scheduler_name, "--traffic", str(_matrix(work, traffic)),
                *_network_args(work, network)))
            unprobed.append((procs[-1], log))
        if found.kind == "extender" and (found.host_command or found.extender):
            if found.extender is not None:
                call = found.extender
                check_listening(call.url)
                stanza = extender_stanza(
                    call.url, weight=call.weight, prioritize_verb=call.prioritize_verb,
                    filter_verb=call.filter_verb, ignorable=call.ignorable,
                    loopback_only=False)
            else:
                port = free_port()
                procs.append(_schedulers_cli(
                    work / "extender.log", *found.host_command,
                    "--traffic", str(_matrix(work, traffic)),
                    "--host", "127.0.0.1", "--port", str(port), "--kubeconfig", str(kc)))
                url = f"http://127.0.0.1:{port}"
                _wait_ok(f"{url}/healthz", procs[-1], work / "extender.log", timeout_s)
                stanza = extender_stanza(url + "/", bind_verb=_bind_verb(found.host_command))
            # A kube-scheduler whose only profile is scheduler_name calls the extender.
            config = work / "scheduler.yaml"
            config.write_text(yaml.safe_dump(scheduler_config(
                scheduler_name, kc, extenders=[stanza], client_connection=client_connection)))
            sport = free_port()
            procs.append(_popen(work / "kube-scheduler.log", [
                str(_kube_scheduler()), "--config", str(config), "--bind-address",
                "127.0.0.1", "--secure-port", str(sport), "--v", "2"]))
            _wait_ok(f"https://127.0.0.1:{sport}/healthz", procs[-1],
                     work / "kube-scheduler.log", timeout_s)
        if found.kind == "plugins" and setup is not None:
            procs.append(_plugin_scheduler(work, found, scheduler_name, kc, setup, timeout_s))
        if unprobed:
            # No health endpoint: alive half a second after the start (a bad flag or
            # kubeconfig fails within that) is as much as can be checked.
            time.sleep(0.5)
            for proc, log in unprobed:
                _check_alive(proc, log)
        yield
    finally:
        for proc in reversed(procs):
            stop_process(proc)
        shutil.rmtree(work, ignore_errors=True)


def _bind_verb(host_command: tuple[str, ...]) -> str | None:
    """Our extender started with --bind serves the bind verb; kube-scheduler must then
    call it (bindVerb), or the extender never learns of a binding before its pod watch
    does."""
    return "bind" if "--bind" in host_command else None


def _plugin_scheduler(work: Path, found: KubernetesCounterpart, scheduler_name: str,
                      kubeconfig: Path, setup: PluginSetup,
                      timeout_s: float) -> subprocess.Popen[bytes]:
    """The counterpart's own kube-scheduler binary, healthy, serving its one profile."""
    from harness.backends.k8s.pluginsched import plugin_binary, plugin_scheduler_config

    config = work / "scheduler.yaml"
    config.write_text(yaml.safe_dump(plugin_scheduler_config(scheduler_name, kubeconfig,
                                                             setup), sort_keys=False))
    log = work / f"{found.binary}.log"
    port = free_port()
    proc = _popen(log, [str(plugin_binary(found)), "--config", str(config),
                        "--bind-address", "127.0.0.1", "--secure-port", str(port),
                        "--v", "2"])
    try:
        _wait_ok(f"https://127.0.0.1:{port}/healthz", proc, log, timeout_s)
    except BaseException:
        stop_process(proc)
        raise
    return proc


def _matrix(work: Path, traffic: TrafficMatrix | None) -> Path:
    """The warm-up's traffic matrix as the --traffic file of our host processes."""
    matrix = work / "traffic.csv"
    if not matrix.exists():
        if traffic is not None:
            traffic.to_csv(matrix)
        else:
            matrix.write_text("source,destination,bytes\n")
    return matrix


def _network_args(work: Path, network: NodeNetwork | None) -> list[str]:
    """``--network FILE`` with ``network`` written to it; nothing without one."""
    if network is None:
        return []
    from schedulers.netfile import write_network

    return ["--network", str(write_network(network, work / "network.json"))]


def _user_command(log: Path, argv: tuple[str, ...], kubeconfig: Path,
                  scheduler_name: str) -> subprocess.Popen[bytes]:
    """The user's own scheduler program, pointed at this cluster."""
    filled = [a.replace("{kubeconfig}", str(kubeconfig)).replace(
        "{scheduler_name}", scheduler_name) for a in argv]
    try:
        return _popen(log, filled, env={**os.environ, "KUBECONFIG": str(kubeconfig)})
    except OSError as exc:
        raise BackendUnavailable(f"cannot start {shlex.join(filled)}: {exc}") from None


def check_listening(url: str, timeout_s: float = 5.0) -> None:
    """Fail now, not after a placement timeout, when nothing listens at ``url``."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname or "", port), timeout=timeout_s):
            return
    except OSError as exc:
        raise BackendUnavailable(
            f"nothing answers at {url} ({exc}): is your extender running?") from None


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


def _popen(log: Path, argv: list[str], env: Mapping[str, str] | None = None
           ) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        # Own session: a Ctrl-C meant for the harness must not kill them before
        # the harness has cleaned up the cluster.
        return subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True, env=env)


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
