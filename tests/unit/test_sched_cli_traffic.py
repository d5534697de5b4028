"""`schedulers netmarks-extender` / `schedulers firmament`: --since T0 (the default mode)
and --window S, and the clear errors for what does not go together."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from schedulers.cli import _interval, app
from schedulers.promtraffic import Interval

runner = CliRunner()
PROM = "http://127.0.0.1:9"
T0 = 1_764_629_403.0


def test_since_is_the_default_and_starts_at_the_process_start() -> None:
    assert _interval(PROM, None, None, started=T0) == Interval(since=T0)
    assert _interval(PROM, "2025-12-01T22:50:03Z", None, started=T0 + 99) == Interval(since=T0)
    assert _interval(PROM, "1764629403", None, started=T0 + 99) == Interval(since=T0)
    assert _interval(PROM, None, 30, started=T0) == Interval(window_s=30)
    assert _interval(None, None, None, started=T0) is None  # a file or nothing


@pytest.mark.parametrize(("prom", "since", "window", "hint", "message"), [
    (PROM, "1764629403", 30.0, "--since/--window", "not both"),
    (None, "1764629403", None, "--since/--window", "need --prometheus"),
    (None, None, 30.0, "--since/--window", "need --prometheus"),
    (PROM, None, 0.0, "--window", "must be > 0"),
    (PROM, "last tuesday", None, "--since", "neither unix seconds nor an ISO 8601 time"),
    (PROM, "2025-12-01T22:50:03", None, "--since", "no time zone"),
])
def test_bad_combinations_are_refused_with_the_reason(
        prom: str | None, since: str | None, window: float | None, hint: str,
        message: str) -> None:
    with pytest.raises(typer.BadParameter) as info:
        _interval(prom, since, window, started=T0)
    assert info.value.param_hint == hint
    assert message in str(info.value)


@pytest.mark.parametrize("command", ["netmarks-extender", "firmament"])
def test_both_commands_refuse_since_with_window_before_starting(command: str) -> None:
    result = runner.invoke(app, [command, "--prometheus", PROM, "--since", "1764629403",
                                 "--window", "30"])
    assert result.exit_code == 2
    assert "not both" in " ".join(result.output.replace("│", " ").split())


def test_since_needs_prometheus(tmp_path: Path) -> None:
    traffic = tmp_path / "t.csv"
    traffic.write_text("source,destination,bytes\na,b,1\n")
    result = runner.invoke(app, ["netmarks-extender", "--traffic", str(traffic),
                                 "--since", "1764629403"])
    assert result.exit_code == 2
    assert "need --prometheus" in " ".join(result.output.replace("│", " ").split())
