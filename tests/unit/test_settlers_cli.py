"""The `settlers` command line: economy show/validate and serve's configuration errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from settlers.cli import app
from settlers.economy import load_economy
from settlers.serve import ConfigError, parse_inputs, resolve_inputs

pytestmark = pytest.mark.cli  # asserts on what the commands print

runner = CliRunner()


def test_economy_show_prints_the_tree() -> None:
    result = runner.invoke(app, ["economy", "show"])
    assert result.exit_code == 0, result.output
    assert "settlers2: 19 items" in result.output
    assert "grain (raw)" in result.output
    assert "coal (see above)" in result.output  # shared chains are expanded once


@pytest.mark.parametrize("suffix", [".png", ".svg"])
def test_economy_show_draws_a_picture(tmp_path: Path, suffix: str) -> None:
    out = tmp_path / f"economy{suffix}"
    result = runner.invoke(app, ["economy", "show", "--out", str(out)])
    assert result.exit_code == 0, result.output
    data = out.read_bytes()
    assert data.startswith(b"\x89PNG") if suffix == ".png" else b"<svg" in data[:2000]
    if suffix == ".svg":
        assert b"sword" in data  # the labels are drawn


def test_economy_show_refuses_unknown_picture_format(tmp_path: Path) -> None:
    result = runner.invoke(app, ["economy", "show", "--out", str(tmp_path / "e.gif")])
    assert result.exit_code == 2
    assert "must end in .png, .svg or .pdf" in result.output


def test_economy_validate_ok_and_errors(tmp_path: Path) -> None:
    ok = runner.invoke(app, ["economy", "validate", "settlers2"])
    assert ok.exit_code == 0
    assert "19 items (4 raw), 28 input links" in ok.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("items:\n  bread: {inputs: {flour: 1}}\n")
    result = runner.invoke(app, ["economy", "validate", str(bad)])
    assert result.exit_code == 1
    assert "item 'bread': unknown input 'flour'" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--item", "cake"], "--item 'cake' is not in economy 'settlers2'; known items:"),
        (["--item", "flour", "--input", "water=127.0.0.1:1"], "'flour' consumes grain"),
        (["--item", "water", "--input", "grain=127.0.0.1:1"], "nothing (it is a raw item)"),
        (["--item", "flour", "--input", "grain=nowhere"], "the address must be HOST:PORT"),
        (["--item", "water", "--economy", "/no/such.yaml"], "cannot read economy file"),
        (["--item", "water", "--timeout", "0"], "--timeout must be > 0"),
        (["--item", "water", "--max-size", "0"], "--max-size must be >= 1"),
        (["--item", "water", "--port", "70000"], "--port must be 0..65535"),
    ],
)
def test_serve_configuration_errors(args: list[str], message: str) -> None:
    result = runner.invoke(app, ["serve", *args])
    assert result.exit_code == 2, result.output
    assert message in result.output


def test_serve_port_in_use_is_a_clear_error() -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        result = runner.invoke(app, ["serve", "--item", "water", "--host", "127.0.0.1",
                                     "--port", str(port)])
    assert result.exit_code == 2
    assert f"cannot listen on 127.0.0.1:{port}" in result.output


def test_parse_inputs_flag_and_env_forms() -> None:
    assert parse_inputs(["flour=127.0.0.1:9001", "water=127.0.0.1:9002"]) == {
        "flour": "127.0.0.1:9001", "water": "127.0.0.1:9002"}
    assert parse_inputs(["flour=127.0.0.1:9001, water"]) == {
        "flour": "127.0.0.1:9001", "water": ""}
    assert parse_inputs([""]) == {}
    with pytest.raises(ConfigError, match="'flour' is given twice"):
        parse_inputs(["flour=a:1", "flour=b:2"])
    with pytest.raises(ConfigError, match="expected ITEM=HOST:PORT"):
        parse_inputs(["=a:1"])


def test_inputs_default_to_kubernetes_service_names() -> None:
    bread = load_economy()["bread"]
    assert resolve_inputs(bread, {"water": "10.0.0.5:7000"}, 8080) == {
        "flour": "flour:8080", "water": "10.0.0.5:7000"}


def test_serve_reads_inputs_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SETTLERS_INPUTS", "water=127.0.0.1:1")
    result = runner.invoke(app, ["serve", "--item", "flour"])
    assert result.exit_code == 2
    assert "'flour' consumes grain" in result.output


def test_economy_show_marks_quantities_work_and_replicas(tmp_path: Path) -> None:
    path = tmp_path / "bakery.yaml"
    path.write_text("items:\n  grain: {}\n  flour: {inputs: {grain: 2}, work_ms: 3}\n"
                    "  bread: {inputs: {flour: 1}, replicas: 2}\n")
    result = runner.invoke(app, ["economy", "show", "--economy", str(path)])
    assert result.exit_code == 0, result.output
    assert "bakery: 3 items" in result.output
    assert "2 x grain (raw)" in result.output
    assert "flour (work 3 ms)" in result.output
    assert "bread (2 replicas)" in result.output
