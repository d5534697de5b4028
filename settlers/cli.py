"""``settlers``: run a producer service, show or check an economy."""

from __future__ import annotations

import os
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from settlers import wire
from settlers.economy import DEFAULT_ECONOMY, EconomyError, load_economy
from settlers.economy_view import draw_economy, economy_tree
from settlers.serve import ConfigError, ServeConfig, parse_inputs, run
from settlers.wire import WireProtocol

__all__ = ["app", "main"]

app = typer.Typer(
    name="settlers",
    help=(
        "The Settlers workload: producer services that build items from their inputs.\n\n"
        "Examples:\n\n"
        "  settlers economy show                       # the default 19-item economy\n\n"
        "  settlers serve --item grain --protocol http --port 9001 --host 127.0.0.1\n\n"
        "  settlers serve --item flour --port 9002 --input grain=127.0.0.1:9001"
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)
economy_app = typer.Typer(help="Show or check an economy (the items and their inputs).",
                          no_args_is_help=True)
app.add_typer(economy_app, name="economy")

_err = Console(stderr=True, soft_wrap=True)  # long error messages stay one line


class Loop(StrEnum):
    auto = "auto"
    uvloop = "uvloop"
    asyncio = "asyncio"


_DEFAULT_PORT = {"http": 8080, "grpc": 50051}


def _fail(message: str, code: int = 2) -> typer.Exit:
    _err.print(f"[red]error:[/red] {message}", highlight=False)
    return typer.Exit(code)


@app.command(epilog=(
    "Examples (a three-service chain on this machine):\n\n"
    "  settlers serve --item grain --host 127.0.0.1 --port 9001 &\n\n"
    "  settlers serve --item water --host 127.0.0.1 --port 9002 &\n\n"
    "  settlers serve --item flour --host 127.0.0.1 --port 9003 --input grain=127.0.0.1:9001 &\n\n"
    "  settlers serve --item bread --host 127.0.0.1 --port 9004 "
    "--input flour=127.0.0.1:9003 --input water=127.0.0.1:9002\n\n"
    "  curl -s -D- -o /dev/null -d '{\"count\": 1, \"size\": 16}' http://127.0.0.1:9004/produce\n\n"
    "In Kubernetes set the SETTLERS_* environment variables instead; inputs without an "
    "address default to the service DNS name <item>:<port>."
))
def serve(
    item: Annotated[str, typer.Option(envvar="SETTLERS_ITEM",
                                      help="The item this service produces.")],
    protocol: Annotated[WireProtocol, typer.Option(
        envvar="SETTLERS_PROTOCOL", help="Wire protocol, also used to call inputs.")] = "http",
    port: Annotated[int | None, typer.Option(
        envvar="SETTLERS_PORT", show_default=False,
        help="Port to listen on \\[default: 8080 http, 50051 grpc]; 0 picks a free one "
             "(printed in the ready line).")] = None,
    host: Annotated[str, typer.Option(envvar="SETTLERS_HOST")] = "0.0.0.0",
    economy: Annotated[str, typer.Option(envvar="SETTLERS_ECONOMY",
                                         help="Economy YAML file or shipped name."
                                         )] = DEFAULT_ECONOMY,
    inputs: Annotated[list[str] | None, typer.Option(
        "--input", show_default=False,
        help="ITEM=HOST:PORT of an input (repeatable). Env: SETTLERS_INPUTS="
             "'flour=127.0.0.1:9001,water=127.0.0.1:9002'.")] = None,
    pod_name: Annotated[str, typer.Option(envvar="SETTLERS_POD_NAME", show_default=False,
                                          help="Name recorded in traces \\[default: $HOSTNAME]."
                                          )] = "",
    sequential: Annotated[bool, typer.Option(
        "--sequential", envvar="SETTLERS_SEQUENTIAL",
        help="Fetch inputs one by one instead of in parallel.")] = False,
    timeout: Annotated[float, typer.Option(envvar="SETTLERS_TIMEOUT",
                                           help="Seconds to wait for each input call."
                                           )] = 10.0,
    max_size: Annotated[int, typer.Option(envvar="SETTLERS_MAX_SIZE",
                                          help="Largest answer (count * size) in bytes."
                                          )] = wire.DEFAULT_MAX_SIZE,
    metrics_port: Annotated[int | None, typer.Option(
        envvar="SETTLERS_METRICS_PORT", show_default=False,
        help="gRPC only: also serve /healthz and /metrics over HTTP on this port "
             "(HTTP services serve them on --port).")] = None,
    loop: Annotated[Loop, typer.Option(envvar="SETTLERS_LOOP",
                                       help="Event loop: uvloop when installed (auto)."
                                       )] = Loop.auto,
    mesh_metrics: Annotated[bool, typer.Option(
        "--mesh-metrics", envvar="SETTLERS_MESH_METRICS",
        help="Without a service mesh: export per-peer byte counters under Istio's names "
             "(istio_request_bytes, istio_response_bytes) on /metrics, marked "
             "settlers_exporter=\"producer\". Needs --workload and --namespace.")] = False,
    workload: Annotated[str, typer.Option(
        envvar="SETTLERS_WORKLOAD", show_default=False,
        help="With --mesh-metrics: this pod's workload as Istio names it (its "
             "Deployment's name).")] = "",
    namespace: Annotated[str, typer.Option(
        envvar="SETTLERS_NAMESPACE", show_default=False,
        help="With --mesh-metrics: this pod's namespace.")] = "",
) -> None:
    """Run one producer service until SIGTERM / Ctrl-C."""
    try:
        given = parse_inputs(inputs or [os.environ.get("SETTLERS_INPUTS", "")])
        config = ServeConfig(
            item=item, protocol=protocol,
            port=_DEFAULT_PORT[protocol] if port is None else port, host=host,
            economy=economy, inputs=given, pod_name=pod_name, sequential=sequential,
            timeout=timeout, max_size=max_size, metrics_port=metrics_port,
            loop=loop.value, mesh_metrics=mesh_metrics, workload=workload,
            namespace=namespace,
        )
        run(config)
    except ConfigError as exc:
        raise _fail(str(exc)) from None


@economy_app.command("show", epilog=(
    "Examples:\n\n"
    "  settlers economy show\n\n"
    "  settlers economy show --economy my-economy.yaml --out economy.svg"
))
def economy_show(
    economy: Annotated[str, typer.Option(envvar="SETTLERS_ECONOMY",
                                         help="Economy YAML file or shipped name."
                                         )] = DEFAULT_ECONOMY,
    out: Annotated[Path | None, typer.Option(
        help="Also draw the graph into this file (.png, .svg or .pdf).")] = None,
) -> None:
    """Print the economy as a tree (each product with its inputs) and optionally draw it."""
    try:
        econ = load_economy(economy)
    except EconomyError as exc:
        raise _fail(str(exc)) from None
    Console().print(economy_tree(econ))
    if out is not None:
        if out.suffix.lower() not in {".png", ".svg", ".pdf"}:
            raise _fail(f"--out {out}: the file name must end in .png, .svg or .pdf")
        try:
            draw_economy(econ, out)
        except OSError as exc:
            raise _fail(f"--out {out}: {exc.strerror or exc}") from None
        _err.print(f"wrote {out}")


@economy_app.command("validate", epilog="Example:\n\n  settlers economy validate my-economy.yaml")
def economy_validate(
    file: Annotated[str, typer.Argument(help="Economy YAML file (or shipped name).")],
) -> None:
    """Check an economy file; prints what is wrong (item and problem) or a summary."""
    try:
        econ = load_economy(file)
    except EconomyError as exc:
        raise _fail(str(exc), code=1) from None
    raw = sum(1 for i in econ if i.is_raw)
    typer.echo(f"{file}: ok - economy {econ.name!r}, {len(econ)} items ({raw} raw), "
               f"{len(econ.edges())} input links")


def main() -> None:
    app()
