"""The NetMARKS kube-scheduler extender: a real HTTP server speaking extender/v1 JSON."""

from __future__ import annotations

from schedulers.extender.app import make_app
from schedulers.extender.binder import Binder, KubernetesBinder
from schedulers.extender.placements import KubernetesPodWatcher, Placements
from schedulers.extender.traffic_source import PrometheusTraffic, StaticTraffic, TrafficSource

__all__ = [
    "Binder",
    "KubernetesBinder",
    "KubernetesPodWatcher",
    "Placements",
    "PrometheusTraffic",
    "StaticTraffic",
    "TrafficSource",
    "make_app",
]
