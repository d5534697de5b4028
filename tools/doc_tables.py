#!/usr/bin/env python3
"""The result tables of README.md and docs/*.md, rendered from committed runs.

    tools/doc-tables            # --check: exit 1 and show the differences if a table is stale
    tools/doc-tables --write    # rewrite every tagged table (and its caption) in place
    tools/doc-tables docs/experiment.md --write   # only these files

A results directory committed under docs/examples/ (manifest.json + tables/*.csv, as
`harness run` writes them) is the single source of a table the docs show from it. A
table is tagged on its own line, right before it:

    <!-- data-table: RUN tables/NAME.csv [view=plain|wide|paper] [keys=COL,..]
         [columns=COL,..] [digits=N] [COL=VALUE,..]... -->

(one line in the file). RUN is the repo-relative results directory, NAME one of its
tables. ``COL=VALUE,..`` keeps the rows whose COL is one of the values (as written in
the CSV: ``size=1048576 protocol=http``; quote a value with spaces: ``cells="all
cells"``). The view says how the long CSV is shown:

- ``plain`` (default): ``columns`` in that order (default all), headers from
  ``_TITLES``, floats with ``digits`` decimals (default 1); a ``mean`` with
  ``ci_low``/``ci_high`` becomes "mean [low, high]", and so does ``reduction_pct``.
- ``wide``: the report's layout (analysis.render.pretty): one row per ``keys``, per
  scheduler "mean [CI]" and its reduction against the baseline.
- ``paper``: the report's "This run beside the paper" table (analysis.paper).

The script owns the lines after the tag: a caption, a blank line and the table. The
caption names the run, its command (the run's recorded settings written as today's
`harness run` flags, checked to rebuild exactly that config), the machine (CPU, cores,
load average at the start and the finish, from the manifest) and the date (start and
finish, UTC). A table rendered by a bench script (``<!-- data-table: bench/SCRIPT.py
JSON -->``, checked by tests/unit/test_docs_numbers.py) is not touched here; given
``run=DIR`` (the committed run its JSON summarises) the script writes that run's caption
between the tag and the table.
"""

from __future__ import annotations

import argparse
import difflib
import json
import math
import re
import shlex
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a file from anywhere: the checkout's packages
    sys.path.insert(0, str(ROOT))

from analysis.paper import pretty_beside_paper  # noqa: E402
from analysis.render import ci_text, markdown, pretty  # noqa: E402
from analysis.report import HEADLINE_TITLES  # noqa: E402
from results.config import BASELINE, ExperimentConfig, build_config  # noqa: E402
from results.scenario import (  # noqa: E402
    SCENARIO_DIR,
    SCENARIO_PRESETS,
    has_scenario,
    read_scenario,
)

__all__ = ["DOCS", "Block", "TableSpec", "bench_run", "blocks", "caption", "command", "main",
           "render", "render_block", "rewrite"]

DOCS = [ROOT / "README.md", ROOT / "BENCHMARKS.md", *sorted((ROOT / "docs").glob("*.md"))]

TAG = re.compile(r"<!--\s*data-table:\s*(.*?)\s*-->")
CAPTION_START, CAPTION_END = "<sub>", "</sub>"

# Headers of the plain view (the report's words); other columns keep their CSV name.
_TITLES = {
    **HEADLINE_TITLES,
    # A replicated run's combined table (analysis.replicates).
    "sd_between": "SD between replicates",
    "sd_between_over_se_within": "SD between / within-run SE",
    "mean_ms_per_redeployment": "scheduling per redeployment (ms)",
    "reduction_pct": "reduction (%)",
    "best_reduction_pct": "best cell's reduction (%)",
    "best_cell": "best cell",
    "median_reduction_pct": "median reduction (%)",
    "p_value": "p",
    "top_layout_share_pct": "most frequent layout (%)",
    "unit_coverage_pct": "unit coverage (%)",
    "item_class": "item class",
    "layouts_measured": "layouts measured",
    "load_rps": "background load (orders/s)",
    "size": "size (B)",
    "offered_rps": "offered (orders/s)",
    "scheduled_rps": "scheduled (orders/s)",
    "achieved_rps": "achieved (orders/s)",
    "achieved_rps_min": "achieved, slowest chunk",
    "background_p50_ms": "background p50 (ms)",
    "background_p99_ms": "background p99 (ms)",
    "max_launch_lag_ms": "max launch lag (ms)",
}
_VIEWS = ("plain", "wide", "paper")
# What a table's `mean` column measures, for the wide view's headers (else milliseconds).
_MEAN_UNIT = {"inter_node_transfers": " (%)", "inter_node_bytes": " (MiB per layout)"}
_OPTIONS = ("view", "keys", "columns", "digits")


class DocTableError(ValueError):
    """A tag that cannot be rendered: names the file, the line and what is wrong."""


@dataclass(frozen=True)
class TableSpec:
    """What one `data-table:` tag on a results directory asks for."""

    run: str
    table: str
    view: str = "plain"
    keys: tuple[str, ...] = ()
    columns: tuple[str, ...] = ()
    digits: int = 1
    where: tuple[tuple[str, tuple[str, ...]], ...] = ()

    @classmethod
    def parse(cls, spec: str) -> TableSpec:
        try:
            words = shlex.split(spec)  # a value with spaces is quoted: cells="all cells"
        except ValueError as exc:
            raise DocTableError(f"{spec!r}: {exc}") from None
        if len(words) < 2 or not words[1].startswith("tables/") or not words[1].endswith(
                ".csv"):
            raise DocTableError(f"{spec!r}: expected `RUN tables/NAME.csv [OPTION=VALUE...]`")
        opts: dict[str, str] = {}
        where: list[tuple[str, tuple[str, ...]]] = []
        for word in words[2:]:
            key, sep, value = word.partition("=")
            if not sep or not key or not value:
                raise DocTableError(f"{spec!r}: {word!r} is not OPTION=VALUE or COLUMN=VALUE")
            if key in _OPTIONS:
                opts[key] = value
            else:
                where.append((key, tuple(value.split(","))))
        view = opts.get("view", "plain")
        if view not in _VIEWS:
            raise DocTableError(f"{spec!r}: view={view}; known: {', '.join(_VIEWS)}")
        if view == "wide" and "keys" not in opts:
            raise DocTableError(f"{spec!r}: view=wide needs keys=COLUMN[,COLUMN...]")
        if not opts.get("digits", "1").isdigit():
            raise DocTableError(f"{spec!r}: digits must be a whole number")
        return cls(run=words[0].rstrip("/"), table=words[1], view=view,
                   keys=tuple(opts["keys"].split(",")) if "keys" in opts else (),
                   columns=tuple(opts["columns"].split(",")) if "columns" in opts else (),
                   digits=int(opts.get("digits", "1")), where=tuple(where))

    @property
    def root(self) -> Path:
        return ROOT / self.run


def is_run_spec(spec: str) -> bool:
    """A results-directory tag (the other kind names a bench script)."""
    first = spec.split()[0] if spec.split() else ""
    return not first.endswith(".py")


# ---------------------------------------------------------------- the table


def _read(spec: TableSpec) -> pd.DataFrame:
    path = spec.root / spec.table
    if not path.is_file():
        known = sorted(p.name for p in (spec.root / "tables").glob("*.csv"))
        raise DocTableError(f"{spec.run}: no {spec.table} "
                            f"(its tables: {', '.join(known) or 'none'})")
    frame = pd.read_csv(path)
    for column in frame.columns:  # an empty text cell is "", as the report had it
        if frame[column].dtype == object or column in ("where", "best_cell"):
            frame[column] = frame[column].astype(object).where(frame[column].notna(), "")
    for column, values in spec.where:
        if column not in frame.columns:
            raise DocTableError(f"{spec.run}/{spec.table}: no column {column!r} to filter on "
                                f"(columns: {', '.join(frame.columns)})")
        frame = frame[frame[column].astype(str).isin(values)]
    if frame.empty:
        wanted = " ".join(f"{c}={','.join(v)}" for c, v in spec.where)
        raise DocTableError(f"{spec.run}/{spec.table}: no row matches {wanted}")
    return frame.reset_index(drop=True)


def _plain(frame: pd.DataFrame, spec: TableSpec) -> pd.DataFrame:
    columns = list(spec.columns) or [c for c in frame.columns if not c.startswith(
        ("ci_", "reduction_ci_", "best_ci_"))]
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DocTableError(f"{spec.run}/{spec.table}: no column {', '.join(missing)} "
                            f"(columns: {', '.join(frame.columns)})")
    shown: dict[str, list[str]] = {}
    for column in columns:
        shown[_TITLES.get(column, column)] = [
            _cell(row, column, spec.digits) for row in frame.to_dict("records")]
    return pd.DataFrame(shown)


def _cell(row: dict[str, Any], column: str, digits: int) -> str:
    value = row[column]
    interval = {"mean": ("ci_low", "ci_high"),
                "reduction_pct": ("reduction_ci_low_pct", "reduction_ci_high_pct"),
                "best_reduction_pct": ("best_ci_low_pct", "best_ci_high_pct")}.get(column)
    if interval and all(k in row for k in interval):
        return ci_text(float(value), float(row[interval[0]]), float(row[interval[1]]), digits)
    if isinstance(value, float):
        if not math.isfinite(value):
            return "—"
        if column == "p_value":
            return f"{value:.2g}"
        return f"{value:.{digits}f}"
    return str(value)


def render_table(spec: TableSpec) -> list[str]:
    frame = _read(spec)
    if spec.view == "paper":
        shown = pretty_beside_paper(frame)
    elif spec.view == "wide":
        missing = [k for k in spec.keys if k not in frame.columns]
        if missing:
            raise DocTableError(f"{spec.run}/{spec.table}: no key column {', '.join(missing)}")
        shown = pretty(frame, list(spec.keys), BASELINE, digits=spec.digits,
                       unit=_MEAN_UNIT.get(Path(spec.table).stem, " (ms)"))
        if spec.columns:
            shown = shown[[c for c in shown.columns if c in spec.keys or c in spec.columns]]
        shown = shown.rename(columns={k: _TITLES.get(k, k) for k in spec.keys})
    else:
        shown = _plain(frame, spec)
    return markdown(shown).rstrip("\n").splitlines()


# ---------------------------------------------------------------- the caption


def _manifest(run: str) -> dict[str, Any]:
    path = ROOT / run / "manifest.json"
    if not path.is_file():
        raise DocTableError(f"{run}: no manifest.json (a table needs its run's manifest for "
                            "the command, machine and date)")
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def _flag_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _flags(overrides: dict[str, Any]) -> list[str]:
    out: list[str] = []
    for key in ExperimentConfig.model_fields:  # the config's order: stable and readable
        if key not in overrides:
            continue
        value = overrides[key]
        if key == "schedulers":
            out += [a for s in value if s != BASELINE for a in ("-s", s)]
        elif key == "protocols":
            out += [a for p in value for a in ("--protocol", p)]
        elif key == "load_in_traffic":
            out.append("--load-in-traffic" if value else "--load-not-in-traffic")
        elif key == "topology":
            out += ["--topology", value["name"]]
        elif key == "time_budget":
            minutes = value / 60
            out += ["--time-budget", f"{minutes:g}m" if minutes.is_integer() else f"{value:g}s"]
        elif isinstance(value, list):
            out += [f"--{key.replace('_', '-')}", ",".join(_flag_value(v) for v in value)]
        else:
            out += [f"--{key.replace('_', '-')}", _flag_value(value)]
    return out


# Settings `harness run` has no flag for: a run that changed them needs --config.
_NO_FLAG = {"count", "bootstrap", "confidence", "external_schedulers", "external_extenders"}


def _as_overrides(diff: dict[str, Any]) -> dict[str, Any]:
    """The differing settings as `harness run` would receive them from its flags."""
    out = dict(diff)
    if isinstance(out.get("topology"), dict):
        out["topology"] = out["topology"]["name"]
    return out


def command(config: dict[str, Any]) -> str:
    """The `harness run` command that gives exactly this recorded config today.

    Tries no preset, --quick and --preset paper and keeps the shortest; raises if no flags
    rebuild the config (a setting without a flag, a topology file), so a caption never
    shows a command that would run something else.
    """
    target = ExperimentConfig.recorded(config).model_dump(mode="json")
    best: list[str] | None = None
    for preset in (None, "quick", "paper"):
        base = build_config(preset=preset).model_dump(mode="json")
        # The schedulers always, so the command reads as what it compares.
        diff = {k: v for k, v in target.items() if base.get(k) != v or k == "schedulers"}
        if diff.keys() & _NO_FLAG:
            continue
        overrides = _as_overrides(diff)
        try:
            rebuilt = build_config(preset=preset, overrides=overrides).model_dump(mode="json")
        except ValueError:
            continue
        if rebuilt != target:
            continue
        given = {None: [], "quick": ["--quick"]}.get(preset, ["--preset", str(preset)])
        words = ["harness", "run", *given, *_flags(diff)]
        if best is None or len(words) < len(best):
            best = words
    if best is None:
        raise DocTableError("no `harness run` flags rebuild this recorded config")
    return shlex.join(best)


def _when(iso: str) -> datetime:
    return datetime.fromisoformat(iso)


def _scenario_arg(run: str, cmd: str) -> str:
    """The preset a scenario run ran (halved when the command has --quick), else its file."""
    ran = read_scenario(ROOT / run)
    for name, preset in SCENARIO_PRESETS.items():
        expected = preset().scaled(0.5) if "--quick" in cmd.split() else preset()
        if expected == ran:
            return name
    return f"{run}/{SCENARIO_DIR}/scenario.yaml"


def caption(run: str) -> str:
    """One line: the run, its command, the machine and the date (all from the manifest)."""
    m = _manifest(run)
    machine = m.get("machine", {})
    start = _when(m["started_at"])
    finish = _when(m["finished_at"]) if m.get("finished_at") else None
    date = f"{start:%Y-%m-%d %H:%M}"
    if finish is not None:
        same_day = finish.date() == start.date()
        date += f" to {finish:%H:%M}" if same_day else f" to {finish:%Y-%m-%d %H:%M}"
        date += f" UTC ({round((finish - start).total_seconds() / 60)} min"
        resumed = len(m.get("resumed_at") or [])
        date += {0: ")", 1: ", resumed once)"}.get(resumed, f", resumed {resumed} times)")
    else:
        date += " UTC (not finished)"
    load_start = (machine.get("load_avg_at_start") or ["?"])[0]
    load_finish = (m.get("load_avg_at_finish") or ["?"])[0]
    cmd = command(m["config"])
    if has_scenario(ROOT / run):
        cmd = cmd.replace("harness run", f"harness run --scenario {_scenario_arg(run, cmd)}", 1)
    return (f"{CAPTION_START}Run `{run}/`: `{cmd}` (its recorded settings as "
            f"flags) · {machine.get('cpu', '?')}, {machine.get('cores', '?')} cores, load "
            f"average {load_start} at the start, {load_finish} at the finish · "
            f"{date}{CAPTION_END}")


def render(spec_text: str) -> list[str]:
    """The lines a tag owns: the caption, a blank line, the table."""
    spec = TableSpec.parse(spec_text)
    return [caption(spec.run), "", *render_table(spec)]


# ---------------------------------------------------------------- the documents


@dataclass(frozen=True)
class Block:
    """A tag and the lines after it that it owns (``start``..``end``, 0-based, exclusive)."""

    line: int  # the tag's line, 1-based
    spec: str
    start: int
    end: int
    caption_only: bool = False  # a bench-script table: the caption is ours, the table not


def bench_run(spec: str) -> str | None:
    """The ``run=DIR`` of a bench-script tag: the committed run its caption names."""
    runs = [w.removeprefix("run=") for w in spec.split() if w.startswith("run=")]
    return runs[0].rstrip("/") if runs else None


def render_block(block: Block) -> list[str]:
    """The lines ``block`` should hold."""
    if block.caption_only:
        run = bench_run(block.spec)
        assert run is not None
        return [caption(run), ""]  # a blank line: the table must not continue the caption
    return render(block.spec)


def _fenced(lines: list[str]) -> set[int]:
    inside, fenced = False, set()
    for i, line in enumerate(lines):
        if line.lstrip().startswith("```"):
            inside = not inside
        elif inside:
            fenced.add(i)
    return fenced


def blocks(lines: list[str]) -> Iterator[Block]:
    """Results-directory tags alone on their line, with the caption and table after them,
    and bench-script tags with ``run=DIR``, with the caption after them."""
    fenced = _fenced(lines)
    for i, line in enumerate(lines):
        m = TAG.fullmatch(line.strip())
        if i in fenced or not m:
            continue
        j = i + 1
        if j < len(lines) and lines[j].startswith(CAPTION_START):
            j += 1
        if not is_run_spec(m.group(1)):
            if bench_run(m.group(1)) is not None:
                while j < len(lines) and not lines[j].strip():
                    j += 1
                yield Block(line=i + 1, spec=m.group(1), start=i + 1, end=j,
                            caption_only=True)
            continue
        k = j
        while k < len(lines) and not lines[k].strip():
            k += 1
        if k < len(lines) and lines[k].startswith("|"):  # the blank lines belong to it
            j = k
            while j < len(lines) and lines[j].startswith("|"):
                j += 1
        yield Block(line=i + 1, spec=m.group(1), start=i + 1, end=j)


def rewrite(text: str, where: str = "") -> str:
    """``text`` with every results-directory table (and caption) rendered afresh."""
    lines = text.splitlines()
    out: list[str] = []
    done = 0
    for block in blocks(lines):
        try:
            rendered = render_block(block)
        except DocTableError as exc:
            raise DocTableError(f"{where}:{block.line}: {exc}") from None
        out += [*lines[done:block.start], *rendered]
        if not block.caption_only and block.end < len(lines) and lines[block.end].strip():
            out.append("")  # a table ends at a blank line
        done = block.end
    out += lines[done:]
    return "\n".join(out) + ("\n" if text.endswith("\n") else "")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="tools/doc-tables", description=__doc__.split("\n\n")[0],
        epilog="Tag format and views: see this script's docstring "
               "(tools/doc_tables.py) or tests/unit/test_docs_numbers.py.")
    parser.add_argument("files", nargs="*", type=Path,
                        help="Markdown files (default: README.md, BENCHMARKS.md, docs/*.md)")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true",
                      help="exit 1 and show a diff if a tagged table differs (default)")
    mode.add_argument("--write", action="store_true", help="rewrite the tagged tables in place")
    args = parser.parse_args(argv)
    stale = 0
    for path in args.files or DOCS:
        text = path.read_text()
        full = path.resolve()
        name = str(full.relative_to(ROOT) if full.is_relative_to(ROOT) else path)
        try:
            new = rewrite(text, name)
        except DocTableError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        if new == text:
            continue
        stale += 1
        if args.write:
            path.write_text(new)
            print(f"rewrote {name}")
        else:
            sys.stdout.writelines(difflib.unified_diff(
                text.splitlines(True), new.splitlines(True), name, f"{name} (rendered)"))
    if stale and not args.write:
        print(f"{stale} file(s) differ from their runs; `tools/doc-tables --write` updates them",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
