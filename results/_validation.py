"""pydantic's validation errors as (where, message, type) a user can read."""

from __future__ import annotations

from pydantic import ValidationError

__all__ = ["joined", "problems"]


def problems(exc: ValidationError) -> list[tuple[str, str, str]]:
    """Each error's dotted location ("" at the top), its message without pydantic's
    "Value error, " prefix (our validators' own words), and its type."""
    return [(".".join(str(p) for p in e["loc"]),
             str(e["msg"]).removeprefix("Value error, "), e["type"]) for e in exc.errors()]


def joined(exc: ValidationError) -> str:
    """Every problem on one line: "where: message; ..." (the file-level errors' text)."""
    return "; ".join(f"{where}: {msg}" if where else msg for where, msg, _ in problems(exc))
