"""The experiment definition: defaults, presets, files, flags and the errors a user sees."""

from __future__ import annotations

from pathlib import Path

import pytest

from results.config import BASELINE, DEFAULT_ITEMS, ConfigError, ExperimentConfig, build_config


def test_defaults_follow_the_paper_and_always_include_the_baseline() -> None:
    cfg = build_config()
    assert cfg.schedulers == [BASELINE, "netmarks"]
    assert cfg.deployments == 1000
    assert cfg.nodes == 5
    assert cfg.sizes == [16, 256, 4096, 65536, 1048576]
    assert cfg.protocols == ["http", "grpc"]
    assert cfg.items == DEFAULT_ITEMS


def test_baseline_is_first_once_and_aliases_resolve() -> None:
    cfg = build_config(overrides={"schedulers": ["firmament", "default", "netmarks", "netmarks"]})
    assert cfg.schedulers == ["kube_default", "firmament", "netmarks"]


def test_precedence_preset_then_file_then_flags(tmp_path: Path) -> None:
    path = tmp_path / "exp.yaml"
    path.write_text("deployments: 42\nrepetitions: 7\nitems: [flour]\n")
    cfg = build_config(preset="quick", file=path, overrides={"repetitions": 2, "seed": None})
    assert cfg.deployments == 42          # file beats preset
    assert cfg.repetitions == 2           # flag beats file
    assert cfg.protocols == ["http"]      # from the preset
    assert cfg.items == ["flour"]


def test_quick_preset_is_small() -> None:
    cfg = build_config(preset="quick")
    assert cfg.deployments <= 100 and cfg.protocols == ["http"] and len(cfg.sizes) == 3


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"schedulers": ["netmark"]}, "unknown scheduler 'netmark'"),
        ({"items": ["flour", "unobtainium"]}, "items not in economy 'settlers2': unobtainium"),
        ({"sizes": [16, 0]}, "sizes must be between 1"),
        ({"sizes": []}, "must not be empty"),
        ({"protocols": ["udp"]}, "protocols.0"),
        ({"deployments": 0}, "deployments"),
        ({"economy": "/nonexistent/economy.yaml"}, "cannot read economy file"),
        ({"kube_namespace": "Settlers_NS"}, "kube_namespace"),
        ({"kube_release": "Settlers"}, "kube_release"),
        ({"prometheus_url": "prometheus:9090"}, "prometheus_url"),
    ],
)
def test_bad_values_name_the_problem(overrides: dict[str, object], fragment: str) -> None:
    with pytest.raises(ConfigError) as err:
        build_config(overrides=overrides)
    assert fragment in str(err.value)


def test_unknown_link_preset_is_rejected() -> None:
    with pytest.raises(ConfigError, match="unknown link preset 'moon'"):
        build_config(overrides={"link": "moon"})


def test_unknown_key_in_file_lists_known_settings(tmp_path: Path) -> None:
    path = tmp_path / "exp.yaml"
    path.write_text("deployment: 10\n")
    with pytest.raises(ConfigError) as err:
        build_config(file=path)
    text = str(err.value)
    assert str(path) in text and "deployment: unknown setting" in text and "deployments" in text


def test_file_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read experiment file"):
        build_config(file=tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="must be a mapping"):
        build_config(file=bad)
    broken = tmp_path / "broken.yaml"
    broken.write_text("a: [\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        build_config(file=broken)


def test_unknown_preset() -> None:
    with pytest.raises(ConfigError, match="unknown preset 'fast'"):
        build_config(preset="fast")


def test_another_economy_and_all_items(tmp_path: Path) -> None:
    path = tmp_path / "tiny.yaml"
    path.write_text("name: tiny\nitems:\n  ore: {}\n  metal: {inputs: {ore: 2}}\n")
    cfg = build_config(overrides={"economy": str(path), "items": "all"})
    assert cfg.item_list() == ["ore", "metal"]
    # The default items are settlers2's; another economy gets items from its graph
    # (tests/unit/test_item_picks.py), and Settlers items given by name are refused.
    assert build_config(overrides={"economy": str(path)}).items == ["metal"]
    with pytest.raises(ConfigError, match="items not in economy 'tiny': boat"):
        build_config(overrides={"economy": str(path), "items": ["boat"]})


def test_round_trips_through_the_manifest() -> None:
    cfg = build_config(preset="quick", overrides={"schedulers": ["firmament"]})
    again = ExperimentConfig.model_validate(cfg.model_dump(mode="json"))
    assert again == cfg


def test_kubernetes_flags_beat_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from harness.backends.kubernetes.options import KubernetesOptions, options_for

    monkeypatch.setenv("SETTLERS_KUBE_NAMESPACE", "from-env")
    monkeypatch.setenv("SETTLERS_PROMETHEUS_URL", "http://env:9090")
    assert KubernetesOptions.from_env().namespace == "from-env"
    cfg = build_config(overrides={"backend": "kubernetes", "kube_namespace": "from-flag",
                                  "prometheus_url": "http://prom.monitoring:9090"})
    opts = options_for(cfg)
    assert opts.namespace == "from-flag"
    assert opts.prometheus_url == "http://prom.monitoring:9090"
    # Unset flags leave the variables in charge.
    assert options_for(build_config(overrides={"backend": "kubernetes"})).namespace == "from-env"


def test_node_capacity_is_off_by_default_and_one_setting_for_models_and_data_plane() -> None:
    from harness.backends.registry import BACKENDS

    cfg = build_config()
    assert cfg.node_cpu is None and cfg.node_cpu_m() is None and cfg.cpu_scale is None
    assert BACKENDS["local"].options(cfg).node_cpu_m is None
    cfg = build_config(overrides={"node_cpu": "500m", "cpu_scale": 0.5})
    assert cfg.node_cpu_m() == 500
    opts = BACKENDS["local"].options(cfg)
    assert (opts.node_cpu_m, opts.cpu_scale) == (500, 0.5)
    placer, planes = BACKENDS["local"].open(cfg.load_economy(), opts)
    assert {n.cpu_m for n in placer.space.nodes} == {500}   # the models' allocatable
    assert planes._node_cpu_m == 500                          # the quota's capacity


@pytest.mark.parametrize(("overrides", "fragment"), [
    ({"node_cpu": "0"}, "node_cpu: must be a positive CPU quantity, got '0'"),
    ({"node_cpu": "lots"}, "node_cpu"),
    ({"node_cpu": "1", "cpu_scale": 2}, "cpu_scale: Input should be less than or equal to 1"),
    ({"node_cpu": "1", "backend": "kubernetes"}, "apply to the local and kwok backends"),
])
def test_bad_node_capacity_names_the_setting(overrides: dict[str, object],
                                             fragment: str) -> None:
    with pytest.raises(ConfigError, match="invalid experiment") as err:
        build_config(overrides=overrides)
    assert fragment in str(err.value)


@pytest.mark.parametrize(("text", "seconds"), [
    ("30m", 1800.0), ("1h30m", 5400.0), ("90s", 90.0), ("45", 45.0), (120, 120.0),
    ("1.5h", 5400.0), ("2m30s", 150.0),
])
def test_time_budget_durations(text: object, seconds: float) -> None:
    assert build_config(overrides={"time_budget": text}).time_budget == seconds


@pytest.mark.parametrize("bad", ["abc", "", "30x", "m", "-5m", "0", True])
def test_time_budget_rejects_what_is_not_a_positive_duration(bad: object) -> None:
    with pytest.raises(ConfigError, match="time_budget"):
        build_config(overrides={"time_budget": bad})


def test_paper_preset_replicates_and_budget_and_flags_win() -> None:
    paper = build_config(preset="paper")
    assert (paper.replicates, paper.time_budget) == (3, 1800.0)
    assert paper.deployments == 1000  # otherwise the paper's method: the defaults
    mine = build_config(preset="paper", overrides={"replicates": 5, "time_budget": "10m"})
    assert (mine.replicates, mine.time_budget) == (5, 600.0)
    with pytest.raises(ConfigError, match="replicates"):
        build_config(overrides={"replicates": 0})
