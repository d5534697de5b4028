"""tools/image/build end to end: the archives import into containerd 1.6 and run.

The images are built into a temporary SETTLERS_IMAGE_DIR. A cold build takes minutes
(mmdebstrap, then pip installing the project's dependencies from PyPI), so when the
cache that `tools/setup --nodes` / `tools/image/build` fill (SETTLERS_IMAGE_DIR, else
~/.cache/settlers-testbed/images) holds archives whose stamps match the current inputs,
they are hard-linked into the temporary dir first and the build finds them up to date;
the test still runs the tool and everything below on them. The archives are then
imported into a throwaway containerd started here (own root, state, socket and runc
root under a temporary dir) and run with `ctr run`; every process, mount and directory
made here is removed afterwards.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import pytest

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / "tools" / "image" / "build"
TOOLS = ("mmdebstrap", "buildah", "containerd", "ctr", "runc", "go")
APP = "localhost/settlers-testbed:0.1.0"
PAUSE = "localhost/settlers-pause:3.10"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(3600),  # a cold build: ~13 min on this 2-core machine under load
]


@pytest.fixture(scope="module", autouse=True)
def _root_and_tools(missing_tool: Callable[[str], NoReturn]) -> None:
    """Skipped without them on a developer machine, failed in CI (tools/test sets them up)."""
    if os.geteuid() != 0:
        missing_tool("needs root: mmdebstrap, buildah and containerd write system state")
    absent = [t for t in TOOLS if shutil.which(t) is None]
    if absent:
        missing_tool(f"needs {', '.join(absent)} (tools/setup --nodes installs the Debian "
                     "packages)")


def _wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.1)


def _procs_mentioning(text: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if text in cmdline:
                found.append(int(entry.name))
    return found


def _mounts_under(path: Path) -> list[str]:
    prefix = str(path) + "/"
    points = [line.split()[4] for line in
              Path("/proc/self/mountinfo").read_text().splitlines()]
    return [p for p in points if p.startswith(prefix)]


@dataclass
class Containerd:
    address: str
    home: str

    def ctr(self, *args: str, timeout: float = 300,
            check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(["ctr", "--address", self.address, "-n", "k8s.io", *args],
                              capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL, check=False)
        if check:
            assert done.returncode == 0, f"ctr {' '.join(args)}: {done.stderr}"
        return done

    def run_args(self, image: str, name: str, *command: str) -> list[str]:
        """`ctr run` keeping runc's state and the IO fifos under our dir too."""
        return ["run", "--rm", "--runc-root", f"{self.home}/runc",
                "--fifo-dir", f"{self.home}/fifo", image, name, *command]

    def run(self, image: str, name: str, *command: str) -> subprocess.CompletedProcess[str]:
        return self.ctr(*self.run_args(image, name, *command), check=False)

    def task_status(self, name: str) -> str:
        for line in self.ctr("tasks", "ls").stdout.splitlines()[1:]:
            fields = line.split()
            if fields and fields[0] == name:
                return fields[-1]
        return ""


@pytest.fixture(scope="module")
def archives() -> Iterator[dict[str, Path]]:
    """IMAGE -> docker-archive, from tools/image/build into a temporary image dir."""
    out = Path(tempfile.mkdtemp(prefix="settlers-images-"))
    try:
        cache = os.environ.get("SETTLERS_IMAGE_DIR") or str(
            Path.home() / ".cache" / "settlers-testbed" / "images")
        listed = subprocess.run([str(BUILD), "--list"], capture_output=True, text=True,
                                env={**os.environ, "SETTLERS_IMAGE_DIR": cache},
                                timeout=120, check=False)
        if listed.returncode == 0:  # reuse the cached archives: see the module doc
            for line in listed.stdout.splitlines():
                archive = Path(line.split()[1])
                for path in (archive, Path(f"{archive}.stamp")):
                    try:
                        os.link(path, out / path.name)
                    except OSError:  # another filesystem
                        shutil.copy2(path, out / path.name)
        built = subprocess.run([str(BUILD)], capture_output=True, text=True,
                               env={**os.environ, "SETTLERS_IMAGE_DIR": str(out)},
                               timeout=3300, check=False)
        assert built.returncode == 0, built.stderr[-4000:]
        found = {image: Path(path) for image, path in
                 (line.split() for line in built.stdout.splitlines())}
        assert set(found) >= {APP, PAUSE}
        assert all(path.parent == out and path.stat().st_size > 0 for path in found.values())
        yield found
    finally:
        shutil.rmtree(out, ignore_errors=True)


@pytest.fixture(scope="module")
def containerd() -> Iterator[Containerd]:
    """A containerd of our own (no CRI) with every path under one temporary dir."""
    home = Path(tempfile.mkdtemp(prefix="settlers-ctrd-"))
    config = home / "config.toml"
    config.write_text(
        'version = 2\n'
        f'root = "{home}/root"\nstate = "{home}/state"\n'
        'disabled_plugins = ["io.containerd.grpc.v1.cri"]\n'
        f'[grpc]\n  address = "{home}/c.sock"\n'
        f'[ttrpc]\n  address = "{home}/c.sock.ttrpc"\n'
        f'[debug]\n  address = "{home}/debug.sock"\n')
    log = (home / "containerd.log").open("w")
    proc = subprocess.Popen(["containerd", "--config", str(config)], stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    daemon = Containerd(address=f"{home}/c.sock", home=str(home))
    # containerd 1.6 puts shim sockets in /run/containerd/s whatever its config says:
    # remove what of /run/containerd this test creates, if it is empty at the end.
    shared = [Path("/run/containerd/s"), Path("/run/containerd")]
    made = [d for d in shared if not d.exists()]
    try:
        _wait_for(lambda: proc.poll() is not None
                  or daemon.ctr("version", check=False).returncode == 0, 60, "containerd")
        assert proc.poll() is None, (home / "containerd.log").read_text()[-2000:]
        yield daemon
    finally:
        if proc.poll() is None:
            for line in daemon.ctr("tasks", "ls", "-q", check=False).stdout.split():
                daemon.ctr("tasks", "kill", "-s", "SIGKILL", line, check=False)
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        log.close()
        for pid in _procs_mentioning(str(home)):  # shims outlive containerd by design
            os.kill(pid, signal.SIGKILL)
        _wait_for(lambda: not _procs_mentioning(str(home)), 30, "containerd's shims to exit")
        for point in sorted(_mounts_under(home), reverse=True):
            subprocess.run(["umount", point], check=False)
        leftover = _mounts_under(home)
        shutil.rmtree(home, ignore_errors=True)
        for directory in made:
            with contextlib.suppress(OSError):  # not empty: another containerd uses it
                directory.rmdir()
        assert not leftover, f"mounts left under {home}: {leftover}"
        assert not home.exists()


@pytest.fixture(scope="module")
def imported(archives: dict[str, Path], containerd: Containerd) -> Containerd:
    for archive in (archives[APP], archives[PAUSE]):
        containerd.ctr("images", "import", str(archive), timeout=900)
    return containerd


def _config_labels(archive: Path) -> dict[str, str]:
    with tarfile.open(archive) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
        config = json.load(tar.extractfile(manifest[0]["Config"]))  # type: ignore[arg-type]
    labels: dict[str, str] = config["config"].get("Labels") or {}
    return labels


def test_the_archives_import_with_their_tags(imported: Containerd) -> None:
    names = imported.ctr("images", "ls", "-q").stdout.split()
    assert APP in names
    assert PAUSE in names


def test_the_project_commands_run_in_the_image(imported: Containerd) -> None:
    tag = f"settlers-image-test-{os.getpid()}"
    for command in ("settlers", "order-app"):
        done = imported.run(APP, f"{tag}-{command}", command, "--help")
        assert done.returncode == 0, done.stderr
        assert f"Usage: {command}" in done.stdout
    whoami = imported.run(APP, f"{tag}-id", "id", "-u")
    assert whoami.stdout.strip() == "10001"  # the Dockerfile's non-root user


def test_the_image_says_its_base_is_a_local_debian_build(
        archives: dict[str, Path], imported: Containerd) -> None:
    labels = _config_labels(archives[APP])
    assert labels["io.settlers-testbed.local-base"].startswith("mmdebstrap ")
    version = imported.run(APP, f"settlers-image-test-{os.getpid()}-py", "python", "--version")
    assert version.stdout.split() == ["Python", labels["io.settlers-testbed.python-version"]]


def test_pause_stays_up_until_sigterm_then_exits_zero(imported: Containerd) -> None:
    name = f"settlers-pause-test-{os.getpid()}"
    proc = subprocess.Popen(
        ["ctr", "--address", imported.address, "-n", "k8s.io", *imported.run_args(PAUSE, name)],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        _wait_for(lambda: imported.task_status(name) == "RUNNING", 120, "pause to run")
        # SIGCHLD is what a pod's exiting processes send it: reaped, not a reason to stop.
        imported.ctr("tasks", "kill", "-s", "SIGCHLD", name)
        assert imported.task_status(name) == "RUNNING"
        assert proc.poll() is None
        imported.ctr("tasks", "kill", "-s", "SIGTERM", name)
        output, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            imported.ctr("tasks", "kill", "-s", "SIGKILL", name, check=False)
            proc.wait(timeout=60)
    assert proc.returncode == 0, output
    assert "got signal: terminated" in output  # our handler, not a default death


def test_pause_reaps_exited_children() -> None:
    """The Go unit test of the reaper (a pod's orphans are re-parented to pause)."""
    env = {**os.environ, "CGO_ENABLED": "0", "GOTOOLCHAIN": "local"}
    done = subprocess.run(["go", "test", "-count=1", "."], cwd=ROOT / "tools" / "image" / "pause",
                          capture_output=True, text=True, env=env, timeout=600, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_kube_scheduler_image_runs_when_built(
        archives: dict[str, Path], imported: Containerd,
        missing_tool: Callable[[str], NoReturn]) -> None:
    scheduler = next((image for image in archives if "/kube-scheduler:" in image), None)
    if scheduler is None:
        missing_tool("no kube-scheduler binary from tools/k8s/build, so no scheduler image")
    imported.ctr("images", "import", str(archives[scheduler]), timeout=600)
    done = imported.run(scheduler, f"settlers-sched-test-{os.getpid()}",
                        "/usr/local/bin/kube-scheduler", "--version")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["Kubernetes", scheduler.rsplit(":", 1)[1]]
