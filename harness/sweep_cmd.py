"""`harness sweep`: a grid of ordinary runs over factors, resumable, with one table and
one plot per headline metric at the end."""

from __future__ import annotations

import shlex
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from harness._stops import resumable
from harness.report_cmd import print_report, print_sweep_report
from harness.run_cmd import run_experiment, scheduler_options
from harness.sweep import PointState, new_sweep, plan_points, run_sweep
from results.config import BASELINE, ConfigError, ExperimentConfig
from results.store import ResultsStore, StoreError
from results.sweep import SweepPoint, parse_factor, read_sweep_file, sweepable_settings

__all__ = ["register"]

HELP = """Run a grid of experiments, one per combination of the factors' levels, and
show how each factor moves the headline numbers (with intervals).

A factor is any experiment setting (the keys of an experiment file) with its levels:
--factor link=lan,edge,wan --factor order=file,random is 3 x 2 = 6 runs. A list
setting's level joins values with '+': --factor sizes=16+1048576,65536. A policy's
option is POLICY.OPTION: --factor netmarks.weight=1,2,4 --factor firmament.rounds=2,6
(local backend; firmament must be among the --scheduler's). Every point is
an ordinary results directory under DIR/points/; DIR/sweep.json records the factors, the
shared settings and every point. Settings shared by every point come from --quick /
--preset, --config, a sweep file and the flags below (in that order of precedence).

Examples:

  harness sweep --quick --factor link=lan,edge,wan --factor order=file,random

  harness sweep --quick --factor nodes=3,5,8 --factor seed=1,2,3 --out runs/nodes

  harness sweep --sweep-file sweep.yaml     # base: {...settings}, factors: {link: \\[lan, wan]}

  harness sweep --quick --factor seed=1,2,3 --dry-run   # check and list the points only

  harness sweep --resume runs/nodes         # after Ctrl-C / a crash: finished points stay

  harness report runs/nodes                 # rebuild the sweep's tables, plots, report.md
"""


def _split(text: str | None, cast: Any = str) -> list[Any] | None:
    if text is None:
        return None
    try:
        return [cast(part.strip()) for part in text.split(",") if part.strip()]
    except ValueError as exc:
        raise typer.BadParameter(f"{text!r}: {exc}") from None


# Settings whose flag is not the setting's name with dashes.
_FLAGS = {"schedulers": "--scheduler", "protocols": "--protocol",
          "scheduler_options": "--scheduler-option"}


def _bar(done: int, total: int, width: int = 20) -> str:
    filled = round(width * done / max(total, 1))
    return "#" * filled + "-" * (width - filled)


def _default_out() -> Path:
    return Path("runs") / f"{datetime.now(UTC).strftime('%Y%m%dT%H%M%S')}-sweep"


def register(app: typer.Typer) -> None:
    @app.command("sweep", help=HELP)
    def sweep(
        factor: Annotated[list[str] | None, typer.Option(
            "--factor", "-f", metavar="SETTING=LEVEL[,LEVEL...]",
            help="a setting to vary and its levels (repeatable; the grid is every "
                 f"combination). Settings: {', '.join(sweepable_settings())}")] = None,
        sweep_file: Annotated[Path | None, typer.Option(
            "--sweep-file", help="YAML with 'base' (settings shared by every point) and "
                                 "'factors' (setting: a list of levels); --factor adds "
                                 "or replaces factors")] = None,
        scheduler: Annotated[list[str] | None, typer.Option(
            "--scheduler", "-s", help=f"policy compared with {BASELINE} at every point "
                                      "(repeatable; default: netmarks)")] = None,
        backend: Annotated[str | None, typer.Option(help="local (default) | kwok")] = None,
        scheduler_option: Annotated[list[str] | None, typer.Option(
            "--scheduler-option", metavar="POLICY.OPTION=VALUE",
            help="local backend: an option of a policy's model at every point "
                 "(repeatable), e.g. firmament.rounds=3; to vary one, --factor "
                 "netmarks.weight=1,2,4")] = None,
        deployments: Annotated[int | None, typer.Option(
            help="redeployments per scheduler per point")] = None,
        nodes: Annotated[int | None, typer.Option(help="cluster nodes")] = None,
        link: Annotated[str | None, typer.Option(help="link preset")] = None,
        protocol: Annotated[list[str] | None, typer.Option(
            "--protocol", help="http and/or grpc (repeatable)")] = None,
        sizes: Annotated[str | None, typer.Option(
            help="bytes per unit, comma-separated")] = None,
        items: Annotated[str | None, typer.Option(
            help="items to order, comma-separated, or 'all'")] = None,
        repetitions: Annotated[int | None, typer.Option(
            help="orders per item x size per layout")] = None,
        layout_budget: Annotated[int | None, typer.Option(
            help="most distinct layouts to measure per scheduler per point")] = None,
        warmup_seconds: Annotated[float | None, typer.Option(
            help="warm up each point for at least this long")] = None,
        seed: Annotated[int | None, typer.Option(help="(default: 1)")] = None,
        order: Annotated[str | None, typer.Option(
            metavar="file|reverse|random", help="creation order of the Deployments")] = None,
        preset: Annotated[str | None, typer.Option(metavar="quick|paper",
                                                   help="a named set of settings")] = None,
        quick: Annotated[bool, typer.Option(
            "--quick", help="the small preset of `harness run --quick` at every point")]
        = False,
        config: Annotated[Path | None, typer.Option(
            "--config", help="experiment YAML shared by every point")] = None,
        out: Annotated[Path | None, typer.Option(
            help="sweep directory (default: runs/<time>-sweep)")] = None,
        resume: Annotated[Path | None, typer.Option(
            help="continue the sweep in DIR: finished points are kept, a started one "
                 "resumes, the rest run as planned")] = None,
        dry_run: Annotated[bool, typer.Option(
            "--dry-run", help="check every point's settings and list the points; run and "
                              "write nothing")] = False,
    ) -> None:
        console = Console(stderr=True)
        try:
            options = scheduler_options(scheduler_option)
        except ConfigError as exc:
            console.print(f"[red]error:[/] {exc}")
            raise typer.Exit(2) from None
        flags: dict[str, Any] = {
            "schedulers": scheduler or None, "backend": backend, "deployments": deployments,
            "nodes": nodes, "link": link, "protocols": protocol or None,
            "sizes": _split(sizes, int), "items": "all" if items == "all" else _split(items),
            "repetitions": repetitions, "layout_budget": layout_budget,
            "warmup_seconds": warmup_seconds, "seed": seed, "order": order,
            "scheduler_options": options,
        }
        try:
            if resume is not None:
                given = [_FLAGS.get(k, f"--{k.replace('_', '-')}")
                         for k, v in flags.items() if v is not None]
                given += [flag for flag, on in (("--factor", bool(factor)), ("--quick", quick),
                                                ("--dry-run", dry_run),
                                                ("--config", config), ("--preset", preset),
                                                ("--sweep-file", sweep_file), ("--out", out))
                          if on]
                if given:
                    raise ConfigError("--resume continues a sweep as planned; drop "
                                      + ", ".join(given))
                root = resume
                console.print(f"[bold]resuming sweep[/] {root}")
            else:
                root = out or _default_out()
                _create(root, flags, factor or [], sweep_file, preset, quick, config, console,
                        dry_run)
                if dry_run:
                    return
        except (ConfigError, StoreError) as exc:
            console.print(f"[red]error:[/] {exc}")
            raise typer.Exit(2) from None

        def run_point(cfg: ExperimentConfig, store: ResultsStore) -> None:
            run_experiment(cfg, store, console=console)
            print_report(store.root, console)  # each point a complete results directory

        def notify(index: int, total: int, point: SweepPoint, state: PointState) -> None:
            what = {"finished": "already finished, kept", "started": "resuming",
                    "new": "running"}[state]
            console.rule(f"[bold]sweep[/] {escape(f'[{_bar(index, total)}]')} point "
                         f"{index + 1}/{total}: {escape(point.name)} ({what})")

        with resumable(console, f"harness sweep --resume {root}",
                       "finished points and measured chunks are kept"):
            run_sweep(root, run_point, notify=notify)
        console.rule(f"[bold]sweep[/] {escape(f'[{_bar(1, 1)}]')} done")
        print_sweep_report(root, console)


def _create(root: Path, flags: dict[str, Any], factors: list[str], sweep_file: Path | None,
            preset: str | None, quick: bool, config: Path | None, console: Console,
            dry_run: bool = False) -> None:
    if quick and preset not in (None, "quick"):
        raise ConfigError(f"--quick and --preset {preset}: choose one preset")
    preset = "quick" if quick else preset
    spec = read_sweep_file(sweep_file) if sweep_file is not None else None
    grid: dict[str, list[Any]] = dict(spec.factors) if spec else {}
    for text in factors:
        setting, levels = parse_factor(text)
        grid[setting] = levels  # the command line's levels replace the file's
    given = {k: v for k, v in flags.items() if v is not None}
    clash = [k for k in grid if k in given or (
        "." in k and k.partition(".")[2] in (given.get("scheduler_options") or {}).get(
            k.partition(".")[0], {}))]
    if clash:
        raise ConfigError(f"{clash[0]} is both a factor and a flag; drop one")
    settings = {**(spec.base if spec else {}), **given}
    points = plan_points(grid, preset=preset, file=config, settings=settings)
    if dry_run:
        console.print(f"{len(points)} points, every one valid (nothing run, nothing written):")
        for point in points:
            console.print(f"  points/{point.name}", highlight=False)
        return
    new_sweep(root, command=_command(root, grid, given, preset, config, sweep_file),
              factors=grid,
              base={"preset": preset, "config": str(config) if config else None,
                    "sweep_file": str(sweep_file) if sweep_file else None,
                    "settings": settings},
              points=points)
    console.print(f"[bold]sweep:[/] {root} ({len(points)} points: "
                  + " x ".join(f"{k} ({len(v)})" for k, v in grid.items()) + ")")


def _command(root: Path, grid: dict[str, list[Any]], settings: dict[str, Any],
             preset: str | None, config: Path | None, sweep_file: Path | None) -> str:
    """The sweep as one command line (for the record and the report): what was given,
    spelled as flags (``settings``: the flags given)."""
    from results.sweep import level_label

    words = ["harness", "sweep"]
    if preset == "quick":
        words.append("--quick")
    elif preset:
        words += ["--preset", preset]
    if config:
        words += ["--config", str(config)]
    if sweep_file:
        words += ["--sweep-file", str(sweep_file)]
    for key, value in settings.items():
        flag = _FLAGS.get(key, f"--{key.replace('_', '-')}")
        if key == "scheduler_options":
            for policy, opts in value.items():
                for option, v in opts.items():
                    words += ["--scheduler-option", f"{policy}.{option}={v}"]
        elif key in ("schedulers", "protocols"):
            for v in value:
                if v != BASELINE:
                    words += [flag, str(v)]
        else:
            words += [flag, level_label(value).replace("+", ",")]
    for setting, levels in grid.items():
        words += ["--factor", f"{setting}={','.join(level_label(v) for v in levels)}"]
    words += ["--out", str(root)]
    return shlex.join(words)
