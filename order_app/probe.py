"""Telling a user, in words, that a target is wrong before measuring anything."""

from __future__ import annotations

from settlers.client import OrderError, ProducerClient
from settlers.wire import WireProtocol

__all__ = ["FATAL_KINDS", "TargetError", "describe_failure", "probe"]

# Failures that repeating cannot fix: nothing listens there, or it refuses the order.
FATAL_KINDS = ("connect", "invalid")


class TargetError(RuntimeError):
    """A target is unreachable or refuses the order outright; the message says which."""


def describe_failure(item: str, target: str, protocol: WireProtocol, kind: str, error: str) -> str:
    error = error.removeprefix(f"{target}: ")  # the client's messages start with it
    if kind == "connect":
        return (f"cannot reach the {item or 'producer'!r} service at {target} over {protocol}: "
                f"{error}. Is `settlers serve --item {item or 'ITEM'} --protocol {protocol}` "
                "running there?")
    return f"the {item!r} service at {target} refused the order: {error}"


async def probe(client: ProducerClient, item: str, target: str, protocol: WireProtocol, *,
                size: int, count: int = 1) -> None:
    """Send one order; raise :class:`TargetError` if it cannot connect or is refused."""
    try:
        await client.produce(item, count=count, size=size)
    except OrderError as exc:
        if exc.kind in FATAL_KINDS:
            message = describe_failure(item, target, protocol, exc.kind, str(exc))
            raise TargetError(message) from None
