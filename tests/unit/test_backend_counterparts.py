"""The kwok and kubernetes backends read the policy table: the maps they derive equal the
ones they used to keep by hand, and schedulers a user names (an external scheduler by
its schedulerName, an extender by URL) are validated before anything starts."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from typer.testing import CliRunner

from harness.backends.base import BackendUnavailable
from harness.backends.k8s import chart_keys, counterpart, require_counterpart, scheduler_names
from harness.backends.k8s.hostsched import check_listening, host_schedulers
from harness.backends.k8s.workloads import unbound_message
from harness.backends.kubernetes import PhaseValues
from harness.backends.kwok import KwokPlacer
from harness.backends.kwok.backend import KwokOptions, open_kwok
from harness.cli import app
from results.config import ConfigError, build_config
from schedulers.registry import builtin_policies
from schedulers.spec import ExtenderCall, KubernetesCounterpart
from settlers.economy import load_economy

# What the backends kept by hand before they read the table (issue 12).
KWOK_SCHEDULERS = {
    "kube_default": "default-scheduler",
    "netmarks": "netmarks-scheduler",
    "firmament": "firmament",
    "trade": "trade",  # issue 15: the table's first policy added after the hand-kept maps
    "diktyo": "diktyo-scheduler",  # issue 15 too, of kind "plugins"
}
DEFAULT_SCHEDULER_NAMES = {"kube_default": "", "netmarks": "netmarks-scheduler",
                           "firmament": "firmament", "trade": "trade",
                           "diktyo": "diktyo-scheduler"}


def test_the_maps_derived_from_the_table_equal_the_hand_kept_ones() -> None:
    assert scheduler_names(builtin_policies()) == KWOK_SCHEDULERS
    assert scheduler_names(builtin_policies(), chart=True) == DEFAULT_SCHEDULER_NAMES
    assert chart_keys() == ("netmarks", "firmament")
    netmarks = counterpart("netmarks")
    assert netmarks is not None and netmarks.scheduler_name == "netmarks-scheduler"
    assert counterpart("random") is None and counterpart("no-such-policy") is None


def test_phase_values_enable_one_chart_component_and_turn_the_others_off() -> None:
    economy = load_economy()
    assert {k: PhaseValues(economy, component="firmament").render()[k]
            for k in chart_keys()} == {"netmarks": {"enabled": False},
                                       "firmament": {"enabled": True}}
    off = PhaseValues(economy).render()
    assert off["netmarks"] == off["firmament"] == {"enabled": False}
    with pytest.raises(ValueError, match="no scheduler component 'pack'"):
        PhaseValues(economy, component="pack").render()


def test_a_model_only_policy_is_refused_with_the_choices() -> None:
    with pytest.raises(BackendUnavailable) as err:
        require_counterpart("random", {}, "kwok")
    text = str(err.value)
    assert "random has no real-scheduler counterpart on the kwok backend" in text
    assert "kube_default, netmarks, firmament" in text and "--external-scheduler" in text
    with pytest.raises(BackendUnavailable, match="counterpart on the kwok backend"):
        open_kwok(load_economy(), KwokOptions(schedulers=("kube_default", "optimal")))


def test_external_schedulers_join_the_run_and_become_counterparts() -> None:
    cfg = build_config(overrides={
        "backend": "kwok", "external_schedulers": {"mine": "my-scheduler"},
        "external_extenders": {"ext": {"url": "http://127.0.0.1:9/", "weight": 3}}})
    assert cfg.schedulers == ["kube_default", "mine", "ext"]  # not the default netmarks
    mine, ext = cfg.counterparts()["mine"], cfg.counterparts()["ext"]
    assert (mine.scheduler_name, mine.kind, mine.external) == ("my-scheduler", "custom", True)
    assert ext.extender == ExtenderCall("http://127.0.0.1:9/", 3)
    assert (ext.scheduler_name, ext.external) == ("ext", False)  # the harness runs its profile
    kept = build_config(overrides={"backend": "kwok", "schedulers": ["netmarks"],
                                   "external_schedulers": {"mine": "my-scheduler"}})
    assert kept.schedulers == ["kube_default", "netmarks", "mine"]
    again = type(cfg).model_validate(cfg.model_dump(mode="json"))  # --resume reads it back
    assert again == cfg


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"external_schedulers": {"mine": "my-scheduler"}},
         "mine: a scheduler you run places pods on a Kubernetes control plane, and the "
         "local backend has no model of it"),
        ({"backend": "kwok", "external_schedulers": {"netmarks": "x"}},
         "external scheduler name 'netmarks' is taken"),
        ({"backend": "kwok", "external_schedulers": {"a": "x"}, "external_extenders": {
            "a": "http://127.0.0.1:9/"}}, "external scheduler name 'a' is taken"),
        ({"backend": "kwok", "external_schedulers": {"mine": "My_Scheduler"}},
         "external scheduler 'mine': scheduler_name 'My_Scheduler' is not a valid "
         "schedulerName"),
        ({"backend": "kwok", "external_extenders": {"my_ext": "http://127.0.0.1:9/"}},
         "external extender 'my_ext' (its name is the profile's schedulerName)"),
        ({"backend": "kwok", "external_extenders": {"e": "ftp://127.0.0.1/"}},
         "external_extenders.e.url"),
        ({"backend": "kwok", "external_extenders": {"e": {"url": "http://h/", "weight": 0}}},
         "external_extenders.e.weight"),
        ({"backend": "kwok", "schedulers": ["mine"]}, "unknown scheduler 'mine'"),
    ],
)
def test_bad_external_schedulers_name_the_problem(overrides: dict[str, object],
                                                  fragment: str) -> None:
    with pytest.raises(ConfigError) as err:
        build_config(overrides=overrides)
    assert fragment in str(err.value)


def test_a_file_may_give_a_command_and_extender_options(tmp_path: Path) -> None:
    path = tmp_path / "exp.yaml"
    path.write_text("backend: kwok\n"
                    "external_schedulers:\n"
                    "  mine: {scheduler_name: my-scheduler, command: [./sched, '{kubeconfig}']}\n"
                    "external_extenders:\n"
                    "  ext: {url: 'http://127.0.0.1:9/', filter_verb: filter}\n")
    found = build_config(file=path).counterparts()
    assert found["mine"].command == ("./sched", "{kubeconfig}")
    assert not found["mine"].external  # the harness starts it
    assert found["ext"].extender is not None and found["ext"].extender.filter_verb == "filter"


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--external-scheduler", "mine"], "--external-scheduler 'mine': expected "
                                          "NAME=SCHEDULER_NAME"),
        (["--backend", "kwok", "--external-command", "x=./s"],
         "--external-command x=...: no --external-scheduler x=SCHEDULER_NAME"),
        (["--backend", "kwok", "--external-extender", "e=http://127.0.0.1:9/,wait=2"],
         "after the URL only ',weight=N'"),
        (["--external-scheduler", "mine=my-scheduler"],
         "the local backend has no model of it"),
    ],
)
def test_cli_errors(args: list[str], fragment: str, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["run", *args, "--out", str(tmp_path / "run")],
                                terminal_width=1000)
    assert result.exit_code == 2, result.output
    assert fragment in " ".join(result.output.split())
    assert not (tmp_path / "run").exists()


def test_traffic_descriptions_name_the_component() -> None:
    placer = object.__new__(KwokPlacer)  # no cluster: the description needs none
    assert placer.traffic_description("firmament", None).startswith(
        "firmament scheduler on this machine (--traffic file)")
    placer._extra = {"mine": KubernetesCounterpart("my-scheduler", "custom",
                                                   "your scheduler my-scheduler")}
    assert placer.traffic_description("mine", None) == (
        "your scheduler my-scheduler: none from the harness (its own source, if any)")


def test_nobody_binding_says_so() -> None:
    from types import SimpleNamespace

    pod = SimpleNamespace(metadata=SimpleNamespace(name="coal-abc"),
                          spec=SimpleNamespace(node_name=None, scheduler_name="my-scheduler"))
    text = unbound_message("place-1", [pod], 19, 60)
    assert text.startswith("nobody bound pods with schedulerName my-scheduler in 60 s: "
                           "is your scheduler running?")


def test_an_extender_url_nobody_serves_fails_at_once() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, not listening: connections are refused
        with pytest.raises(BackendUnavailable, match="is your extender running"):
            check_listening(f"http://127.0.0.1:{port}/")


def test_nothing_starts_for_the_default_profile_or_a_scheduler_you_run() -> None:
    for found in (None, counterpart("kube_default"),
                  KubernetesCounterpart("my-scheduler", "custom", "yours")):
        with host_schedulers(found, "x", kubeconfig=Path("/nonexistent"), context=None,
                             traffic=None):
            pass  # a kubeconfig is never read: nothing was started
