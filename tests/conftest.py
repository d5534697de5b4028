"""Shared test fixtures."""

from __future__ import annotations

import os
import shutil
import signal
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

import pytest

# A suite started as a background job of a non-interactive shell (`tools/test &`)
# inherits SIGINT *ignored*, and so would every process the tests start: the Ctrl-C
# tests would then wait for an interrupt that never comes. Children of a process that
# handles SIGINT get the default disposition back at exec.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

# One terminal width for the whole run, the commands the tests start included. rich (and
# typer's error boxes) wrap what they print at the terminal's width, so a message that
# contains a path would otherwise be cut at a place that depends on the length of
# pytest's temporary directory (a fresh clone's default basetemp failed a test this
# way). The width is wide enough that no path we print wraps. rich reads COLUMNS when
# it builds a Console; typer reads TERMINAL_WIDTH once, at import.
TEST_TERMINAL_WIDTH = 4000
_REAL_WIDTH = shutil.get_terminal_size().columns  # pytest's own output keeps this one
os.environ["COLUMNS"] = os.environ["TERMINAL_WIDTH"] = str(TEST_TERMINAL_WIDTH)
os.environ.pop("LINES", None)


def _pin_typer_width() -> None:
    import typer.rich_utils  # already imported by a plugin: its constant was read then

    typer.rich_utils.MAX_WIDTH = TEST_TERMINAL_WIDTH


_pin_typer_width()


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    # pytest reads COLUMNS too; its progress lines stay at the real terminal's width.
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter._tw.fullwidth = _REAL_WIDTH


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.fixture(scope="session")
def missing_tool() -> Callable[[str], NoReturn]:
    """Call with a reason when an external binary a test needs is absent.

    On a developer machine that skips the test; in CI (CI=true) it fails it, because
    `tools/setup` installs prometheus and builds helm and the Kubernetes binaries there,
    so a missing one is a broken setup, not a reason to pass quietly.
    """

    def missing(reason: str) -> NoReturn:
        _skip_or_fail(reason, "CI must provide this (tools/setup --k8s)")

    return missing


def _skip_or_fail(reason: str, in_ci: str) -> NoReturn:
    """Skip on a developer machine; fail in CI (CI=true), where ``in_ci`` is promised."""
    if _in_ci():
        pytest.fail(f"{in_ci}: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def cgroup_cpu() -> Path:
    """The cgroup root, when this machine lets the emulated cluster cap CPU; else a skip
    saying why (a failure in CI=true, where the runner must be root with the cpu
    controller: a test of enforced capacity that cannot enforce proves nothing)."""
    from harness.backends.emulated.capacity import CGROUP_ROOT, NodeGroups

    probe = NodeGroups.create({"probe": 1000}, scale=1.0)
    probe.remove()
    if not probe.status.enforced:
        _skip_or_fail(f"cannot enforce node capacity here: {probe.status.reason}",
                      "CI must run as root with the cgroup cpu controller")
    return CGROUP_ROOT



# The worked example of docs/schedulers.md ("Bring your own scheduler").
BYO_POLICY = Path(__file__).resolve().parents[1] / "examples" / "byo-policy"


def _install_like_pip(project: Path, site: Path) -> Path:
    """Install a pure-Python project into ``site`` as pip would, without pip or a build.

    What an installed package is to importlib.metadata: its packages on a path entry
    and a ``<name>-<version>.dist-info`` with METADATA and entry_points.txt (here
    written from the project's pyproject.toml). Milliseconds instead of a build; a slow
    test in tests/integration checks that a real ``pip install`` gives the same.
    """
    import tomllib

    meta = tomllib.loads((project / "pyproject.toml").read_text())["project"]
    site.mkdir(parents=True, exist_ok=True)
    for package in project.iterdir():
        if (package / "__init__.py").is_file():
            shutil.copytree(package, site / package.name,
                            ignore=shutil.ignore_patterns("__pycache__"))
    dist = site / f"{meta['name'].replace('-', '_')}-{meta['version']}.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {meta['name']}\nVersion: {meta['version']}\n")
    groups = meta.get("entry-points", {})
    (dist / "entry_points.txt").write_text("".join(
        f"[{group}]\n" + "".join(f"{name} = {value}\n" for name, value in eps.items()) + "\n"
        for group, eps in groups.items()))
    return site


@pytest.fixture(scope="session")
def install_like_pip() -> Callable[[Path, Path], Path]:
    """``install_like_pip(project_dir, site_dir)``: see `_install_like_pip`."""
    return _install_like_pip


@pytest.fixture
def pack_site(tmp_path: Path) -> Path:
    """A path entry where examples/byo-policy (the ``pack`` policy) is installed."""
    return _install_like_pip(BYO_POLICY, tmp_path / "site")
