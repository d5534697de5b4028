"""Policies installed as Python packages, found by entry point: the way in for a user's own.

A distribution declares, in its pyproject.toml::

    [project.entry-points."settlers_testbed.policies"]
    pack = "settlers_pack.policy"

and ``settlers_pack.policy`` exposes ``NAME = "pack"``, ``new(*, seed=None, ...)`` and,
optionally, ``SPEC`` (a ``schedulers.spec.PolicySpec``). Installing it is all it takes:
no edit to this project. Only entry-point *metadata* is read to list names; a plug-in's
module is imported when its policy is asked for, so processes that never ask (the
NetMARKS extender) never pay for plug-ins. Every error about a plug-in names its
distribution and entry point, so the user knows which package to fix or uninstall.
"""

from __future__ import annotations

import sys
from collections.abc import Collection
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from importlib.metadata import EntryPoint

__all__ = ["GROUP", "InstalledPolicy", "PluginError", "installed_policies"]

GROUP = "settlers_testbed.policies"


class PluginError(ValueError):
    """An installed policy plug-in is broken; the message names its distribution and
    entry point. A ValueError, like an unknown name: the user's input is what is wrong."""


@dataclass(frozen=True)
class InstalledPolicy:
    """One entry point of the group: a policy name and where it comes from."""

    name: str
    value: str             # "package.module" (or "package.module:object")
    distribution: str      # "settlers-pack-policy 0.1.0", or "unknown distribution"
    entry_point: EntryPoint

    @property
    def origin(self) -> str:
        return f"entry point '{self.name} = {self.value}' of {self.distribution}"

    def error(self, problem: str) -> PluginError:
        return PluginError(f"plug-in policy {self.name!r} ({self.origin}, group {GROUP}): "
                           f"{problem}")

    def load(self) -> object:
        """The module (or object) the entry point names; PluginError if it cannot load."""
        try:
            return self.entry_point.load()
        except Exception as exc:  # whatever the plug-in's import raises
            raise self.error(f"cannot import {self.value}: {type(exc).__name__}: {exc}"
                             ) from exc


def installed_policies(builtin: Collection[str]) -> dict[str, InstalledPolicy]:
    """Plug-in name -> entry point, sorted by name; PluginError on a name clash.

    Read from the distributions on ``sys.path`` as it is now (a test or a user may
    add a path at run time); the same path reads the metadata once.
    """
    return _scan(tuple(sys.path), frozenset(builtin))


@cache
def _scan(path: tuple[str, ...], builtin: frozenset[str]) -> dict[str, InstalledPolicy]:
    from importlib.metadata import entry_points

    del path  # the cache key: entry_points() reads sys.path itself
    found: dict[str, InstalledPolicy] = {}
    for ep in entry_points(group=GROUP):
        dist = ep.dist
        where = (f"distribution {dist.name} {dist.version}" if dist is not None
                 else "an unknown distribution")
        plugin = InstalledPolicy(ep.name, ep.value, where, ep)
        if ep.name in builtin:
            raise plugin.error(
                f"{ep.name!r} is a built-in policy; rename the entry point (or uninstall "
                "the distribution)")
        if ep.name in found:
            raise plugin.error(f"{found[ep.name].origin} declares the same name; rename one")
        found[ep.name] = plugin
    return dict(sorted(found.items()))
