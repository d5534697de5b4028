"""Dynamic scenarios (``harness run --scenario``): the traffic shifts, nodes come and go,
and rebalancers move running pods; see ``results.scenario`` for the format and
``harness.scenario.runner`` for what happens during a run.

The warm-up is the layout experiment's own (``Experiment.warmup``: the same traffic
sources, stored once as the ``traffic`` table) with the first phase's order mix, so
every scheduler places day one from the same measured traffic. Each scheduler's
records are written when its run ends; a resumed run skips the schedulers already
written and redoes the one that was interrupted (its partial records are discarded,
never mixed with a second attempt's).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from harness.experiment import Experiment, Reporter
from harness.scenario.runner import SchedulerRun, run_one
from results.scenario import (
    Scenario,
    ScenarioError,
    done_schedulers,
    write_scenario,
    write_scenario_tables,
)

if TYPE_CHECKING:
    from harness.backends.base import Backend
    from results.config import ExperimentConfig
    from results.store import ResultsStore
    from schedulers import TrafficMatrix
    from settlers.economy import Economy

__all__ = ["run_scenario"]


async def run_scenario(config: ExperimentConfig, store: ResultsStore, backend: Backend,
                       scenario: Scenario, reporter: Reporter | None = None) -> None:
    """Run (or continue) ``scenario`` under every scheduler of ``config`` into ``store``."""
    reporter = reporter or Reporter()
    economy = config.load_economy()
    scenario.check(economy.names, backend.placer.node_names)
    _check_rebalancers(config, scenario, reporter)
    write_scenario(store.root, scenario)
    first = scenario.phases[0].orders
    warm_cfg = config.model_copy(update={
        "items": list(first.items), "sizes": list(first.sizes),
        "protocols": [scenario.protocol], "warmup_seconds": scenario.warmup_s,
        "warmup_orders": 1})
    try:
        warm = Experiment(warm_cfg, store, backend, reporter)
        try:
            traffic = await warm.warmup()
        finally:
            await warm._stop_plane()
        done = set(done_schedulers(store.root))
        for run in _runs(config, scenario, backend, economy, traffic, reporter):
            if run.label in done:
                reporter.note(f"{run.label}: scenario already recorded, skipped")
                continue
            await run_one(run)
            write_scenario_tables(store.root, run.label, run.tables())
            moved = sum(1 for m in run.migrations if m["ok"])
            failed = sum(1 for o in run.orders if not o.ok)
            reporter.note(f"{run.label}: {len(run.orders)} orders ({failed} failed), "
                          f"{moved} pod(s) moved")
    finally:
        await backend.close()


def _check_rebalancers(config: ExperimentConfig, scenario: Scenario, reporter: Reporter) -> None:
    """Bad rebalancer options fail before the warm-up, not after the first scheduler."""
    from schedulers.rebalancers import rebalancer_for

    for scheduler in config.schedulers:
        try:
            rebalancer_for(scheduler, **scenario.rebalancers.get(scheduler, {}))
        except ValueError as exc:
            raise ScenarioError(f"scenario {scenario.name}: rebalancers.{scheduler}: {exc}"
                                ) from None
    unused = sorted(set(scenario.rebalancers) - set(config.schedulers))
    if unused:
        reporter.note(f"rebalancer options for {', '.join(unused)} unused: not in this run")


def _runs(config: ExperimentConfig, scenario: Scenario, backend: Backend, economy: Economy,
          traffic: TrafficMatrix | None, reporter: Reporter) -> list[SchedulerRun]:
    """Each scheduler; after each one with a rebalancer, its static twin (same seed, so
    the same day one on the local backend) when the scenario asks for it."""
    from schedulers.rebalancers import rebalancer_for

    out: list[SchedulerRun] = []
    for index, scheduler in enumerate(config.schedulers):
        options = scenario.rebalancers.get(scheduler, {})
        twins = [True, False] if (scenario.static_twins
                                  and rebalancer_for(scheduler, **options) is not None) else [True]
        out += [SchedulerRun(
            scheduler=scheduler, scenario=scenario, backend=backend, economy=economy,
            traffic=traffic, seed=config.seed * 1000 + index, order_seed=config.seed,
            options=config.scheduler_options.get(scheduler, {}), rebalance_options=options,
            reporter=reporter, rebalance=rebalance) for rebalance in twins]
    return out
