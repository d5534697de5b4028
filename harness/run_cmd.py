"""`harness run`: the whole experiment in one command, resumable, with the report at the end."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from harness._stops import resumable
from harness.backends.base import Backend, BackendUnavailable
from harness.backends.registry import backend_for
from harness.experiment import Experiment, Reporter
from harness.replicates import measured_chunks
from results import provenance
from results.config import BASELINE, ConfigError, ExperimentConfig, build_config, items_note
from results.manifest import new_manifest
from results.scenario import (
    Scenario,
    ScenarioError,
    done_schedulers,
    has_scenario,
    read_scenario,
    resolve_scenario,
)
from results.store import ResultsStore, StoreError
from schedulers.registry import builtin_policies

__all__ = ["register", "run_experiment", "scheduler_options"]

HELP = """Redeploy the Settlers economy many times under each scheduler, measure every
distinct layout (or a stated sample), and write tables, plots and report.md.

The default kube-scheduler model (kube_default) is always measured as the baseline.
Precedence: built-in defaults < --quick / --preset < --config FILE < flags.

Examples:

  harness run --scheduler netmarks --quick     # about 1.5 minutes on 2 cores

  harness run -s netmarks -s firmament         # the paper's method, about 20 minutes

  harness run --quick --economy my.yaml        # items picked from my.yaml's graph

  harness run --config experiment.yaml --out runs/mine

  harness run --resume runs/20260101T120000-kube_default+netmarks   # after Ctrl-C / a crash

  harness run --backend kwok --external-scheduler mine=my-scheduler \\
      --external-command "mine=./my-scheduler --kubeconfig {kubeconfig}"   # yours, as "mine"

  harness run --backend kwok --external-extender mine=http://127.0.0.1:9000/,weight=2

  harness run --quick --load 0,20,40   # each layout under 0, 20 and 40 background orders/s

  harness run --quick --order file     # Deployments created in the economy's order

  harness run --preset paper           # 3 replications, 30 min of measurement: ~45 min

  harness run --quick --replicates 3 --time-budget 6m

  harness run --scenario shift -s netmarks -s firmament --quick   # traffic shifts halfway;
                                                                  # rebalancers move pods
"""


class RichReporter(Reporter):
    def __init__(self, progress: Progress) -> None:
        self.progress = progress

    def stage(self, name: str, total: int | None = None) -> Callable[[int], None]:
        task = self.progress.add_task(name, total=total)

        def advance(n: int) -> None:
            self.progress.advance(task, n)
            if total is None:
                self.progress.update(task, total=1, completed=1)

        return advance

    def note(self, message: str) -> None:
        self.progress.console.log(message)


def run_experiment(
    config: ExperimentConfig, store: ResultsStore, *, console: Console | None = None,
    quiet: bool = False, backend: Backend | None = None,
) -> None:
    """Run (or continue) the experiment into ``store``; the programmatic twin of the CLI."""
    console = console or Console(stderr=True)
    if config.replicates > 1:
        _run_replicates(config, store, console=console, quiet=quiet, backend=backend)
        return
    manifest = store.manifest()
    if store.has("traffic") or store.done_chunks():
        # The code may have changed between the start and a resume: record both.
        store.update_manifest(
            resumed_at=[*manifest.resumed_at, provenance.now()],
            resumed_versions=[*manifest.resumed_versions, provenance.versions()],
        )
    backend = backend or backend_for(config)
    progress = Progress(
        SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
        TimeElapsedColumn(), TimeRemainingColumn(), console=console, disable=quiet,
        transient=False,
    )
    with progress:
        asyncio.run(Experiment(config, store, backend, RichReporter(progress)).run())
    store.update_manifest(finished_at=provenance.now(),
                          load_avg_at_finish=[round(x, 2) for x in os.getloadavg()])


def _run_replicates(config: ExperimentConfig, store: ResultsStore, *, console: Console,
                    quiet: bool, backend: Backend | None) -> None:
    """--replicates K: each replicate an ordinary run in DIR/replicates/rN
    (harness.replicates); ``backend``, if given, serves the first one run here."""
    from harness.replicates import REPLICATES_DIR, check_replicates, run_replicates

    check_replicates(store)  # a foreign or corrupted replicate stops before anything runs
    given = [backend] if backend is not None else []
    if (store.root / REPLICATES_DIR).is_dir():
        manifest = store.manifest()
        store.update_manifest(resumed_at=[*manifest.resumed_at, provenance.now()],
                              resumed_versions=[*manifest.resumed_versions,
                                                provenance.versions()])

    def one(cfg: ExperimentConfig, sub: ResultsStore) -> None:
        run_experiment(cfg, sub, console=console, quiet=quiet,
                       backend=given.pop() if given else backend_for(cfg))

    run_replicates(config, store, one,
                   note=lambda text: console.print(f"[bold]{text}[/]", highlight=False))
    store.update_manifest(finished_at=provenance.now(),
                          load_avg_at_finish=[round(x, 2) for x in os.getloadavg()])


def _split(text: str | None, cast: Callable[[str], Any] = str) -> list[Any] | None:
    if text is None:
        return None
    try:
        return [cast(part.strip()) for part in text.split(",") if part.strip()]
    except ValueError as exc:
        raise typer.BadParameter(f"{text!r}: {exc}") from None


def _pairs(values: list[str] | None, flag: str, what: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for value in values or []:
        name, sep, rest = value.partition("=")
        if not sep or not name.strip() or not rest.strip():
            raise ConfigError(f"{flag} {value!r}: expected NAME={what}")
        out[name.strip()] = rest.strip()
    return out


# Settings whose flag is not the setting's name with dashes (repeatable flags are singular).
_FLAG = {"schedulers": "--scheduler", "protocols": "--protocol",
         "external_schedulers": "--external-scheduler",
         "external_extenders": "--external-extender",
         "scheduler_options": "--scheduler-option"}


def _externals(schedulers: list[str] | None, commands: list[str] | None,
               extenders: list[str] | None) -> dict[str, Any]:
    """--external-scheduler/-command/-extender as the config's external_* settings
    (absent when not given, so a --config file's stay)."""
    import shlex

    out: dict[str, Any] = {}
    named = _pairs(schedulers, "--external-scheduler", "SCHEDULER_NAME")
    programs = _pairs(commands, "--external-command", "COMMAND")
    stray = [n for n in programs if n not in named]
    if stray:
        raise ConfigError(f"--external-command {stray[0]}=...: no --external-scheduler "
                          f"{stray[0]}=SCHEDULER_NAME")
    if named:
        out["external_schedulers"] = {
            n: {"scheduler_name": s, "command": shlex.split(programs.get(n, ""))}
            for n, s in named.items()}
    calls: dict[str, Any] = {}
    for name, text in _pairs(extenders, "--external-extender", "URL[,weight=N]").items():
        url, *opts = text.split(",")
        call: dict[str, Any] = {"url": url}
        for opt in opts:
            key, sep, value = opt.partition("=")
            if key.strip() != "weight" or not sep or not value.strip().isdigit():
                raise ConfigError(f"--external-extender {name}={text}: after the URL only "
                                  "',weight=N' (N a whole number); set more in --config")
            call["weight"] = int(value)
        calls[name] = call
    if calls:
        out["external_extenders"] = calls
    return out


def scheduler_options(values: list[str] | None) -> dict[str, dict[str, Any]] | None:
    """--scheduler-option POLICY.OPTION=VALUE (repeatable) as the config's
    scheduler_options (None when not given, so a --config file's stay); the config
    types each value as the option's default is."""
    out: dict[str, dict[str, Any]] = {}
    for text in values or []:
        key, sep, value = text.partition("=")
        policy, dot, option = key.strip().partition(".")
        if not sep or not dot or not policy or not option or not value.strip():
            raise ConfigError(f"--scheduler-option {text!r}: expected POLICY.OPTION=VALUE, "
                              "e.g. netmarks.weight=2")
        out.setdefault(policy, {})[option.strip()] = value.strip()
    return out or None


def _scenario_for(spec: str, cfg: ExperimentConfig, quick: bool) -> Scenario:
    """The scenario to run (halved by --quick), checked against the run's settings."""
    if cfg.replicates > 1:
        raise ConfigError("--scenario runs once per scheduler; --replicates does not apply")
    if cfg.backend not in ("local", "kwok"):
        raise ConfigError(f"--scenario runs on the local and kwok backends (the emulated "
                          f"cluster moves real pod processes); --backend {cfg.backend} is not "
                          "supported yet")
    chosen = resolve_scenario(spec)
    return chosen.scaled(0.5) if quick else chosen


def run_scenario_cli(config: ExperimentConfig, store: ResultsStore, scenario: Scenario, *,
                     console: Console, backend: Backend) -> None:
    """Run (or continue) a scenario with progress bars; the twin of run_experiment."""
    from harness.scenario import run_scenario

    progress = Progress(
        SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
        TimeElapsedColumn(), TimeRemainingColumn(), console=console, transient=False)
    with progress:
        asyncio.run(run_scenario(config, store, backend, scenario, RichReporter(progress)))
    store.update_manifest(finished_at=provenance.now(),
                          load_avg_at_finish=[round(x, 2) for x in os.getloadavg()])


def _default_out(config: ExperimentConfig) -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    return Path("runs") / f"{stamp}-{'+'.join(config.schedulers)}"


def register(app: typer.Typer) -> None:
    @app.command("run", help=HELP)
    def run(
        scheduler: Annotated[list[str] | None, typer.Option(
            "--scheduler", "-s", help=f"policy to compare with {BASELINE} (repeatable): "
            f"{', '.join(n for n in builtin_policies() if n != BASELINE)}, or an installed "
            "plug-in's name (`schedulers policies` lists them)")] = None,
        backend: Annotated[str | None, typer.Option(help="local (default) | kwok | kubernetes")]
        = None,
        scheduler_option: Annotated[list[str] | None, typer.Option(
            "--scheduler-option", metavar="POLICY.OPTION=VALUE",
            help="local backend: an option of a policy's model (repeatable), e.g. "
                 "netmarks.weight=2, firmament.rounds=3, firmament.load_weight=0.2; "
                 "on kwok too for diktyo, whose real plugins take max_network_cost, "
                 "weight and sorting from them (diktyo.max_network_cost=3); "
                 "`schedulers policies` lists the policies (default: each model's "
                 "defaults)")] = None,
        deployments: Annotated[int | None, typer.Option(help="redeployments per scheduler "
                                                         "(default: 1000)")] = None,
        nodes: Annotated[int | None, typer.Option(help="cluster nodes (default: 5)")] = None,
        link: Annotated[str | None, typer.Option(help="link preset (default: edge)")] = None,
        topology: Annotated[str | None, typer.Option(
            metavar="FILE|PRESET",
            help="nodes with labels and a link per pair class: uniform | zones | edge-cloud "
                 "(built for --nodes and --link) or a topology file (default: --nodes "
                 "identical nodes behind --link)")] = None,
        node_cpu: Annotated[str | None, typer.Option(
            help="CPU capacity per node (4, 500m): the models' allocatable and a cgroup CPU "
                 "quota on the emulated cluster's pods (default: off, no capacity)")] = None,
        cpu_scale: Annotated[float | None, typer.Option(
            help="machine CPU per node CPU for the quota, 0 < S <= 1 (default: fit the nodes "
                 "into this machine's cores less half a core)")] = None,
        protocol: Annotated[list[str] | None, typer.Option(
            "--protocol", help="http and/or grpc (repeatable) (default: both)")] = None,
        sizes: Annotated[str | None, typer.Option(
            help="bytes per unit, comma-separated (default: 16,256,4096,65536,1048576)")] = None,
        items: Annotated[str | None, typer.Option(
            help="items to order, comma-separated, or 'all' (default: the paper's "
                 "flour,boat,bread,coal,iron,coin,sword,tools on the Settlers economy; "
                 "on any other economy, picked from its graph: the deepest item, the "
                 "deepest simple chain and the smallest shared supply)")] = None,
        repetitions: Annotated[int | None, typer.Option(
            help="orders per item x size per layout (default: 5)")] = None,
        layout_budget: Annotated[int | None, typer.Option(
            help="most distinct layouts to measure; more are sampled (default: 30)")] = None,
        warmup_orders: Annotated[int | None, typer.Option(
            help="warm-up orders per item x size per round (default: 3)")] = None,
        warmup_seconds: Annotated[float | None, typer.Option(
            help="warm up for at least this long, for Prometheus (default: 15)")] = None,
        seed: Annotated[int | None, typer.Option(help="(default: 1)")] = None,
        replicates: Annotated[int | None, typer.Option(
            metavar="K",
            help="K independent replications (each its own seed, warm-up, redeployments "
                 "and measurements) in one results directory; the report gives every "
                 "headline with the spread between them and an interval that includes it "
                 "(default: 1; --preset paper: 3)")] = None,
        time_budget: Annotated[str | None, typer.Option(
            metavar="DURATION",
            help="measurement time for the whole run (e.g. 30m, 1h30m, 900s): a pilot "
                 "measures the variance between layouts and between a layout's orders, "
                 "then the rest is split between more layouts and more orders per layout "
                 "so each scheduler's mean is as precise as the time allows; warm-up and "
                 "redeployments come on top (default: none, --layout-budget x "
                 "--repetitions; --preset paper: 30m)")] = None,
        order: Annotated[str | None, typer.Option(
            metavar="file|reverse|random",
            help="the order in which each redeployment creates its Deployments (pods reach "
                 "the scheduler in it): file (the economy's order, inputs first), reverse, "
                 "or random (a new order per redeployment from --seed, the same orders for "
                 "every scheduler). kwok creates them one by one in it; kubernetes sends "
                 "the scale-ups in it 8 at a time, so it holds only roughly there. "
                 "Recorded per placement (default: random, see docs/experiment.md)")] = None,
        economy: Annotated[str | None, typer.Option(
            help="economy YAML file or shipped name (default: settlers2)")] = None,
        kube_context: Annotated[str | None, typer.Option(help="kubernetes backend")] = None,
        kube_namespace: Annotated[str | None, typer.Option(
            help="kubernetes backend: namespace for the release (default: settlers, "
                 "or $SETTLERS_KUBE_NAMESPACE)")] = None,
        kube_release: Annotated[str | None, typer.Option(
            help="kubernetes backend: name of the Helm release the harness installs and "
                 "uninstalls (default: settlers-harness-<hash>, or $SETTLERS_KUBE_RELEASE); "
                 "a release it did not install is never touched")] = None,
        prometheus_url: Annotated[str | None, typer.Option(
            help="kubernetes backend: Prometheus URL as seen from the cluster, for "
                 "NetMARKS (default: the chart's, or $SETTLERS_PROMETHEUS_URL)")] = None,
        external_scheduler: Annotated[list[str] | None, typer.Option(
            "--external-scheduler", metavar="NAME=SCHEDULER_NAME",
            help="kwok/kubernetes: measure a scheduler you run as policy NAME; its pods "
                 "carry SCHEDULER_NAME (repeatable)")] = None,
        external_command: Annotated[list[str] | None, typer.Option(
            "--external-command", metavar="NAME=COMMAND",
            help="the program of --external-scheduler NAME, started on this machine while "
                 "NAME places, with $KUBECONFIG and {kubeconfig} / {scheduler_name} set "
                 "(how a scheduler reaches kwok's control plane) (repeatable)")] = None,
        external_extender: Annotated[list[str] | None, typer.Option(
            "--external-extender", metavar="NAME=URL[,weight=N]",
            help="kwok: measure an extender you serve at URL as policy NAME: a "
                 "kube-scheduler profile NAME calls it (repeatable)")] = None,
        load: Annotated[str | None, typer.Option(
            metavar="RPS[,RPS...]",
            help="background orders per second kept running (open loop, mixed over the "
                 "items and sizes) while each layout is measured; a list measures every "
                 "layout at each and reports response time against load (default: none)")]
        = None,
        load_in_traffic: Annotated[bool | None, typer.Option(
            "--load-in-traffic/--load-not-in-traffic",
            help="run the largest --load during the warm-up too, so the traffic NetMARKS "
                 "learns from includes it (default: not)")] = None,
        preset: Annotated[str | None, typer.Option(
            metavar="quick|paper",
            help="a named set of settings under --config and flags: quick (as --quick) or "
                 "paper (the paper's method with 3 replications and a 30 min measurement "
                 "budget, about 45 minutes on 2 cores)")] = None,
        quick: Annotated[bool, typer.Option(
            "--quick", help="small preset: ~100 redeployments, 3 sizes, http; items "
            "boat,bread,coal,sword on the Settlers economy, picked from the graph "
            "(as for --items) on any other")] = False,
        config: Annotated[Path | None, typer.Option(
            "--config", help="experiment YAML (keys as the flags, with underscores)")] = None,
        out: Annotated[Path | None, typer.Option(
            help="results directory (default: runs/<time>-<schedulers>)")] = None,
        resume: Annotated[Path | None, typer.Option(
            help="continue an interrupted run in DIR with its stored settings")] = None,
        report: Annotated[bool, typer.Option(help="write the report at the end")] = True,
        scenario: Annotated[str | None, typer.Option(
            metavar="FILE|PRESET",
            help="instead of redeploying many times: deploy once per scheduler and run a "
                 "dynamic scenario, phases of open-loop load whose order mix shifts, with "
                 "events (drain, add_node, degrade) while each scheduler's rebalancer "
                 "moves running pods: shift | drain or a scenario file "
                 "(docs/scenarios.md); --quick halves its durations")] = None,
    ) -> None:
        console = Console(stderr=True)
        try:
            externals = _externals(external_scheduler, external_command, external_extender)
            options = scheduler_options(scheduler_option)
        except ConfigError as exc:
            console.print(f"[red]error:[/] {exc}")
            raise typer.Exit(2) from None
        overrides: dict[str, Any] = {
            "schedulers": scheduler or None, "backend": backend, "deployments": deployments,
            "nodes": nodes, "link": link, "topology": topology, "protocols": protocol or None,
            "node_cpu": node_cpu, "cpu_scale": cpu_scale,
            "sizes": _split(sizes, int),
            "items": "all" if items == "all" else _split(items),
            "repetitions": repetitions, "layout_budget": layout_budget,
            "warmup_orders": warmup_orders, "warmup_seconds": warmup_seconds, "seed": seed,
            "replicates": replicates, "time_budget": time_budget,
            "order": order,
            "economy": economy, "kube_context": kube_context,
            "kube_namespace": kube_namespace, "kube_release": kube_release,
            "prometheus_url": prometheus_url,
            "load": _split(load, float), "load_in_traffic": load_in_traffic,
            "scheduler_options": options,
            **externals,
        }
        chosen: Scenario | None = None
        try:
            if resume is not None:
                given = [_FLAG.get(k, f"--{k.replace('_', '-')}")
                         for k, v in overrides.items() if v is not None]
                given += [flag for flag, on in (("--quick", quick), ("--config", config),
                                                ("--preset", preset is not None),
                                                ("--out", out),
                                                ("--scenario", scenario is not None)) if on]
                if given:
                    raise ConfigError("--resume continues a run with its stored settings; "
                                      f"drop {', '.join(given)}")
                store = ResultsStore.open(resume)
                # The stored config was read for its shape; a run needs it fully valid.
                cfg = ExperimentConfig.model_validate(
                    store.manifest().config.model_dump(mode="json"))
                backend_ = backend_for(cfg)
                if has_scenario(store.root):
                    chosen = read_scenario(store.root)
                    console.print(f"[bold]resuming[/] scenario {chosen.name} in {resume} "
                                  f"(done: {', '.join(done_schedulers(store.root)) or 'none'})")
                else:
                    console.print(f"[bold]resuming[/] {resume} ({measured_chunks(store)} "
                                  "chunks already measured)")
            else:
                if quick and preset not in (None, "quick"):
                    raise ConfigError(f"--quick and --preset {preset}: choose one preset")
                cfg = build_config(preset="quick" if quick else preset, file=config,
                                   overrides=overrides)
                if scenario is not None:
                    chosen = _scenario_for(scenario, cfg, quick)
                backend_ = backend_for(cfg)  # a missing backend fails before any file
                out = out or _default_out(cfg)
                store = ResultsStore.create(out, new_manifest(cfg, backend_.description))
                console.print(f"[bold]results:[/] {out}")
                derived = items_note(cfg.items_origin())
                if derived:
                    console.print(derived, highlight=False)
        except (ConfigError, StoreError, BackendUnavailable, ScenarioError) as exc:
            console.print(f"[red]error:[/] {exc}")
            raise typer.Exit(2) from None
        if chosen is not None:
            with resumable(console, f"harness run --resume {store.root}",
                           "finished schedulers' records are kept"):
                try:
                    run_scenario_cli(cfg, store, chosen, console=console, backend=backend_)
                except ScenarioError as exc:
                    console.print(f"[red]error:[/] {exc}")
                    raise typer.Exit(2) from None
            if report:
                from harness.report_cmd import print_report

                print_report(store.root, console)
            return
        # StoreError here: a bad replicate folder, found before anything runs.
        with resumable(console, f"harness run --resume {store.root}",
                       "measured chunks are kept"):
            run_experiment(cfg, store, console=console, backend=backend_)
        if report:
            from harness.report_cmd import print_report

            print_report(store.root, console)
