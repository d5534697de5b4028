"""`scheduler_options`: a policy model's options from the experiment (and the sweep's
POLICY.OPTION factors), validated against the policy's new() and passed to it."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from harness.cli import app
from results.config import ConfigError, ExperimentConfig, build_config
from schedulers.registry import policy_parameters


def test_policy_parameters_are_the_options_of_new() -> None:
    assert policy_parameters("netmarks")["weight"] == 1
    assert {"rounds", "load_weight"} <= set(policy_parameters("firmament"))
    assert "traffic" not in policy_parameters("netmarks")


def test_options_are_typed_as_their_defaults_and_recorded_only_when_given() -> None:
    cfg = build_config(overrides={
        "schedulers": ["netmarks", "firmament"],
        "scheduler_options": {"netmarks": {"weight": "3"},
                              "firmament": {"rounds": 2.0, "load_weight": "0.25"}}})
    assert cfg.scheduler_options == {"netmarks": {"weight": 3},
                                     "firmament": {"rounds": 2, "load_weight": 0.25}}
    assert "scheduler_options" in cfg.model_dump()
    assert "scheduler_options" not in build_config().model_dump()  # records as before
    again = ExperimentConfig.recorded(cfg.model_dump(mode="json"))
    assert again.scheduler_options == cfg.scheduler_options


@pytest.mark.parametrize(("options", "overrides", "words"), [
    ({"netmarks": {"weight": 0}}, {}, ["netmarks weight must be >= 1"]),
    ({"netmarks": {"wait": 1}}, {}, ["no option 'wait'", "weight"]),
    ({"netmarks": {"weight": "heavy"}}, {}, ["weight='heavy'", "whole number"]),
    ({"firmament": {"rounds": 2}}, {}, ["'firmament' is not among the schedulers"]),
    ({"netmarks": {"weight": 2}}, {"backend": "kwok"}, ["kwok and kubernetes backends"]),
])
def test_bad_options_are_named(options: dict[str, Any], overrides: dict[str, Any],
                               words: list[str]) -> None:
    with pytest.raises(ConfigError) as info:
        build_config(overrides={"scheduler_options": options, **overrides})
    for word in words:
        assert word in str(info.value)


def test_the_local_placer_gives_the_options_to_the_policy(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import schedulers
    from harness.backends.local.placer import ModelPlacer
    from settlers.economy import load_economy

    seen: list[dict[str, Any]] = []
    real = schedulers.get_policy

    def spy(name: str, **kwargs: Any) -> Any:
        inputs = ("traffic", "seed", "network", "economy")
        seen.append({k: v for k, v in kwargs.items() if k not in inputs})
        return real(name, **kwargs)

    monkeypatch.setattr(schedulers, "get_policy", spy)
    placer = ModelPlacer(load_economy(None), 3, options={"netmarks": {"weight": 5}})
    asyncio.run(placer.place("netmarks", 2, traffic=None, seed=1))
    asyncio.run(placer.place("kube_default", 2, traffic=None, seed=1))
    assert seen == [{"weight": 5}, {}]


def test_run_rejects_a_malformed_scheduler_option(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["run", "--quick", "--scheduler-option", "weight=2",
                                      "--out", str(tmp_path / "r")])
    assert result.exit_code == 2
    assert "expected POLICY.OPTION=VALUE" in " ".join(result.output.split())
    assert not (tmp_path / "r").exists()
