"""How a long command (`run`, `sweep`) stops: exit codes and the command that continues it.

Both keep everything measured so far, so every way of stopping ends with the one
command that picks the work up again: a bad setting or results directory (exit 2), an
interrupt (130), any other failure (1).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import typer
from rich.console import Console

from harness.backends.base import BackendUnavailable
from results.config import ConfigError
from results.store import StoreError

__all__ = ["resumable"]


@contextmanager
def resumable(console: Console, resume: str, kept: str) -> Iterator[None]:
    """``resume``: the command that continues; ``kept``: what stays, in words."""
    try:
        yield
    except (ConfigError, StoreError, BackendUnavailable) as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        console.print(f"\n[yellow]interrupted[/]; {kept}. Continue with:\n  {resume}")
        raise typer.Exit(130) from None
    except Exception as exc:  # it stops; what it measured stays usable
        console.print(f"[red]error:[/] {type(exc).__name__}: {exc}\n"
                      f"{kept[0].upper()}{kept[1:]}. Continue with:\n  {resume}")
        raise typer.Exit(1) from None
