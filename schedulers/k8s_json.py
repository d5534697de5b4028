"""Kubernetes JSON (v1.Pod, v1.Node as the API server serialises them) -> our model.

Used by the extender (kube-scheduler sends Go-field-name JSON whose embedded
v1.Pod/v1.NodeList use the normal API field names) and by the firmament
custom scheduler (the kubernetes client's objects, sanitised to the same JSON).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from schedulers.model import (
    Node,
    NodeSelectorRequirement,
    NodeSelectorTerm,
    Pod,
    PodAffinityTerm,
    PreferredNodeTerm,
    Taint,
    Toleration,
)
from settlers.quantity import parse_cpu, parse_memory

__all__ = ["K8sObjectError", "node_from_json", "pod_from_json", "pod_key", "workload_of"]

# Pods made by a Deployment are "<deployment>-<pod-template-hash>-<5 chars>".
_DEPLOYMENT_POD = re.compile(r"^(.+)-[a-z0-9]{5,10}-[a-z0-9]{5}$")
_INDEXED = re.compile(r"^(.+)-\d+$")


class K8sObjectError(ValueError):
    """A Kubernetes object is not shaped as expected; the message says where."""


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    meta = obj.get("metadata")
    if not isinstance(meta, Mapping) or not isinstance(meta.get("name"), str):
        raise K8sObjectError("object has no metadata.name")
    return meta


def pod_key(obj: Mapping[str, Any]) -> str:
    """``namespace/name``: unique across the cluster."""
    meta = _meta(obj)
    return f"{meta.get('namespace') or 'default'}/{meta['name']}"


def workload_of(obj: Mapping[str, Any], label_key: str = "app") -> str:
    """The pod's workload: its ``label_key`` label, else its owner, else its name's stem."""
    meta = _meta(obj)
    labels = meta.get("labels") or {}
    if isinstance(labels, Mapping) and labels.get(label_key):
        return str(labels[label_key])
    for owner in meta.get("ownerReferences") or []:
        if not isinstance(owner, Mapping) or not owner.get("name"):
            continue
        name = str(owner["name"])
        # A ReplicaSet is "<deployment>-<pod-template-hash>"; Istio names the workload
        # after the Deployment.
        if owner.get("kind") == "ReplicaSet" and "-" in name:
            return name.rsplit("-", 1)[0]
        return name
    name = str(meta["name"])
    for pattern in (_DEPLOYMENT_POD, _INDEXED):
        m = pattern.match(name)
        if m:
            return m.group(1)
    return name


def _requests(spec: Mapping[str, Any]) -> tuple[int, int]:
    cpu = mem = 0
    for c in spec.get("containers") or []:
        req = ((c or {}).get("resources") or {}).get("requests") or {}
        try:
            if "cpu" in req:
                cpu += parse_cpu(req["cpu"])
            if "memory" in req:
                mem += parse_memory(req["memory"])
        except ValueError as exc:
            raise K8sObjectError(f"container {c.get('name')!r}: {exc}") from None
    return cpu, mem


def _term(raw: Mapping[str, Any]) -> NodeSelectorTerm:
    exprs = tuple(
        NodeSelectorRequirement(e["key"], e["operator"], tuple(e.get("values") or ()))
        for e in raw.get("matchExpressions") or [])
    return NodeSelectorTerm(exprs)


def pod_from_json(obj: Mapping[str, Any], label_key: str = "app",
                  *, name: str | None = None) -> Pod:
    meta = _meta(obj)
    spec = obj.get("spec") or {}
    cpu, mem = _requests(spec)
    affinity = spec.get("affinity") or {}
    node_aff = affinity.get("nodeAffinity") or {}
    required = (node_aff.get("requiredDuringSchedulingIgnoredDuringExecution") or {})
    pod_terms: list[PodAffinityTerm] = []
    for kind, anti in (("podAffinity", False), ("podAntiAffinity", True)):
        for pref in (affinity.get(kind) or {}).get(
                "preferredDuringSchedulingIgnoredDuringExecution") or []:
            term = pref.get("podAffinityTerm") or {}
            labels = (term.get("labelSelector") or {}).get("matchLabels") or {}
            pod_terms.append(PodAffinityTerm(tuple(sorted(labels.items())),
                                             term.get("topologyKey", ""),
                                             int(pref.get("weight", 1)), anti))
    containers = spec.get("containers") or [{}]
    return Pod(
        name=name or str(meta["name"]),
        workload=workload_of(obj, label_key),
        cpu_m=cpu,
        memory=mem,
        labels=dict(meta.get("labels") or {}),
        tolerations=[Toleration(t.get("key", ""), t.get("operator", "Equal"),
                                t.get("value", ""), t.get("effect", ""))
                     for t in spec.get("tolerations") or []],
        node_selector=dict(spec.get("nodeSelector") or {}),
        required_node_terms=[_term(t) for t in required.get("nodeSelectorTerms") or []],
        node_preferences=[PreferredNodeTerm(int(p.get("weight", 1)), _term(p.get("preference")
                                                                           or {}))
                          for p in node_aff.get(
                              "preferredDuringSchedulingIgnoredDuringExecution") or []],
        pod_affinity=pod_terms,
        image=str((containers[0] or {}).get("image", "")),
        priority=int(spec.get("priority") or 0),
        namespace=str(meta.get("namespace") or "default"),
    )


def node_from_json(obj: Mapping[str, Any]) -> Node:
    meta = _meta(obj)
    status = obj.get("status") or {}
    alloc = status.get("allocatable") or status.get("capacity") or {}
    try:
        cpu = parse_cpu(alloc.get("cpu", "0"))
        mem = parse_memory(alloc.get("memory", "0"))
        pods = int(alloc.get("pods", 110))
    except ValueError as exc:
        raise K8sObjectError(f"node {meta['name']}: bad allocatable: {exc}") from None
    spec = obj.get("spec") or {}
    images: dict[str, int] = {}
    for img in status.get("images") or []:
        for n in img.get("names") or []:
            images[n] = int(img.get("sizeBytes", 0))
    return Node(
        name=str(meta["name"]), cpu_m=cpu, memory=mem, max_pods=pods,
        labels=dict(meta.get("labels") or {}),
        taints=[Taint(t["key"], t.get("value", ""), t.get("effect", "NoSchedule"))
                for t in spec.get("taints") or []],
        unschedulable=bool(spec.get("unschedulable", False)),
        images=images,
    )
