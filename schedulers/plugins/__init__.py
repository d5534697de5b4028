"""kube-scheduler's default plugins, one module each (NAME, a class, ``new()``).

Formulas follow ``pkg/scheduler/framework/plugins`` with the same integer
arithmetic; every module names the upstream file it models.
"""

from __future__ import annotations

__all__: list[str] = []
