"""Scheduling-only phases: the chart's `placeholder` swaps what producers run, never
what the schedulers see; the harness turns it on for placement phases only."""

from __future__ import annotations

from typing import Any

import pytest

from harness.backends.kubernetes import PhaseValues
from harness.backends.kubernetes.helm import Helm, HelmError
from settlers.economy import load_economy

Obj = dict[str, Any]
ECONOMY = load_economy()
PLACEHOLDER = {"image": "localhost/settlers-pause:3.10", "pullPolicy": "Never",
               "runtimeClassName": "settlers-place-only"}


def _producer_pods(objs: list[Obj]) -> dict[str, Obj]:
    return {o["metadata"]["name"]: o["spec"]["template"]["spec"] for o in objs
            if o["kind"] == "Deployment"
            and o["metadata"]["labels"]["app.kubernetes.io/component"] == "producer"}


def _without_container_runtime(pod: Obj) -> Obj:
    """What a scheduler reads of a pod, less what the placeholder is allowed to change."""
    pod = dict(pod)
    pod.pop("runtimeClassName", None)
    c = dict(pod["containers"][0])
    for key in ("image", "imagePullPolicy", "command", "startupProbe", "readinessProbe",
                "livenessProbe"):
        c.pop(key, None)
    return {**pod, "containers": [c]}


def test_placement_phase_runs_the_placeholder_and_nothing_else_changes(helm: Helm) -> None:
    user = {"placeholder": PLACEHOLDER}
    real = _producer_pods(helm.template([user, PhaseValues(ECONOMY).render()]))
    place = _producer_pods(helm.template(
        [user, PhaseValues(ECONOMY, placeholder=True).render()]))
    assert real.keys() == place.keys() and len(place) == len(ECONOMY.names)
    for name, pod in place.items():
        c = pod["containers"][0]
        assert c["image"] == PLACEHOLDER["image"] and c["command"] == ["/pause"]
        assert "readinessProbe" not in c
        assert pod["runtimeClassName"] == "settlers-place-only"
        assert real[name]["containers"][0]["command"] == ["settlers", "serve"]
        assert "runtimeClassName" not in real[name]
        assert _without_container_runtime(pod) == _without_container_runtime(real[name])


def test_measurement_and_unset_image_never_use_the_placeholder(helm: Helm) -> None:
    pinned = PhaseValues(ECONOMY, placeholder=True,
                         placement={f"{n}-0": "node-1" for n in ECONOMY.names})
    assert "placeholder" not in pinned.render()
    # Enabled without an image (a cluster whose values name none): the real producers.
    pods = _producer_pods(helm.template([PhaseValues(ECONOMY, placeholder=True).render()]))
    assert all(p["containers"][0]["command"] == ["settlers", "serve"] for p in pods.values())


def test_schema_rejects_a_misspelt_placeholder(helm: Helm) -> None:
    with pytest.raises(HelmError, match="placeholder"):
        helm.template([{"placeholder": {"imag": "x"}}])
