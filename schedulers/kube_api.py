"""The few Kubernetes API calls our processes make, over the official client.

Objects come back as plain JSON (the client's sanitised form), the same shape
the extender receives from kube-scheduler, so one parser serves both.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["KubernetesAPI"]

JSON = Mapping[str, Any]


class KubernetesAPI:
    """:class:`ClusterAPI` over the official client (kubeconfig or in-cluster)."""

    def __init__(self, kubeconfig: str | None = None) -> None:
        from kubernetes import client, config

        if kubeconfig:
            config.load_kube_config(config_file=kubeconfig)  # type: ignore[no-untyped-call]
        else:
            config.load_incluster_config()  # type: ignore[no-untyped-call]
        self._client = client
        self.core = client.CoreV1Api()
        self.serialise = self.core.api_client.sanitize_for_serialization

    def list_nodes(self) -> list[JSON]:
        return [self.serialise(n) for n in self.core.list_node().items]

    def list_pods(self, field_selector: str = "") -> list[JSON]:
        pods = self.core.list_pod_for_all_namespaces(field_selector=field_selector or None)
        return [self.serialise(p) for p in pods.items]

    def bind(self, namespace: str, pod: str, node: str) -> None:
        c = self._client
        body = c.V1Binding(metadata=c.V1ObjectMeta(name=pod, namespace=namespace),
                           target=c.V1ObjectReference(api_version="v1", kind="Node", name=node))
        # _preload_content=False: the client cannot deserialise the Binding reply
        # (kubernetes-client/python#825) although the bind succeeded.
        self.core.create_namespaced_binding(namespace, body, _preload_content=False)
