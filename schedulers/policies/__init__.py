"""Placement policies, one module each (NAME and ``new(...)``); see schedulers.registry."""

from __future__ import annotations

__all__: list[str] = []
