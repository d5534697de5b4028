"""The extender's optional ``bind`` verb: bind through the API, and know it at once.

kube-scheduler binds asynchronously and the pod watch reports the binding a
little later, so a pod scheduled right after its partner may be scored before
the extender has seen the partner's node - exactly the situation of a
Deployment burst. With ``bindVerb: bind`` kube-scheduler hands the binding to
the extender, which records the placement the moment the API server accepts it.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

from schedulers.kube_api import KubernetesAPI

__all__ = ["Binder", "KubernetesBinder"]


class Binder(Protocol):
    async def bind(self, namespace: str, pod: str, node: str) -> None:
        """Bind or raise; the message of what was raised is returned to kube-scheduler."""


class KubernetesBinder:
    def __init__(self, kubeconfig: str | None = None) -> None:
        self.api = KubernetesAPI(kubeconfig)

    async def bind(self, namespace: str, pod: str, node: str) -> None:
        # The client is synchronous: keep the event loop free for /prioritize.
        await asyncio.to_thread(self.api.bind, namespace, pod, node)
