"""Which backend an experiment gets, and the clear refusals (no processes started)."""

from __future__ import annotations

import pytest

from results.config import build_config


def test_schedulers_without_a_real_counterpart_are_refused() -> None:
    from harness.backends import backend_for
    from harness.backends.base import BackendUnavailable

    with pytest.raises(BackendUnavailable, match="optimal"):
        backend_for(build_config(overrides={"backend": "kwok", "schedulers": ["optimal"]}))
