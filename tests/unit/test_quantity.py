"""Kubernetes quantities: CPU to millicores, memory to bytes."""

from __future__ import annotations

import pytest

from settlers.quantity import parse_cpu, parse_memory


@pytest.mark.parametrize(("text", "millis"), [("100m", 100), ("0.5", 500), ("2", 2000), (1, 1000)])
def test_parse_cpu(text: str | int, millis: int) -> None:
    assert parse_cpu(text) == millis


@pytest.mark.parametrize(("text", "nbytes"), [("64Mi", 64 * 2**20), ("1Gi", 2**30),
                                              ("1k", 1000), ("512", 512)])
def test_parse_memory(text: str, nbytes: int) -> None:
    assert parse_memory(text) == nbytes


def test_bad_quantities_are_refused() -> None:
    with pytest.raises(ValueError, match="invalid CPU quantity"):
        parse_cpu("1 core")
    with pytest.raises(ValueError, match="invalid memory quantity"):
        parse_memory("64MB")
