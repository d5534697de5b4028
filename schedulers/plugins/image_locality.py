"""ImageLocality: prefer nodes that already have the pod's image, weighted by spread.

Upstream: ``imagelocality/image_locality.go``: sum over containers of
size * (nodes with the image / all nodes), clamped to [23 MiB, 1000 MiB x
containers] and scaled to [0, 100]. Our pods have one container.
"""

from __future__ import annotations

from schedulers.model import Pod
from schedulers.plugins._normalize import MAX_NODE_SCORE
from schedulers.state import ClusterState, NodeInfo

__all__ = ["MAX_THRESHOLD", "MIN_THRESHOLD", "NAME", "ImageLocality", "image_score", "new"]

NAME = "ImageLocality"
_MB = 1024 * 1024
MIN_THRESHOLD = 23 * _MB
MAX_THRESHOLD = 1000 * _MB  # per container


def image_score(summed: int, containers: int = 1) -> int:
    top = MAX_THRESHOLD * containers
    summed = min(max(summed, MIN_THRESHOLD), top)
    return MAX_NODE_SCORE * (summed - MIN_THRESHOLD) // (top - MIN_THRESHOLD)


class ImageLocality:
    name = NAME

    def score(self, pod: Pod, feasible: list[NodeInfo], state: ClusterState) -> list[int] | None:
        if not pod.image:
            return None  # every node would score 0
        total = len(state.infos)
        spread = state.image_nodes.get(pod.image, 0) / total
        return [image_score(int(ni.node.images[pod.image] * spread)
                            if pod.image in ni.node.images else 0) for ni in feasible]


def new() -> ImageLocality:
    return ImageLocality()
