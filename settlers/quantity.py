"""Kubernetes resource quantities: ``"500m"`` CPU, ``"64Mi"`` memory, as plain integers.

The economy's resource requests, a node's allocatable resources (read back from the
Kubernetes API) and the CLI's node sizes are all written as Kubernetes quantities;
one parser keeps them agreeing on what ``"1.5"`` or ``"1Gi"`` means. CPU becomes
millicores and memory bytes, the units of :mod:`schedulers.model`.
"""

from __future__ import annotations

import re

__all__ = ["parse_cpu", "parse_memory"]

_CPU_RE = re.compile(r"^([0-9]+(?:\.[0-9]+)?)(m?)$")
_MEM_RE = re.compile(r"^([0-9]+(?:\.[0-9]+)?)(Ki|Mi|Gi|Ti|k|M|G|T)?$")
_MEM_UNITS = {
    None: 1, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12,
    "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40,
}


def parse_cpu(value: str | int | float) -> int:
    """Kubernetes CPU quantity -> millicores ("100m" -> 100, "1.5" -> 1500)."""
    if isinstance(value, bool):
        raise ValueError(f"invalid CPU quantity {value!r}")
    if isinstance(value, int | float):
        return round(float(value) * 1000)
    m = _CPU_RE.match(value.strip())
    if not m:
        raise ValueError(f"invalid CPU quantity {value!r} (expected e.g. 100m or 0.5)")
    number = float(m.group(1))
    return round(number) if m.group(2) == "m" else round(number * 1000)


def parse_memory(value: str | int | float) -> int:
    """Kubernetes memory quantity -> bytes ("64Mi" -> 67108864)."""
    if isinstance(value, bool):
        raise ValueError(f"invalid memory quantity {value!r}")
    if isinstance(value, int | float):
        return int(value)
    m = _MEM_RE.match(value.strip())
    if not m:
        raise ValueError(f"invalid memory quantity {value!r} (expected e.g. 64Mi or 1Gi)")
    return int(float(m.group(1)) * _MEM_UNITS[m.group(2)])
