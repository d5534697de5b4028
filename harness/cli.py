"""`harness`: the experiment's command line.

Each sub-command lives in its own module with a ``register(app)`` function, so a
command is easy to read alone and easy to add beside the others.
"""

from __future__ import annotations

import typer

from harness import cluster_cmd, report_cmd, run_cmd, schedule_cmd, sweep_cmd

app = typer.Typer(
    name="harness",
    help=(
        "Measure whether a network-aware Kubernetes scheduler makes the Settlers "
        "microservices faster: redeploy the app many times under each scheduler, "
        "measure every distinct layout, and write paper-style tables and plots.\n\n"
        "Start with:  harness run --scheduler netmarks --quick"
    ),
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    add_completion=False,
)

for _module in (run_cmd, sweep_cmd, report_cmd, schedule_cmd, cluster_cmd):
    _module.register(app)


def main() -> None:
    app()
