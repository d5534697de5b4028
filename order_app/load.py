"""Running the locustfile headless as a subprocess and finding its CSV output.

Locust runs in its own process because it monkey-patches the standard library for
gevent on import, which must not happen inside the asyncio order app.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from settlers.wire import WireProtocol

__all__ = ["LOCUSTFILE", "LoadResult", "locust_command", "run_locust"]

LOCUSTFILE = Path(__file__).with_name("locustfile.py")
_USER_CLASS = {"http": "HttpOrderUser", "grpc": "GrpcOrderUser"}
_CSV_KINDS = ("stats", "stats_history", "failures", "exceptions")


@dataclass(frozen=True)
class LoadResult:
    returncode: int
    csv_files: list[Path]
    stats: pd.DataFrame  # locust's PREFIX_stats.csv ("Aggregated" row last)


def locust_command(target: str, protocol: WireProtocol, *, users: int, spawn_rate: float,
                   run_time: str, csv_prefix: Path) -> list[str]:
    host = f"http://{target}" if protocol == "http" else target
    return [
        sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless",
        "--host", host, "--users", str(users), "--spawn-rate", f"{spawn_rate:g}",
        "--run-time", run_time, "--csv", str(csv_prefix), "--only-summary",
        "--stop-timeout", "5", _USER_CLASS[protocol],
    ]


def run_locust(target: str, protocol: WireProtocol, *, item: str, size: int, count: int,
               users: int, spawn_rate: float, run_time: str, csv_prefix: Path,
               quiet: bool = False) -> LoadResult:
    """Run locust to completion; its console output goes to ours unless ``quiet``."""
    csv_prefix.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PROTOCOL": protocol, "ITEM": item, "SIZE": str(size),
           "COUNT": str(count)}
    cmd = locust_command(target, protocol, users=users, spawn_rate=spawn_rate,
                         run_time=run_time, csv_prefix=csv_prefix)
    out = subprocess.DEVNULL if quiet else None
    proc = subprocess.run(cmd, env=env, stdout=out, stderr=out, check=False)
    files = [p for kind in _CSV_KINDS
             if (p := csv_prefix.with_name(f"{csv_prefix.name}_{kind}.csv")).exists()]
    stats_path = csv_prefix.with_name(f"{csv_prefix.name}_stats.csv")
    stats = pd.read_csv(stats_path) if stats_path.exists() else pd.DataFrame()
    return LoadResult(returncode=proc.returncode, csv_files=files, stats=stats)
