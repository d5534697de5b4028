"""A sensitivity sweep's definition and record: factors, levels and ``sweep.json``.

A sweep is a grid of ordinary runs: every factor is an experiment setting
(:class:`results.config.ExperimentConfig`) with a list of levels, and each grid point
is a complete results directory under ``points/``. ``sweep.json`` at the top says what
was swept over, the settings shared by every point, and every point's full settings,
so a resumed sweep creates the points it had not started yet exactly as planned and the
analysis needs nothing but the directory.

It lives in the results package because the experiment (``harness sweep``) writes it
and the analysis (``analysis.sweep``) reads it.
"""

from __future__ import annotations

import json
import re
import types
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from results._validation import problems
from results._yaml import read_mapping
from results.config import ConfigError, ExperimentConfig
from results.manifest import Machine

__all__ = [
    "SWEEP_FILE",
    "SweepFile",
    "SweepManifest",
    "SweepPoint",
    "factor_setting",
    "is_sweep",
    "level_label",
    "parse_factor",
    "parse_level",
    "point_name",
    "point_settings",
    "read_sweep_file",
    "read_sweep_manifest",
    "sweepable_settings",
    "write_sweep_manifest",
]

SWEEP_FILE = "sweep.json"
# Settings that are not one value per run (maps of your own schedulers): not factors.
_NOT_FACTORS = {"external_schedulers", "external_extenders"}
# Characters kept in a point's directory name; anything else (a topology file's path,
# spaces) becomes "_" so the name stays one path component.
_UNSAFE = re.compile(r"[^A-Za-z0-9._+=,-]")


def sweepable_settings() -> list[str]:
    """The experiment settings a sweep can vary."""
    return [n for n in ExperimentConfig.model_fields if n not in _NOT_FACTORS]


def factor_setting(name: str) -> str:
    """The setting a factor names (``node-cpu`` and ``node_cpu`` alike), or a scheduler
    option as ``POLICY.OPTION`` (``netmarks.weight``: ``scheduler_options``); ConfigError
    for anything else."""
    setting = name.strip().replace("-", "_")
    if "." in setting:
        return _option_factor(setting)
    if setting not in sweepable_settings():
        raise ConfigError(f"--factor {name}: unknown setting {name!r}; a factor is an "
                          f"experiment setting: {', '.join(sweepable_settings())}")
    return setting


def _option_factor(name: str) -> str:
    from schedulers.registry import UnknownPolicyError, policy_parameters

    policy, _, option = name.partition(".")
    try:
        known = policy_parameters(policy)
    except UnknownPolicyError as exc:
        raise ConfigError(f"--factor {name}: {exc}") from None
    if option not in known:
        raise ConfigError(f"--factor {name}: {policy} has no option {option!r}; its "
                          f"options: {', '.join(known) or 'none'}")
    return name


def point_settings(settings: Mapping[str, Any], values: Mapping[str, Any]) -> dict[str, Any]:
    """The settings of a point: ``settings`` with the point's levels; a scheduler option
    (``netmarks.weight``) joins ``scheduler_options`` beside those already set."""
    out = dict(settings)
    for name, value in values.items():
        if "." in name:
            policy, _, option = name.partition(".")
            options = {k: dict(v) for k, v in (out.get("scheduler_options") or {}).items()}
            options.setdefault(policy, {})[option] = value
            out["scheduler_options"] = options
        else:
            out[name] = value
    return out


def parse_level(setting: str, text: str) -> Any:
    """One level typed as ``setting`` is: ``3`` for nodes, ``0.5`` for cpu_scale,
    ``none`` for an optional setting; a list setting's level joins its values with
    ``+`` (``sizes=16+1048576``). Range checks are the config's (when points are built)."""
    if "." in setting:  # a scheduler option: a number, true/false or a word
        return _scalar(text.strip())
    annotation = ExperimentConfig.model_fields[setting].annotation
    try:
        return _parse(annotation, text.strip())
    except ValueError as exc:
        raise ConfigError(f"--factor {setting}={text}: {exc}") from None


def parse_factor(text: str) -> tuple[str, list[Any]]:
    """``"link=lan,edge,wan"`` -> ``("link", ["lan", "edge", "wan"])``."""
    name, sep, rest = text.partition("=")
    if not sep or not name.strip() or not rest.strip():
        raise ConfigError(f"--factor {text!r}: expected SETTING=LEVEL[,LEVEL...], e.g. "
                          "link=lan,edge,wan")
    setting = factor_setting(name)
    levels = [parse_level(setting, part) for part in rest.split(",") if part.strip()]
    if len(levels) != len({level_label(v) for v in levels}):
        raise ConfigError(f"--factor {text!r}: a level is given twice")
    return setting, levels


def level_label(value: Any) -> str:
    """A level as text: ``lan``, ``3``, ``16+1048576`` (a list), ``none``."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list | tuple):
        return "+".join(level_label(v) for v in value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def point_name(index: int, values: Mapping[str, Any]) -> str:
    """A point's directory name: ``3-link=wan,order=file``."""
    label = ",".join(f"{k}={level_label(v)}" for k, v in values.items())
    return _UNSAFE.sub("_", f"{index}-{label}")


def _scalar(text: str) -> Any:
    # The config types it as the option's default is (2 stays an int for an int option).
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            continue
    return {"true": True, "false": False}.get(text.lower(), text)


def _parse(annotation: Any, text: str) -> Any:
    origin, args = get_origin(annotation), get_args(annotation)
    if origin in (Union, types.UnionType):
        if type(None) in args and text.lower() in ("none", "null", "off"):
            return None
        for arg in args:  # a literal word first ("all" for items), then the others
            if get_origin(arg) is Literal and text in get_args(arg):
                return text
        errors = []
        for arg in args:
            if arg is type(None) or get_origin(arg) is Literal:
                continue
            try:
                return _parse(arg, text)
            except ValueError as exc:
                errors.append(str(exc))
        raise ValueError("; ".join(errors) or f"{text!r} is not a valid level")
    if origin is list:
        return [_parse(args[0], part) for part in text.split("+") if part.strip()]
    if origin is Literal:
        if text not in args:
            raise ValueError(f"{text!r} is not one of {', '.join(map(str, args))}")
        return text
    if annotation is bool:
        if text.lower() in ("true", "yes", "on", "1"):
            return True
        if text.lower() in ("false", "no", "off", "0"):
            return False
        raise ValueError(f"{text!r} is not true or false")
    if annotation is int:
        try:
            return int(text)
        except ValueError:
            raise ValueError(f"{text!r} is not a whole number") from None
    if annotation is float:
        try:
            return float(text)
        except ValueError:
            raise ValueError(f"{text!r} is not a number") from None
    # str, and settings the config resolves itself (a topology preset or file).
    return text


class SweepFile(BaseModel):
    """A sweep file (YAML): ``base`` settings shared by every point (as in an
    experiment file) and ``factors``: setting -> its levels."""

    model_config = ConfigDict(extra="forbid")

    base: dict[str, Any] = Field(default_factory=dict)
    factors: dict[str, list[Any]] = Field(default_factory=dict)

    @field_validator("factors")
    @classmethod
    def _factors(cls, value: dict[str, list[Any]]) -> dict[str, list[Any]]:
        out: dict[str, list[Any]] = {}
        for name, levels in value.items():
            setting = factor_setting(name)
            if not levels:
                raise ValueError(f"{name}: give at least one level")
            typed = [_from_file(setting, v) for v in levels]
            if len(typed) != len({level_label(v) for v in typed}):
                raise ValueError(f"{name}: a level is given twice")
            out[setting] = typed
        return out


def _from_file(setting: str, value: Any) -> Any:
    # YAML already typed the value; a list setting's scalar level is a one-value list.
    if "." in setting:
        return value
    annotation = ExperimentConfig.model_fields[setting].annotation
    listy = get_origin(annotation) is list or any(
        get_origin(a) is list for a in get_args(annotation))
    if listy and not isinstance(value, list) and value != "all":
        return [value]
    return value


def read_sweep_file(path: Path) -> SweepFile:
    """A sweep file, validated; ConfigError lists every problem."""
    loaded = read_mapping(path, "sweep file", ConfigError,
                          "a sweep file is a mapping with 'base' and 'factors'")
    try:
        return SweepFile.model_validate(loaded)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    except ValidationError as exc:
        lines = [f"  {where or 'sweep'}: {msg}" for where, msg, _ in problems(exc)]
        raise ConfigError(f"invalid sweep file {path}:\n" + "\n".join(lines)) from None


class SweepPoint(BaseModel):
    """One grid point: its factor levels and the full settings its run uses."""

    model_config = ConfigDict(extra="forbid")

    index: int
    name: str = Field(description="its results directory under points/")
    values: dict[str, Any]
    config: dict[str, Any] = Field(description="the point's experiment settings, as its "
                                               "manifest records them")


class SweepManifest(BaseModel):
    """``sweep.json``: what a sweep varies, over what base, and every point."""

    model_config = ConfigDict(extra="forbid", ser_json_inf_nan="constants")

    kind: Literal["settlers-testbed sweep"] = "settlers-testbed sweep"
    format: Literal[1] = 1
    command: str = Field(description="the command line that started the sweep")
    factors: dict[str, list[Any]] = Field(description="setting -> levels, in grid order")
    base: dict[str, Any] = Field(description="the settings given besides the factors: "
                                             "preset, experiment file, sweep file, flags")
    points: list[SweepPoint]
    started_at: str
    machine: Machine
    versions: dict[str, str]
    resumed_at: list[str] = Field(default_factory=list)
    finished_at: str | None = None

    def point_dir(self, root: Path, point: SweepPoint) -> Path:
        return Path(root) / "points" / point.name


def is_sweep(root: Path) -> bool:
    return (Path(root) / SWEEP_FILE).is_file()


def read_sweep_manifest(root: Path) -> SweepManifest:
    path = Path(root) / SWEEP_FILE
    try:
        return SweepManifest.model_validate(json.loads(path.read_text()))
    except OSError as exc:
        raise ConfigError(f"{root} is not a sweep directory (no {SWEEP_FILE}): "
                          f"{exc.strerror}") from None
    except (ValueError, ValidationError) as exc:
        raise ConfigError(f"{path} is not a sweep record this version reads: {exc}") from None


def write_sweep_manifest(root: Path, manifest: SweepManifest) -> None:
    path = Path(root) / SWEEP_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(manifest.model_dump_json(indent=2))
    tmp.replace(path)
