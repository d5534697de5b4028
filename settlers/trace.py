"""The trace an order carries back: which pod served each hop, for whom.

A trace is a flat list of hops; the first hop is the pod that answered the order,
then the traces of its inputs in input order. With the placement (pod -> node)
known, a hop is an inter-node transfer exactly when ``caller`` and ``pod`` sit on
different nodes, so the harness can count transfers after the fact, and a relayout
never needs the pods to know where they run.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["ORDER_CALLER", "Hop", "decode_trace", "encode_trace", "inter_node_hops"]

# The caller name recorded for the hop that answered the order app itself.
ORDER_CALLER = ""


@dataclass(frozen=True, slots=True)
class Hop:
    item: str
    pod: str
    caller: str
    bytes: int
    elapsed_ms: float = 0.0

    def to_json(self) -> list[Any]:
        return [self.item, self.pod, self.caller, self.bytes, round(self.elapsed_ms, 3)]

    @classmethod
    def from_json(cls, data: Any) -> Hop:
        if isinstance(data, dict):
            return cls(**data)
        item, pod, caller, nbytes, elapsed = data
        return cls(str(item), str(pod), str(caller), int(nbytes), float(elapsed))


# Built once: json.dumps with arguments builds a new encoder on every call.
_ENCODER = json.JSONEncoder(separators=(",", ":"))


def encode_trace(hops: Iterable[Hop]) -> str:
    """Compact JSON (a list of 5-element lists); small enough for an HTTP header."""
    return _ENCODER.encode([h.to_json() for h in hops])


def decode_trace(text: str | bytes) -> list[Hop]:
    data = json.loads(text)
    if not isinstance(data, list):
        raise ValueError("a trace must be a JSON list of hops")
    return [Hop.from_json(h) for h in data]


def inter_node_hops(trace: Sequence[Hop], node_of: Mapping[str, str]) -> list[Hop]:
    """Hops whose caller and server pods are placed on different nodes.

    The order app's own hop (caller ``ORDER_CALLER``) is never inter-node: the order
    enters the cluster at the pod that serves it. Pods missing from ``node_of`` raise
    KeyError, since a silent miss would undercount.
    """
    out = []
    for hop in trace:
        if hop.caller == ORDER_CALLER:
            continue
        if node_of[hop.caller] != node_of[hop.pod]:
            out.append(hop)
    return out


def as_records(trace: Sequence[Hop]) -> list[dict[str, Any]]:
    return [asdict(h) for h in trace]
