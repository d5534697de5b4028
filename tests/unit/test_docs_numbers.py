"""The numbers in README.md, BENCHMARKS.md and docs/*.md are held against committed data.

Conventions (HTML comments, invisible when rendered):

- ``<!-- data: SOURCE#KEY -->`` right after a number: the number (the last one before
  the tag on its line) must equal the value at KEY in SOURCE, rounded to the decimals
  shown. SOURCE is a repo-relative JSON file (KEY a dotted path, ``*100`` appended
  turns a fraction into a percentage, ``*-1`` a negative reduction into "N % slower")
  or a Markdown report (KEY ``ROW|COLUMN``: the first table cell of ROW in the column
  whose header starts with COLUMN).
- ``<!-- data-table: bench/SCRIPT.py SOURCE [run=RUN] -->`` on its own line right before a
  table: the table must equal one of the tables the script's ``markdown()`` renders from
  the JSON SOURCE (the script that wrote SOURCE, so the docs are what it prints). With
  ``run=RUN`` (the committed run SOURCE summarises) a ``<sub>`` caption naming that run's
  command, machine and date sits between the tag and the table, as ``tools/doc-tables``
  writes it (see below).
- ``<!-- data-table: RUN tables/NAME.csv [OPTION=VALUE ...] [COLUMN=VALUE,... ...] -->``
  on its own line: a table from a committed results directory RUN (docs/examples/*,
  with its manifest.json), written by ``tools/doc-tables --write``. The tag owns the
  lines after it: a ``<sub>`` caption (the run, its command rebuilt from the manifest's
  settings, the machine with its load average at the start and the finish, the date),
  a blank line and the table; they must equal what ``tools/doc-tables`` renders
  (``tools/doc-tables --check`` says where they differ). ``COLUMN=VALUE,...`` keeps
  rows (``size=1048576 protocol=http``); options: ``view=plain`` (default: the CSV's
  columns, or ``columns=A,B``, with ``digits=N`` decimals), ``view=wide keys=item``
  (the report's per-scheduler "mean [CI]" layout), ``view=paper`` (the report's "beside
  the paper" table). Example (one line in the file)::

      <!-- data-table: docs/examples/default-run tables/response_time.csv
           view=wide keys=item size=1048576 protocol=http -->

- ``<!-- record: WHAT, DATE -->``: the numbers on that line (or, on its own line, in
  the table after it) come from a dated run whose output is not committed; they are
  reported as of that date, not checked. Only for what no committed run measures: a
  result a committed run also gives is shown from that run (``data-table`` / ``data``).
- ``<!-- not data: WHY -->``: the percentages and layout counts on that line are not
  results of this project (a paper's figure, arithmetic, a threshold).

A percentage or an "N layouts" count outside code blocks must be covered by one of
these, or be a paper figure, target or threshold (see ``_NOT_A_RESULT``).
"""

from __future__ import annotations

import importlib.util
import json
import math
import re
import sys
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", ROOT / "BENCHMARKS.md", *sorted((ROOT / "docs").glob("*.md"))]

_TAG = re.compile(r"<!--\s*(data|data-table|record|not data):\s*(.*?)\s*-->")
_NUMBER = re.compile(r"\d{1,3}(?: \d{3})+(?!\d)|\d+(?:\.\d+)?")
_CLAIM = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?)(?: ?%(?! CI)| (?:distinct |canonical )*layouts\b)")
# Context before a percentage that makes it not a measured result of this project.
_NOT_A_RESULT = re.compile(
    r"(paper|target|within|at most|at least|percentageOfNodesToScore|uniform draw|"
    r"reports about|abstract|secondary|by \d+ points|gap|\(\d+ % \)|matches the|"
    r"its \d+ %|overshoots its)[^.|]*$", re.IGNORECASE)


def _load_json(rel: str) -> Any:
    return json.loads((ROOT / rel).read_text())


def _json_value(data: Any, key: str) -> Any:
    for part in key.split("."):
        data = data[int(part)] if isinstance(data, list) else data[part]
    return data


@cache
def _md_tables(rel: str) -> list[list[list[str]]]:
    tables: list[list[list[str]]] = []
    current: list[list[str]] = []
    for line in [*(ROOT / rel).read_text().splitlines(), ""]:
        if line.startswith("|"):
            current.append([c.strip() for c in line.strip().strip("|").split("|")])
        elif current:
            tables.append(current)
            current = []
    return tables


def _md_value(rel: str, key: str) -> str:
    row_name, column = key.split("|", 1)
    for table in _md_tables(rel):
        header = table[0]
        cols = [i for i, h in enumerate(header) if h.startswith(column)]
        for row in table[2:]:
            if cols and row[0] == row_name:
                return row[cols[0]]
    raise KeyError(f"{rel}: no table cell {key!r}")


def _source_value(spec: str) -> Any:
    source, _, key = spec.partition("#")
    scale = 1.0
    if m := re.fullmatch(r"(.*)\*(-?\d+(?:\.\d+)?)", key):
        key, scale = m.group(1), float(m.group(2))
    if source.endswith(".md"):
        return float(_NUMBER.findall(_md_value(source, key))[0].replace(" ", "")) * scale
    value = _json_value(_load_json(source), key)
    return value * scale if isinstance(value, int | float) and scale != 1.0 else value


def _shown_matches(shown: str, value: Any) -> bool:
    digits = shown.replace(" ", "")
    decimals = len(digits.split(".")[1]) if "." in digits else 0
    if isinstance(value, str):
        return value == digits
    # Python's format rounds half to even on the binary value, as the reports do.
    return bool(f"{float(value):.{decimals}f}" == digits or
                math.isclose(float(digits), round(float(value), decimals), abs_tol=1e-9))


def _lines(path: Path) -> list[tuple[int, str]]:
    """(line number, text) outside fenced code blocks."""
    out, fenced = [], False
    for i, line in enumerate(path.read_text().splitlines(), 1):
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        if not fenced:
            out.append((i, line))
    return out


def _inline_tags(path: Path) -> list[tuple[int, str, str]]:
    """(line, number shown, source spec) for every `data:` tag."""
    found = []
    for i, line in _lines(path):
        start = 0
        for m in _TAG.finditer(line):
            if m.group(1) == "data":
                before = _TAG.sub("", line[start:m.start()])
                numbers = _NUMBER.findall(before)
                found.append((i, numbers[-1] if numbers else "", m.group(2)))
            start = m.end()
    return found


@cache
def _doc_tables() -> Any:
    """tools/doc_tables.py, the script that renders the results-directory tables."""
    spec = importlib.util.spec_from_file_location("_docs_doc_tables",
                                                  ROOT / "tools" / "doc_tables.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look themselves up there
    spec.loader.exec_module(module)
    return module


@cache
def _bench_markdown(script: str) -> Callable[[Any], str]:
    path = ROOT / script
    spec = importlib.util.spec_from_file_location(f"_docs_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    render: Callable[[Any], str] = module.markdown
    return render


def _tables_of(text: str) -> list[list[str]]:
    tables, current = [], []
    for line in [*text.splitlines(), ""]:
        if line.startswith("|"):
            current.append(line.rstrip())
        elif current:
            tables.append(current)
            current = []
    return tables


def _table_after(lines: list[str], index: int) -> list[str]:
    """The table starting on the first non-blank line after `index` (and its caption)."""
    j = index + 1
    if j < len(lines) and lines[j].startswith("<sub>"):
        j += 1
    while j < len(lines) and not lines[j].strip():
        j += 1
    table = []
    while j < len(lines) and lines[j].startswith("|"):
        table.append(lines[j].rstrip())
        j += 1
    return table


def _block_tags(path: Path) -> list[tuple[int, str, str, list[str]]]:
    """(line, kind, spec, table) for tags alone on a line followed by a table."""
    lines = path.read_text().splitlines()
    found = []
    for i, line in enumerate(lines):
        m = _TAG.fullmatch(line.strip())
        if m and m.group(1) in ("data-table", "record"):
            found.append((i + 1, m.group(1), m.group(2), _table_after(lines, i)))
    return found


def _doc_id(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


@pytest.mark.parametrize("path", DOCS, ids=_doc_id)
def test_tagged_numbers_equal_their_data(path: Path) -> None:
    wrong = []
    for line, shown, spec in _inline_tags(path):
        try:
            value = _source_value(spec)
        except (OSError, KeyError, IndexError, ValueError) as exc:
            wrong.append(f"line {line}: {spec}: cannot read ({exc!r})")
            continue
        if not shown or not _shown_matches(shown, value):
            wrong.append(f"line {line}: shows {shown!r}, {spec} says {value!r}")
    assert not wrong, f"{_doc_id(path)}:\n" + "\n".join(wrong)


@pytest.mark.parametrize("path", DOCS, ids=_doc_id)
def test_tagged_tables_equal_what_their_script_renders(path: Path) -> None:
    wrong = []
    for line, kind, spec, table in _block_tags(path):
        if kind != "data-table" or _doc_tables().is_run_spec(spec):
            continue
        script, source, *_run = spec.split()
        rendered = _tables_of(_bench_markdown(script)(_load_json(source)))
        if not table:
            wrong.append(f"line {line}: no table after the tag")
        elif table not in rendered:
            best = max(rendered, key=lambda t: len(set(t) & set(table)))
            diff = [f"  doc:  {a}\n  data: {b}" for a, b in zip(table, best, strict=False)
                    if a != b]
            wrong.append(f"line {line}: table differs from `{spec}`:\n" + "\n".join(diff))
    assert not wrong, f"{_doc_id(path)}:\n" + "\n".join(wrong)


@pytest.mark.parametrize("path", DOCS, ids=_doc_id)
def test_run_tables_equal_what_tools_doc_tables_renders(path: Path) -> None:
    """Every ``data-table: RUN tables/NAME.csv`` block is what the script renders now."""
    tool = _doc_tables()
    lines = path.read_text().splitlines()
    wrong = []
    for block in tool.blocks(lines):
        try:
            rendered = tool.render_block(block)
        except tool.DocTableError as exc:
            wrong.append(f"line {block.line}: {exc}")
            continue
        shown = lines[block.start:block.end]
        if shown != rendered:
            diff = [f"  doc:  {a}\n  data: {b}" for a, b in zip(shown, rendered, strict=False)
                    if a != b] or [f"  doc has {len(shown)} lines, the run {len(rendered)}"]
            wrong.append(f"line {block.line}: `{block.spec}` differs:\n" + "\n".join(diff))
    assert not wrong, (f"{_doc_id(path)} (`tools/doc-tables --write` rewrites them):\n"
                       + "\n".join(wrong))


@pytest.mark.parametrize("path", DOCS, ids=_doc_id)
def test_every_result_number_is_tagged(path: Path) -> None:
    text = path.read_text()
    covered: set[int] = set()
    for tag_line, _kind, _spec, table in _block_tags(path):
        first = text.splitlines().index(table[0], tag_line) + 1 if table else tag_line
        covered.update(range(first, first + len(table)))
    untagged = []
    for i, line in _lines(path):
        if i in covered or "<!-- record:" in line or "<!-- not data:" in line:
            continue
        tagged_upto = [m.start() for m in _TAG.finditer(line) if m.group(1) == "data"]
        for m in _CLAIM.finditer(line):
            tagged = any(0 <= t - m.end() <= 6 for t in tagged_upto)  # "%**<!--", " %<!--"
            if tagged or _NOT_A_RESULT.search(line[:m.start()].split("|")[-1]):
                continue
            untagged.append(f"line {i}: {m.group(0)!r} in {line.strip()[:100]!r}")
    assert not untagged, (f"{_doc_id(path)}: numbers that claim a result without a "
                          "`<!-- data: SOURCE#KEY -->` tag (see this test's docstring):\n"
                          + "\n".join(untagged))


def test_the_computed_schedule_table_is_what_the_code_gives() -> None:
    """bench/results/schedule-table.json is deterministic: recompute its small case."""
    spec = importlib.util.spec_from_file_location("_docs_schedule_table",
                                                  ROOT / "bench" / "schedule_table.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    committed = _load_json("bench/results/schedule-table.json")["cases"]["600m"]
    for scheduler in ("netmarks", "firmament"):
        assert module.place(scheduler, "600m", 200) == committed["schedulers"][scheduler]


def test_the_checker_catches_a_wrong_number(tmp_path: Path) -> None:
    assert _shown_matches("883", 883)
    assert not _shown_matches("950", 883)
    assert _shown_matches("79.6", 0.795525179856115 * 100)
    assert not _shown_matches("86", 0.7888 * 100)
    assert _shown_matches("10 934", 10934.2)
    assert _source_value("bench/results/fidelity.json#distinct_layouts.real") == 883
    assert _source_value("docs/examples/kwok-quick/report.md#netmarks|distinct layouts") == 37
