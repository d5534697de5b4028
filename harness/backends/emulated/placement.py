"""Placements (pod name -> node name): validation, spread, random, and files.

A placement file is YAML or JSON mapping pod to node (``{flour-0: node-2, ...}``),
or ``{placement: {...}}`` as the harness records it.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable, Mapping
from pathlib import Path

import yaml

__all__ = ["load_placement", "node_names", "random_placement", "spread_placement",
           "validate_placement"]


def node_names(n: int) -> list[str]:
    if n < 1:
        raise ValueError(f"a cluster needs at least one node, got {n}")
    return [f"node-{i}" for i in range(1, n + 1)]


def spread_placement(pods: Iterable[str], nodes: list[str]) -> dict[str, str]:
    """Round robin in pod order: deterministic, every node used."""
    return {pod: nodes[i % len(nodes)] for i, pod in enumerate(pods)}


def random_placement(pods: Iterable[str], nodes: list[str],
                     seed: int | None = None) -> dict[str, str]:
    rng = random.Random(seed)
    return {pod: rng.choice(nodes) for pod in pods}


def validate_placement(placement: Mapping[str, str], pods: Iterable[str], nodes: Iterable[str],
                       *, complete: bool) -> dict[str, str]:
    """Check names; with ``complete`` every pod must be placed. Returns a plain dict."""
    pods, nodes = list(pods), set(nodes)
    unknown_pods = sorted(set(placement) - set(pods))
    if unknown_pods:
        raise ValueError(f"placement names unknown pod(s) {', '.join(unknown_pods)}; "
                         f"pods are {', '.join(pods)}")
    bad_nodes = sorted({n for n in placement.values() if n not in nodes})
    if bad_nodes:
        raise ValueError(f"placement uses unknown node(s) {', '.join(map(str, bad_nodes))}; "
                         f"nodes are {', '.join(sorted(nodes))}")
    missing = [p for p in pods if p not in placement]
    if complete and missing:
        raise ValueError(f"placement leaves pod(s) unplaced: {', '.join(missing)}")
    return {str(k): str(v) for k, v in placement.items()}


def load_placement(path: Path) -> dict[str, str]:
    try:
        text = path.read_text()
    except OSError as exc:
        raise ValueError(f"{path}: cannot read placement file: {exc.strerror}") from exc
    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise ValueError(f"{path}: not valid {'JSON' if path.suffix == '.json' else 'YAML'}: "
                         f"{exc}") from exc
    if isinstance(data, dict) and isinstance(data.get("placement"), dict):
        data = data["placement"]
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise ValueError(f"{path}: a placement file maps pod name -> node name, "
                         "e.g. {flour-0: node-1, grain-0: node-2}")
    return {str(k): v for k, v in data.items()}
