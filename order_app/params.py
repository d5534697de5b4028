"""Parsing and checking what a user types: sizes, targets, protocols, durations.

Every function raises :class:`UsageError` with a message that says what was wrong
and what would be right, so the CLI can print it as is instead of a traceback.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from settlers.wire import DEFAULT_MAX_SIZE, MAX_COUNT, WireProtocol, parse_protocol

__all__ = [
    "MAX_SIZE",
    "PAPER_SIZES",
    "UsageError",
    "check_count",
    "check_protocol",
    "check_size",
    "check_target",
    "check_targets",
    "parse_duration",
    "parse_size",
    "parse_sizes",
    "resolve_targets",
]

# The sizes of the NetMARKS message-size sweep (16 B .. 1 MB).
PAPER_SIZES: tuple[int, ...] = (16, 256, 4096, 65536, 1048576)

# The producer service refuses bigger units by default (`settlers serve --max-size`);
# checking here too means a typo fails at once instead of after the warm-up.
MAX_SIZE = DEFAULT_MAX_SIZE

_SIZE_RE = re.compile(r"^\s*(\d+)\s*([kKmM]i?[bB]?|[bB])?\s*$")
_UNITS = {"": 1, "b": 1, "k": 2**10, "m": 2**20}
_TARGET_RE = re.compile(r"^(?P<host>\[[0-9a-fA-F:.]+\]|[A-Za-z0-9_.-]+):(?P<port>\d{1,5})$")
_DURATION_RE = re.compile(r"^(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s?)?$")


class UsageError(ValueError):
    """Bad input from the user; the message says what is wrong."""


def parse_size(text: str) -> int:
    """``"4096"``, ``"4KiB"``, ``"64k"``, ``"1MiB"`` -> bytes (binary units)."""
    m = _SIZE_RE.match(text)
    if not m:
        raise UsageError(
            f"size {text!r} is not a number of bytes (examples: 16, 4096, 64KiB, 1MiB)"
        )
    unit = (m.group(2) or "").lower()[:1]
    return check_size(int(m.group(1)) * _UNITS[unit])


def check_size(size: int) -> int:
    """A unit size in bytes: 1 .. 16 MiB."""
    if size < 1:
        raise UsageError(f"size {size} must be at least 1 byte")
    if size > MAX_SIZE:
        raise UsageError(
            f"size {size} bytes is above the 16 MiB limit ({MAX_SIZE} bytes) "
            "that the producer services enforce"
        )
    return size


def parse_sizes(text: str) -> list[int]:
    """A comma-separated size list, e.g. ``"16,256,4096,65536,1048576"``."""
    parts = [p for p in text.split(",")]
    if not text.strip() or any(not p.strip() for p in parts):
        raise UsageError(
            f"size list {text!r} has an empty entry; write sizes separated by commas, "
            "e.g. 16,256,4096,65536,1048576"
        )
    sizes = [parse_size(p) for p in parts]
    if len(set(sizes)) != len(sizes):
        raise UsageError(f"size list {text!r} names the same size twice")
    return sizes


def check_count(count: int, sizes: Sequence[int] = ()) -> int:
    """Units per order: 1..MAX_COUNT, and the whole answer (count x size) within the cap."""
    if not 1 <= count <= MAX_COUNT:
        raise UsageError(f"count {count} is out of range: an order asks for 1..{MAX_COUNT} units")
    for size in sizes:
        if count * size > MAX_SIZE:
            raise UsageError(
                f"count {count} x size {size} = {count * size} bytes is above the 16 MiB "
                f"limit ({MAX_SIZE} bytes) on one answer that the producer services enforce"
            )
    return count


def check_protocol(text: str) -> WireProtocol:
    try:
        return parse_protocol(text)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def check_target(text: str) -> str:
    """A ``host:port`` address (no scheme, no path)."""
    value = text.strip()
    if "://" in value:
        raise UsageError(
            f"target {text!r} should be host:port without a scheme, e.g. 127.0.0.1:9001"
        )
    m = _TARGET_RE.match(value)
    if not m or not 0 < int(m.group("port")) < 65536:
        raise UsageError(f"target {text!r} is not host:port (e.g. 127.0.0.1:9001)")
    return value


def resolve_targets(specs: Sequence[str], items: Sequence[str]) -> dict[str, str]:
    """Map every item to the address its orders go to.

    A spec is ``ITEM=HOST:PORT`` (that item's service) or a bare ``HOST:PORT`` (the
    address for every item without its own spec). With no ``items``, the items are
    the ones named in the specs.
    """
    default: str | None = None
    named: dict[str, str] = {}
    for spec in specs:
        if "=" in spec:
            item, _, addr = spec.partition("=")
            item = item.strip()
            if not item:
                raise UsageError(f"target {spec!r} has an empty item name before '='")
            if item in named:
                raise UsageError(f"item {item!r} has two targets")
            named[item] = check_target(addr)
        else:
            if default is not None:
                raise UsageError(
                    "give at most one bare host:port target; name the others as ITEM=HOST:PORT"
                )
            default = check_target(spec)
    if not specs:
        raise UsageError("give a target: --target HOST:PORT or --target ITEM=HOST:PORT")
    wanted = list(dict.fromkeys(items)) if items else list(named)
    if not wanted:
        raise UsageError("name the item(s) to order with --item (the target is a bare host:port)")
    out: dict[str, str] = {}
    for item in wanted:
        where = named.get(item, default)
        if where is None:
            raise UsageError(
                f"no target for item {item!r}: add --target {item}=HOST:PORT "
                "or a bare --target HOST:PORT"
            )
        out[item] = where
    return out


def parse_duration(text: str) -> float:
    """``"30"``, ``"30s"``, ``"1m30s"``, ``"0.5s"``, ``"2h"`` -> seconds (> 0)."""
    value = text.strip()
    m = _DURATION_RE.match(value)
    if not value or not m or not any(m.groups()):
        raise UsageError(f"duration {text!r} is not like 30s, 1m30s or 2h")
    hours, minutes, seconds = (float(g) if g else 0.0 for g in m.groups())
    total = hours * 3600 + minutes * 60 + seconds
    if total <= 0:
        raise UsageError(f"duration {text!r} must be longer than zero")
    return total


def check_targets(targets: Mapping[str, str], items: Sequence[str]) -> None:
    """Library callers pass the item -> address mapping directly; check it the same way."""
    for item in items:
        if item not in targets:
            raise UsageError(f"no target address for item {item!r} (targets: {sorted(targets)})")
        check_target(targets[item])
