"""A real Prometheus server scraping the mesh, when Debian's ``prometheus`` is installed.

NetMARKS reads traffic with PromQL, so locally it gets the same: a generated
config with one job (``settlers-mesh``, 1 s scrape), data under the run directory,
listening on a free loopback port. Without the binary the cluster runs anyway and
callers read the mesh's ``/metrics`` directly (the "direct-scrape fallback").
"""

from __future__ import annotations

import shutil
from pathlib import Path

import aiohttp
import yaml

from harness.backends.emulated.procs import Child, free_port

__all__ = ["PrometheusServer", "find_prometheus"]

SCRAPE_JOB = "settlers-mesh"


def find_prometheus() -> str | None:
    return shutil.which("prometheus")


def write_config(path: Path, targets: list[str]) -> None:
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [{
            "job_name": SCRAPE_JOB,
            "scrape_interval": "1s",
            "scrape_timeout": "1s",
            "metrics_path": "/metrics",
            "static_configs": [{"targets": targets}],
        }],
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False))


class PrometheusServer:
    """``prometheus`` started on 127.0.0.1:<free port>, stopped with the cluster."""

    def __init__(self, binary: str, run_dir: Path, targets: list[str]) -> None:
        self.dir = run_dir / "prometheus"
        self.dir.mkdir(parents=True, exist_ok=True)
        config = self.dir / "prometheus.yml"
        write_config(config, targets)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.child = Child("prometheus", [
            binary, f"--config.file={config}", f"--storage.tsdb.path={self.dir / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}", "--storage.tsdb.retention.time=7d",
            "--log.level=warn",
        ], log=self.dir / "prometheus.log")

    async def wait_ready(self, timeout: float = 30.0) -> None:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=1)) as session:
            async def ready() -> bool:
                try:
                    async with session.get(f"{self.url}/-/ready") as resp:
                        return resp.status == 200
                except (TimeoutError, aiohttp.ClientError, OSError):
                    return False
            await self.child.wait_ready(ready, what="prometheus", timeout=timeout, interval=0.1)

    def stop(self) -> None:
        self.child.stop(timeout=5.0)
