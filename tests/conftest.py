"""Shared test fixtures."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from typing import NoReturn

import pytest

# A suite started as a background job of a non-interactive shell (`tools/test &`)
# inherits SIGINT *ignored*, and so would every process the tests start: the Ctrl-C
# tests would then wait for an interrupt that never comes. Children of a process that
# handles SIGINT get the default disposition back at exec.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


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
        if _in_ci():
            pytest.fail(f"CI must provide this (tools/setup --k8s): {reason}")
        pytest.skip(reason)

    return missing
