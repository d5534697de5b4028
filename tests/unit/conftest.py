"""Fixtures the unit tests of the Helm chart share."""

from __future__ import annotations

from collections.abc import Callable
from typing import NoReturn

import pytest

from harness.backends.kubernetes.helm import Helm, HelmNotFound


@pytest.fixture(scope="session")
def helm(missing_tool: Callable[[str], NoReturn]) -> Helm:
    """The helm `tools/k8s/build` made (renders only: no cluster)."""
    try:
        return Helm()
    except HelmNotFound as exc:
        missing_tool(str(exc))
