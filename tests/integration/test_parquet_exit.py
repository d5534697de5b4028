"""Reading our Parquet files must not abort the interpreter at exit.

With ortools (or grpc) loaded, Arrow's multi-threaded Parquet reader often leaves a
thread that aborts the process at exit ("terminate called without an active
exception", exit 134; apache/arrow#34314) — a third of the runs here, after the work
was done. `harness run` loads both and reads its tables back, so every reader we
ship goes through settlers.tables.read_parquet (pyarrow, single-threaded read *and*
conversion). Each reader runs in fresh interpreters, one read per process (the
pattern that aborts most often). With threads on, a reader failed 13-17 of 40 runs;
with pandas' ``use_threads=False`` (which still converts multi-threaded) about 1 in
100 — what a CI run of this test once caught; with settlers.tables 0 in 2000.
"""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd
import pytest

pytestmark = pytest.mark.slow

RUNS = 10  # catches a reader with threads on (~35 % per run) in all but ~1 % of runs

PRELUDE = """
import sys
from pathlib import Path
import ortools.sat.python.cp_model  # noqa: F401  (what makes the abort likely)
root = Path(sys.argv[1])
"""

READERS = {
    "results store": "from results.store import ResultsStore\n"
                     "assert len(ResultsStore(root).read_table('placements')) == 3",
    "order-app table": "from order_app import read_table\n"
                       "assert len(read_table(root / 'orders.parquet')) == 3",
    "traffic matrix": "from schedulers import TrafficMatrix\n"
                      "assert TrafficMatrix.from_file(root / 'traffic.parquet').total() == 30",
}


@pytest.mark.parametrize("reader", list(READERS))
def test_parquet_readers_exit_cleanly(reader: str, tmp_path: Path) -> None:
    frame = pd.DataFrame({"scheduler": ["a", "b", "c"], "seconds": [0.1, 0.2, 0.3]})
    frame.to_parquet(tmp_path / "placements.parquet")
    frame.to_parquet(tmp_path / "orders.parquet")
    pd.DataFrame({"source": ["bread", "flour"], "destination": ["flour", "grain"],
                  "bytes": [10.0, 20.0]}).to_parquet(tmp_path / "traffic.parquet")

    def run(_: int) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-c", PRELUDE + READERS[reader], str(tmp_path)],
                              capture_output=True, text=True, timeout=120)

    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(run, range(RUNS)))
    bad = [(r.returncode, r.stderr[-500:]) for r in results if r.returncode != 0]
    assert not bad, f"{len(bad)} of {RUNS} runs failed; first: {bad[0]}"
