"""The few Kubernetes API calls our processes make, over the official client.

Objects come back as plain JSON (the client's sanitised form), the same shape
the extender receives from kube-scheduler, so one parser serves both.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from schedulers.k8s_json import pod_key

__all__ = ["KubernetesAPI"]

JSON = Mapping[str, Any]
# Ask the API server for objects' metadata only (the `kubectl get` table machinery's
# "as=PartialObjectMetadataList"), falling back to full JSON if it cannot.
_METADATA_ONLY = ("application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io,"
                  "application/json")


class KubernetesAPI:
    """:class:`ClusterAPI` over the official client (kubeconfig or in-cluster)."""

    def __init__(self, kubeconfig: str | None = None, *, connections: int = 4) -> None:
        """``connections``: HTTP connections kept open to the API server, at least as
        many as threads calling it at once (more callers: connections are opened and
        dropped per call, with a urllib3 warning each)."""
        from kubernetes import client, config

        if connections < 1:
            raise ValueError(f"connections must be >= 1, got {connections}")
        if kubeconfig:
            config.load_kube_config(config_file=kubeconfig)  # type: ignore[no-untyped-call]
        else:
            config.load_incluster_config()  # type: ignore[no-untyped-call]
        cfg = client.Configuration.get_default_copy()
        cfg.connection_pool_maxsize = connections
        self._client = client
        self.core = client.CoreV1Api(client.ApiClient(cfg))
        self.serialise = self.core.api_client.sanitize_for_serialization

    # Lists come back as the API server's JSON (_preload_content=False) instead of
    # client models turned back into JSON: for 10 000 pods the models cost seconds of
    # CPU per list (bench/throughput.py), the JSON parse a fraction of that.
    def list_nodes(self) -> list[JSON]:
        return _items(self.core.list_node(_preload_content=False))

    def list_pods(self, field_selector: str = "") -> list[JSON]:
        return _items(self.core.list_pod_for_all_namespaces(
            field_selector=field_selector or None, _preload_content=False))

    def list_pod_keys(self, field_selector: str = "") -> list[str]:
        """``namespace/name`` of the pods matching ``field_selector``, from their
        metadata only (a PartialObjectMetadataList: ~10x fewer bytes than the pods, for
        the firmament binder's settle polls over thousands of pending pods)."""
        reply = self.core.list_pod_for_all_namespaces(
            field_selector=field_selector or None, _preload_content=False,
            _headers={"Accept": _METADATA_ONLY})
        return [pod_key(p) for p in _items(reply)]

    def bind_many(self, binds: Sequence[tuple[str, str, str]], concurrency: int
                  ) -> list[str | None]:
        """Bind every (namespace, pod, node), ``concurrency`` at a time, over one asyncio
        session (schedulers.bulk_bind); per bind None or its error, in order."""
        from schedulers.bulk_bind import bind_many

        return bind_many(self.core.api_client.configuration, binds, concurrency)

    def bind(self, namespace: str, pod: str, node: str) -> None:
        # A plain dict body: no client models to build and serialise per bind.
        body: Any = {"apiVersion": "v1", "kind": "Binding",
                "metadata": {"name": pod, "namespace": namespace},
                "target": {"apiVersion": "v1", "kind": "Node", "name": node}}
        # _preload_content=False: the client cannot deserialise the Binding reply
        # (kubernetes-client/python#825) although the bind succeeded.
        reply: Any = self.core.create_namespaced_binding(namespace, body,
                                                         _preload_content=False)
        # Read the reply so that its connection goes back to the pool: unread, every bind
        # opened a new TLS connection (~2x the API server's CPU per bind, measured).
        reply.data  # noqa: B018
        reply.release_conn()


def _items(response: Any) -> list[JSON]:
    items: list[JSON] = json.loads(response.data).get("items") or []
    response.release_conn()  # back to the pool (see bind)
    return items
