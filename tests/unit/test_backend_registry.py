"""Which backend an experiment gets, and the clear refusals (no processes started)."""

from __future__ import annotations

import pytest

from harness.config import build_config


def test_schedulers_without_a_real_counterpart_are_refused() -> None:
    from harness.backends.base import BackendUnavailable
    from harness.backends.registry import open_backend

    with pytest.raises(BackendUnavailable, match="optimal"):
        open_backend(build_config(overrides={"backend": "kwok", "schedulers": ["optimal"]}))
