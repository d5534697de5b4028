"""A NodeNetwork as a file: how the harness hands a topology's delays to a binder process.

The trade binder runs as its own process on this machine (kwok's nodes are fake) and
is given ``--network FILE``. A topology has a handful of distinct links but N^2 pairs,
so the file lists the distinct links once and, per node, the index of its link to
every node (``-1`` for itself)::

    {"source": "topology zones",
     "nodes": ["node-1", "node-2", "node-3"],
     "links": [{"delay_ms": 0.1, "bandwidth": 1.25e8}, {"delay_ms": 1.5, "bandwidth": 3.75e7}],
     "matrix": [[-1, 1, 0], [1, -1, 1], [0, 1, -1]]}

A flat network (every pair alike) is ``{"source": ..., "default": {link}}``; beside a
matrix, ``default`` (or null) answers for pairs of nodes the matrix does not name.
Bandwidth is bytes/s, ``null`` = unlimited, as in :class:`schedulers.network.Link`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from schedulers.network import Link, NodeNetwork

__all__ = ["NetworkFileError", "read_network", "write_network"]


class NetworkFileError(ValueError):
    """The file is not a network this module wrote; the message says what is wrong."""


def _link(data: Any, where: str) -> Link:
    if not isinstance(data, dict) or "delay_ms" not in data:
        raise NetworkFileError(f"{where}: a link is {{delay_ms, bandwidth}}, got {data!r}")
    try:
        return Link(float(data["delay_ms"]),
                    None if data.get("bandwidth") is None else float(data["bandwidth"]))
    except (TypeError, ValueError) as exc:
        raise NetworkFileError(f"{where}: {exc}") from None


def _as_dict(link: Link) -> dict[str, float | None]:
    return {"delay_ms": link.delay_ms, "bandwidth": link.bandwidth}


def write_network(network: NodeNetwork, path: Path) -> Path:
    """Write ``network`` to ``path`` (JSON) and return the path."""
    if not network.links:
        doc: dict[str, Any] = {"source": network.source,
                               "default": None if network.default is None
                               else _as_dict(network.default)}
    else:
        nodes = sorted({n for pair in network.links for n in pair})
        distinct: dict[Link, int] = {}
        matrix = [[-1 if a == b else distinct.setdefault(network.link(a, b), len(distinct))
                   for b in nodes] for a in nodes]
        doc = {"source": network.source, "nodes": nodes,
               "links": [_as_dict(link) for link in distinct], "matrix": matrix,
               # For pairs the matrix does not name (None: they are an error).
               "default": None if network.default is None else _as_dict(network.default)}
    path.write_text(json.dumps(doc, separators=(",", ":")))
    return path


def read_network(path: Path) -> NodeNetwork:
    """The network in ``path``; NetworkFileError names what is wrong."""
    try:
        doc = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise NetworkFileError(f"{path}: not a readable network file: {exc}") from None
    if not isinstance(doc, dict):
        raise NetworkFileError(f"{path}: a network file is a JSON object")
    source = str(doc.get("source") or path)
    if "matrix" not in doc:
        default = doc.get("default")
        return NodeNetwork({}, None if default is None else _link(default, str(path)), source)
    nodes, links, matrix = doc.get("nodes"), doc.get("links"), doc.get("matrix")
    if not (isinstance(nodes, list) and isinstance(links, list) and isinstance(matrix, list)
            and len(matrix) == len(nodes)
            and all(isinstance(row, list) and len(row) == len(nodes) for row in matrix)):
        raise NetworkFileError(f"{path}: needs nodes, links and an N x N matrix of link "
                               "indices")
    table = [_link(x, f"{path}: links[{i}]") for i, x in enumerate(links)]
    pairs: dict[tuple[str, str], Link] = {}
    for a, row in zip(nodes, matrix, strict=True):
        for b, k in zip(nodes, row, strict=True):
            if a == b:
                continue
            if not isinstance(k, int) or not 0 <= k < len(table):
                raise NetworkFileError(f"{path}: link index {k!r} for {a} -> {b} is not one "
                                       f"of 0..{len(table) - 1}")
            pairs[(a, b)] = table[k]
    default = doc.get("default")
    return NodeNetwork(pairs, None if default is None else _link(default, f"{path}: default"),
                       source)
