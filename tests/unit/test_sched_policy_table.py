"""The policy table: built-in specs, plug-ins by entry point, and their errors."""

from __future__ import annotations

import importlib
import inspect
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from results.config import ConfigError, build_config
from schedulers import (
    KubernetesCounterpart,
    PluginError,
    PolicySpec,
    UnknownPolicyError,
    available_policies,
    builtin_policies,
    get_policy,
    pods_for_economy,
    policy_spec,
    policy_specs,
    uniform_nodes,
    uses_traffic,
)
from schedulers.registry import policy_origin
from settlers.economy import load_economy

BUILTIN = ["kube_default", "netmarks", "firmament", "random", "optimal", "trade",
           "diktyo"]
MODULES = {name: f"schedulers.policies.{name}" for name in BUILTIN} | {
    "random": "schedulers.policies.random_policy"}


def test_builtin_specs_say_what_each_policy_is() -> None:
    assert builtin_policies() == BUILTIN
    specs = {name: policy_spec(name) for name in BUILTIN}
    # The schedulerNames the kwok and kubernetes backends have always used.
    real = {name: s.kubernetes for name, s in specs.items() if s.kubernetes is not None}
    assert {n: (k.scheduler_name, k.kind) for n, k in real.items()} == {
        "kube_default": ("default-scheduler", "default"),
        "netmarks": ("netmarks-scheduler", "extender"),
        "firmament": ("firmament", "custom"),
        "trade": ("trade", "custom"),
        "diktyo": ("diktyo-scheduler", "plugins"),
    }
    assert real["diktyo"].binary == "kube-scheduler-diktyo"
    assert real["netmarks"].host_command[0] == "netmarks-extender"
    # The extender binds and waits for earlier bindings (docs/kubernetes.md, fidelity).
    assert "--bind" in real["netmarks"].host_command
    assert real["netmarks"].chart_key == "netmarks"
    assert real["firmament"].host_command[0] == "firmament"
    assert real["firmament"].chart_key == "firmament"
    assert not real["kube_default"].host_command and real["kube_default"].chart_key is None
    assert not any(k.external for k in real.values())
    assert real["trade"].host_command[0] == "trade" and real["trade"].chart_key is None
    assert [n for n in BUILTIN if uses_traffic(n)] == ["netmarks", "firmament", "optimal",
                                                       "trade", "diktyo"]
    for name, spec in specs.items():
        assert spec.name == name and spec.summary
        module = importlib.import_module(MODULES[name])
        assert module.SPEC is spec
        takes = "traffic" in inspect.signature(module.new).parameters
        assert takes == spec.uses_traffic, name
        assert policy_origin(name) == "built-in"


def test_specs_check_their_fields() -> None:
    with pytest.raises(ValueError, match="kind must be one of"):
        KubernetesCounterpart("x", "profile", "x")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="not a valid schedulerName"):
        KubernetesCounterpart("My_Scheduler", "custom", "x")
    with pytest.raises(ValueError, match="the cluster's own"):
        KubernetesCounterpart("default-scheduler", "default", "x", chart_key="x")
    assert KubernetesCounterpart("mine", "custom", "my scheduler").external
    with pytest.raises(ValueError, match="policy name"):
        PolicySpec("a+b", "x")


def test_the_example_plugin_is_found_by_its_entry_point(
        pack_site: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert "pack" not in available_policies()
    monkeypatch.syspath_prepend(str(pack_site))
    assert available_policies() == [*BUILTIN, "pack"]
    assert builtin_policies() == BUILTIN
    spec = policy_spec("pack")
    assert spec.kubernetes is None and not spec.uses_traffic and "MostAllocated" in spec.summary
    assert policy_origin("pack") == ("entry point 'pack = settlers_pack.policy' of "
                                     "distribution settlers-pack-policy 0.1.0")
    assert list(policy_specs()) == [*BUILTIN, "pack"]
    # Bin-packing: 19 small pods on idle nodes all go to one node.
    result = get_policy("pack", seed=3).schedule(pods_for_economy(load_economy()),
                                                 uniform_nodes(5))
    assert len(set(result.assignments.values())) == 1 and not result.unschedulable
    cfg = build_config(overrides={"schedulers": ["pack"]})
    assert cfg.schedulers == ["kube_default", "pack"]


def test_plugins_load_only_when_asked_for(pack_site: Path) -> None:
    # Listing reads metadata only; a built-in policy (the extender's process) never
    # looks at plug-ins at all.
    code = ("import sys\n"
            "from schedulers.registry import available_policies, get_policy\n"
            "get_policy('netmarks')\n"
            "from schedulers.entrypoints import _scan\n"
            "assert _scan.cache_info().misses == 0\n"  # no entry point was read
            "assert 'pack' in available_policies()\n"
            "assert 'settlers_pack' not in sys.modules\n"
            "get_policy('pack')\n"
            "assert 'settlers_pack.policy' in sys.modules\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=_env_with(pack_site), timeout=60)
    assert done.returncode == 0, done.stderr


def _env_with(site: Path) -> dict[str, str]:
    import os

    parts = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    return {**os.environ, "PYTHONPATH": os.pathsep.join([*parts, str(site)])}


def _plugin(tmp_path: Path, install: Callable[[Path, Path], Path], dist: str,
            entry: str, module: str, source: str | None) -> Path:
    """A one-module distribution ``dist`` declaring ``entry = module``; installs it."""
    project = tmp_path / dist
    package, _, leaf = module.partition(".")
    (project / package).mkdir(parents=True)
    (project / package / "__init__.py").write_text("")
    if source is not None:
        (project / package / f"{leaf}.py").write_text(source)
    (project / "pyproject.toml").write_text(
        f'[project]\nname = "{dist}"\nversion = "1.2"\n'
        f'[project.entry-points."settlers_testbed.policies"]\n{entry} = "{module}"\n')
    return install(project, tmp_path / "site")


GOOD = "NAME = {name!r}\ndef new(*, seed=None):\n    raise AssertionError('not called')\n"


@pytest.mark.parametrize(("entry", "source", "problem"), [
    ("nameless", "def new(*, seed=None): ...\n", "has no NAME"),
    ("factoryless", "NAME = 'factoryless'\n", "has no new()"),
    ("misnamed", "NAME = 'other'\ndef new(*, seed=None): ...\n", "registers as 'other'"),
    ("crashing", "raise RuntimeError('boom at import')\n",
     "cannot import {module}: RuntimeError: boom at import"),
    ("missing", None, "cannot import {module}: ModuleNotFoundError"),
    ("badspec", "NAME = 'badspec'\nSPEC = dict(name='badspec')\n"
     "def new(*, seed=None): ...\n", "SPEC is a dict, not a schedulers.spec.PolicySpec"),
    ("liar", "from schedulers.spec import PolicySpec\nNAME = 'liar'\n"
     "SPEC = PolicySpec(NAME, 'x', uses_traffic=True)\ndef new(*, seed=None): ...\n",
     "says it uses traffic, but new() takes no traffic="),
    ("blind", "from schedulers.spec import PolicySpec\nNAME = 'blind'\n"
     "SPEC = PolicySpec(NAME, 'x', uses_network=True)\ndef new(*, seed=None): ...\n",
     "says it uses network, but new() takes no network="),
])
def test_a_broken_plugin_names_its_distribution_and_entry_point(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        install_like_pip: Callable[[Path, Path], Path],
        entry: str, source: str | None, problem: str) -> None:
    module = f"broken_{entry}.policy"  # unique: modules stay imported between tests
    site = _plugin(tmp_path, install_like_pip, f"broken-{entry}", entry, module, source)
    monkeypatch.syspath_prepend(str(site))
    assert entry in available_policies()  # listed by metadata, not loaded
    where = (f"plug-in policy {entry!r} (entry point '{entry} = {module}' of "
             f"distribution broken-{entry} 1.2, group settlers_testbed.policies): ")
    with pytest.raises(PluginError) as caught:
        get_policy(entry)
    assert str(caught.value).startswith(where), caught.value
    assert problem.format(module=module) in str(caught.value)
    with pytest.raises(ConfigError, match=f"broken-{entry} 1.2"):
        build_config(overrides={"schedulers": [entry]})
    result = CliRunner().invoke(_schedulers_app(), ["policies"])
    assert result.exit_code == 1 and f"BROKEN: {where}" in result.output
    assert "kube_default  (built-in)" in result.output


def _schedulers_app() -> typer.Typer:
    from schedulers.cli import app

    return app


@pytest.mark.parametrize("clash", ["netmarks", "twice"])
def test_a_name_taken_twice_is_an_error_naming_both(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        install_like_pip: Callable[[Path, Path], Path], clash: str) -> None:
    site = _plugin(tmp_path, install_like_pip, "clash-a", clash, f"clash_a_{clash}.policy",
                   GOOD.format(name=clash))
    if clash == "twice":
        _plugin(tmp_path, install_like_pip, "clash-b", clash, f"clash_b_{clash}.policy",
                GOOD.format(name=clash))
    monkeypatch.syspath_prepend(str(site))
    with pytest.raises(PluginError) as caught:
        available_policies()
    message = str(caught.value)
    if clash == "netmarks":
        assert "entry point 'netmarks = clash_a_netmarks.policy' of distribution clash-a 1.2"\
            in message and "is a built-in policy" in message
    else:
        assert "clash-a 1.2" in message and "clash-b 1.2" in message
        assert "declares the same name" in message
    # A built-in is still itself: it never consults the plug-ins.
    assert get_policy("netmarks", seed=1).name == "netmarks"


def test_unknown_names_list_plugins_too(pack_site: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(pack_site))
    with pytest.raises(UnknownPolicyError, match=r"available: kube_default, .*optimal, .*pack"):
        get_policy("packer")
    assert not uses_traffic("packer")


def test_harness_schedule_measures_a_plugin_like_a_builtin(
        pack_site: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from harness.cli import app

    monkeypatch.syspath_prepend(str(pack_site))
    out = tmp_path / "pack.parquet"
    result = CliRunner().invoke(app, ["schedule", "-s", "pack", "--deployments", "20",
                                      "--nodes", "3", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "distinct layouts" in result.output and out.is_file()
    import pandas as pd

    # Every deployment fills one node (which one is a tie among the idle nodes).
    assert (pd.read_parquet(out).groupby("deployment")["node"].nunique() == 1).all()


def test_the_firmament_process_answers_to_the_spec_schedulername(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import schedulers.firmament_k8s as k8s

    seen: dict[str, object] = {}

    class Fake:
        def __init__(self, api: object, policy: object, *, scheduler_name: str,
                     label_key: str, **_: object) -> None:
            seen["name"] = scheduler_name

        def run_once(self) -> object:
            class R:
                pending, bound, failed, unschedulable, seconds = 0, [], [], [], 0.0
            return R()

    monkeypatch.setattr(k8s, "FirmamentScheduler", Fake)
    monkeypatch.setattr(k8s, "KubernetesAPI", lambda kubeconfig, **_: None)
    app = _schedulers_app()
    for args, name in (([], "firmament"), (["--scheduler-name", "mine"], "mine")):
        result = CliRunner().invoke(app, ["firmament", "--once", *args])
        assert result.exit_code == 0, result.output
        assert seen["name"] == name


def test_policies_lists_a_plugins_extender_url_and_program(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        install_like_pip: Callable[[Path, Path], Path]) -> None:
    source = (
        "from schedulers.spec import ExtenderCall, KubernetesCounterpart, PolicySpec\n"
        "NAME = 'listed'\n"
        "SPEC = PolicySpec(NAME, 'a user extender', uses_traffic=False,\n"
        "    kubernetes=KubernetesCounterpart('listed', 'extender', 'my extender',\n"
        "        extender=ExtenderCall('http://10.0.0.7:8888/', weight=3)))\n"
        "def new(*, seed=None): ...\n")
    site = _plugin(tmp_path, install_like_pip, "listed-ext", "listed", "listed_ext.policy",
                   source)
    monkeypatch.syspath_prepend(str(site))
    result = CliRunner().invoke(_schedulers_app(), ["policies"])
    assert result.exit_code == 0, result.output
    assert "your extender at http://10.0.0.7:8888/ (weight 3)" in result.output
