"""tools/doc_tables.py: the docs' result tables rendered from committed runs.

The docs themselves are held against it in test_docs_numbers.py; here: the command in
each caption gives back exactly the run's recorded config through the real `harness
run`, the tag's filters and views work, a stale table is found and rewritten, and a
bad tag says what is wrong.
"""

from __future__ import annotations

import importlib.util
import json
import shlex
import sys
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest
from typer.testing import CliRunner

from results.config import ExperimentConfig

ROOT = Path(__file__).resolve().parents[2]
RUNS = sorted(p.parent for p in (ROOT / "docs" / "examples").glob("*/manifest.json"))
RUN = "docs/examples/default-run"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("_doc_tables_under_test",
                                                  ROOT / "tools" / "doc_tables.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


tool = _load()


def _through_harness_run(command: str, tmp_path: Path,
                         monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """The config `harness run` itself builds from ``command``; nothing is run."""
    from harness import run_cmd
    from harness.cli import app
    from results.manifest import BackendDescription

    words = shlex.split(command)
    assert words[:2] == ["harness", "run"]
    got: list[ExperimentConfig] = []
    description = BackendDescription(name="local", places="test", measures="test")
    monkeypatch.setattr(run_cmd, "backend_for",
                        lambda cfg: SimpleNamespace(description=description))
    monkeypatch.setattr(run_cmd, "run_experiment",
                        lambda cfg, store, **kw: got.append(cfg))
    done = CliRunner().invoke(app, [*words[1:], "--out", str(tmp_path / "r"), "--no-report"])
    assert done.exit_code == 0, done.output
    dumped: dict[str, Any] = got[0].model_dump(mode="json")
    return dumped


@pytest.mark.parametrize("run", RUNS, ids=lambda p: p.name)
def test_the_caption_command_gives_the_recorded_config(
        run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    recorded = json.loads((run / "manifest.json").read_text())["config"]
    want = ExperimentConfig.recorded(recorded).model_dump(mode="json")
    assert _through_harness_run(tool.command(recorded), tmp_path, monkeypatch) == want


def test_the_caption_names_command_machine_and_date() -> None:
    caption = tool.caption(RUN)
    assert caption.startswith("<sub>") and caption.endswith("</sub>")
    assert "`harness run -s netmarks`" in caption
    assert "AMD EPYC, 2 cores" in caption
    assert "load average 0.13 at the start, 3.49 at the finish" in caption
    assert "2026-12-02 03:26 to 03:38 UTC (12 min)" in caption


def test_filters_columns_and_views() -> None:
    rows = tool.render_table(tool.TableSpec.parse(
        f"{RUN} tables/response_time.csv view=wide keys=item size=1048576 protocol=http"))
    assert rows[0] == ("| item | kube_default (ms) | netmarks (ms) | "
                       "netmarks vs kube_default (%) |")
    assert rows[2] == "| flour | 33.6 [27.3, 38.3] | 6.0 [5.5, 6.5] | 82.1 [77.9, 84.9] |"
    assert len(rows) == 2 + 8
    plain = tool.render_table(tool.TableSpec.parse(
        f'{RUN} tables/paired_test.csv "cells=all cells,simple chain" '
        "columns=cells,pairs,p_value digits=0"))
    assert plain == ["| cells | pairs | p |", "|---|---|---|",
                     "| all cells | 80 | 7.8e-15 |", "| simple chain | 20 | 1.9e-06 |"]
    headline = tool.render_table(tool.TableSpec.parse(f"{RUN} tables/headline.csv"))
    assert headline[3].startswith("| netmarks | 125.6 | 47.0 | 82.1 | 28.6 |")


def test_a_stale_table_is_found_and_rewritten(tmp_path: Path) -> None:
    doc = tmp_path / "doc.md"
    fresh = tool.rewrite(f"Intro.\n\n<!-- data-table: {RUN} tables/headline.csv -->\n\nAfter.\n")
    assert fresh.splitlines()[3].startswith("<sub>Run `docs/examples/default-run/`")
    assert "\n\nAfter.\n" in fresh  # the table ends at a blank line
    assert tool.rewrite(fresh) == fresh
    doc.write_text(fresh.replace("| 47.0 |", "| 48.0 |"))
    assert tool.main([str(doc)]) == 1
    assert tool.main([str(doc), "--write"]) == 0
    assert doc.read_text() == fresh
    assert tool.main([str(doc), "--check"]) == 0


def test_tags_in_code_blocks_and_bench_tags_are_left_alone() -> None:
    text = (f"```\n<!-- data-table: {RUN} tables/headline.csv -->\n```\n"
            "<!-- data-table: bench/hop.py bench/results/hop.json -->\n| a |\n")
    assert tool.rewrite(text) == text


@pytest.mark.parametrize(("spec", "message"), [
    (f"{RUN} tables/nope.csv", "no tables/nope.csv (its tables: beside_paper.csv"),
    (f"{RUN} tables/headline.csv colour=red", "no column 'colour' to filter on"),
    (f"{RUN} tables/headline.csv scheduler=random", "no row matches scheduler=random"),
    (f"{RUN} tables/headline.csv columns=speed", "no column speed"),
    (f"{RUN} tables/headline.csv view=fancy", "view=fancy; known: plain, wide, paper"),
    (f"{RUN} tables/response_time.csv view=wide", "view=wide needs keys="),
    (f"{RUN} headline.csv", "expected `RUN tables/NAME.csv"),
    ("docs/examples/kwok-quick tables/headline.csv", "no manifest.json"),
])
def test_a_bad_tag_says_what_is_wrong(spec: str, message: str) -> None:
    with pytest.raises(tool.DocTableError) as caught:
        tool.render(spec)
    assert message in str(caught.value)


def test_a_bad_tag_in_a_file_names_the_line(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[Any]) -> None:
    doc = tmp_path / "doc.md"
    doc.write_text(f"x\n<!-- data-table: {RUN} tables/nope.csv -->\n")
    assert tool.main([str(doc)]) == 2
    assert ":2: docs/examples/default-run: no tables/nope.csv" in capsys.readouterr().err


def test_a_bench_table_with_run_gets_that_runs_caption_only() -> None:
    tag = "<!-- data-table: bench/hop.py bench/results/hop.json run=docs/examples/quick-work -->"
    text = f"{tag}\n| a |\n|---|\n| 1 |\n"
    fresh = tool.rewrite(text)
    lines = fresh.splitlines()
    assert lines[1] == tool.caption("docs/examples/quick-work")
    assert "resumed once" in lines[1] and "--economy settlers2-work" in lines[1]
    assert lines[2:] == ["", "| a |", "|---|", "| 1 |"]  # the table itself is not ours
    assert tool.rewrite(fresh) == fresh


@pytest.mark.parametrize(("overrides", "flags"), [
    ({"replicates": 3, "time_budget": "30m"}, "harness run --preset paper -s netmarks"),
    ({"deployments": 100, "items": ["boat", "bread", "coal", "sword"], "sizes": [16, 65536,
      1048576], "protocols": ["http"], "repetitions": 3, "layout_budget": 12,
      "warmup_orders": 1, "warmup_seconds": 10.0, "order": "reverse"},
     "harness run --quick -s netmarks --order reverse"),
    ({"time_budget": "90s", "schedulers": ["firmament"], "load_in_traffic": True,
      "load": [5]}, "harness run -s firmament --time-budget 90s --load 5 --load-in-traffic"),
])
def test_the_shortest_command_per_preset(overrides: dict[str, Any], flags: str, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from results.config import build_config

    config = build_config(overrides=overrides).model_dump(mode="json")
    assert tool.command(config) == flags
    assert _through_harness_run(flags, tmp_path, monkeypatch) == config


def test_a_config_no_flags_give_is_refused_not_misquoted() -> None:
    from results.config import build_config

    config = build_config(overrides={"bootstrap": 200}).model_dump(mode="json")
    with pytest.raises(tool.DocTableError, match="no `harness run` flags rebuild"):
        tool.command(config)
