"""The chart's traffic interval (`traffic.since` / `traffic.window`): schema-checked
values, the args the NetMARKS extender and firmament get, and clear errors for the
combinations that make no sense. helm as in test_chart.py (skips without it)."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from harness.backends.kubernetes import PhaseValues
from harness.backends.kubernetes.helm import CHART_DIR, Helm, HelmError
from settlers.economy import load_economy

Obj = dict[str, Any]
EXTENDER = "exp-settlers-testbed-netmarks-extender"
FIRMAMENT = "exp-settlers-testbed-firmament"


def _validator() -> Any:
    import jsonschema

    schema = json.loads((CHART_DIR / "values.schema.json").read_text())
    return jsonschema.Draft7Validator(schema)


@pytest.mark.parametrize("traffic", [
    {"since": ""}, {"since": 1764629403}, {"since": 1764629403.25}, {"since": "1764629403.25"},
    {"since": "2026-12-01T22:50:03Z"}, {"since": "2026-12-01T22:50:03.250+01:00"},
    {"window": 0}, {"window": 30}, {"window": 2.5}, {},
])
def test_schema_accepts_times_and_windows(traffic: Obj) -> None:
    assert not list(_validator().iter_errors({"traffic": traffic}))


@pytest.mark.parametrize("traffic", [
    {"since": "yesterday"}, {"since": "2026-12-01T22:50:03"}, {"since": -1},
    {"window": -5}, {"window": "300"}, {"sinse": 5},
])
def test_schema_refuses_what_is_not_a_time_or_a_window(traffic: Obj) -> None:
    assert list(_validator().iter_errors({"traffic": traffic}))


def test_values_yaml_defaults_to_since_with_no_window() -> None:
    values = yaml.safe_load((CHART_DIR / "values.yaml").read_text())
    assert values["traffic"] == {"since": "", "window": 0}
    assert "window" not in values["netmarks"]["extender"]


def _args(helm: Helm, values: Obj) -> dict[str, list[str]]:
    """Deployment name -> its first container's args, both schedulers enabled."""
    objs = helm.template([{"netmarks": {"enabled": True}, "firmament": {"enabled": True},
                           **values}], release="exp", namespace="bench")
    return {o["metadata"]["name"]: o["spec"]["template"]["spec"]["containers"][0]["args"]
            for o in objs if o["kind"] == "Deployment"
            and o["metadata"]["name"] in (EXTENDER, FIRMAMENT)}


def _traffic_args(args: list[str]) -> list[str]:
    return [a for a in args if a.startswith(("--since", "--window"))]


@pytest.mark.parametrize(("traffic", "expected"), [
    ({}, []),  # since the scheduler's own start
    ({"since": "2026-12-01T22:50:03Z"}, ["--since=2026-12-01T22:50:03Z"]),
    ({"since": 1764629403}, ["--since=1764629403.000"]),  # never 1.764629403e+09
    ({"window": 30}, ["--window=30"]),
])
def test_both_schedulers_get_the_same_interval(helm: Helm, traffic: Obj,
                                               expected: list[str]) -> None:
    args = _args(helm, {"traffic": traffic})
    assert set(args) == {EXTENDER, FIRMAMENT}
    for name, a in args.items():
        assert _traffic_args(a) == expected, name


def test_the_harness_phase_passes_the_warm_up_start(helm: Helm) -> None:
    phase = PhaseValues(economy=load_economy(), scheduler_name="netmarks-scheduler",
                        component="netmarks", traffic_since=1764629403.25)
    objs = helm.template([phase.render()], release="exp", namespace="bench")
    (ext,) = [o for o in objs if o["kind"] == "Deployment"
              and o["metadata"]["name"] == EXTENDER]
    args = ext["spec"]["template"]["spec"]["containers"][0]["args"]
    assert _traffic_args(args) == ["--since=2025-12-01T22:50:03.250Z"]


@pytest.mark.parametrize(("values", "message"), [
    ({"traffic": {"since": "2026-12-01T22:50:03Z", "window": 30}},
     "traffic.since (2026-12-01T22:50:03Z) and traffic.window (30) are exclusive"),
    ({"netmarks": {"extender": {"window": 300}}},
     "netmarks.extender.window was replaced by traffic.window"),
    ({"traffic": {"since": "last week"}}, "/traffic/since"),
    ({"traffic": {"window": -1}}, "/traffic/window"),
])
def test_invalid_combinations_fail_with_a_clear_message(helm: Helm, values: Obj,
                                                         message: str) -> None:
    with pytest.raises(HelmError) as info:
        helm.template([values])
    assert message in str(info.value)
