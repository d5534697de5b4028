"""The order app: drives orders into the Settlers services and measures the answers.

``run_sweep`` is the library entry point the harness uses; ``order-app`` is the CLI
(sweep, open-loop rate, locust load). ``order_app.locustfile`` is deliberately not
imported here: importing locust monkey-patches the standard library for gevent.
"""

from order_app.background import LoadSummary, run_background_load
from order_app.openloop import OpenLoopReport, intended_offsets, run_open_loop, write_histogram
from order_app.output import read_table, write_table
from order_app.params import PAPER_SIZES, UsageError
from order_app.probe import TargetError
from order_app.sweep import COLUMNS, run_sweep, summarize, to_frame

__all__ = [
    "COLUMNS",
    "PAPER_SIZES",
    "LoadSummary",
    "OpenLoopReport",
    "TargetError",
    "UsageError",
    "intended_offsets",
    "read_table",
    "run_background_load",
    "run_open_loop",
    "run_sweep",
    "summarize",
    "to_frame",
    "write_histogram",
    "write_table",
]
