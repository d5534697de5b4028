"""The harness's handle on the mesh process: start it, talk to its control API, stop it."""

from __future__ import annotations

import asyncio
import json
import sys
import urllib.request
from pathlib import Path
from typing import Any

import aiohttp

from harness.backends.emulated.errors import ClusterError
from harness.backends.emulated.procs import Child

__all__ = ["MeshProcess"]


class MeshProcess:
    def __init__(self, child: Child, ready: dict[str, Any]) -> None:
        self.child = child
        self.control_url = f"http://127.0.0.1:{ready['control']}"
        self.metrics_url = f"{self.control_url}/metrics"
        self.egress: dict[str, dict[str, int]] = ready["egress"]
        self.ingress: dict[str, int] = ready["ingress"]
        self._session: aiohttp.ClientSession | None = None

    @classmethod
    async def start(cls, config: dict[str, Any], run_dir: Path, *,
                    timeout: float = 30.0) -> MeshProcess:
        path = run_dir / "mesh.json"
        path.write_text(json.dumps(config, indent=1))
        child = Child("mesh", [sys.executable, "-m", "harness.backends.emulated.meshd", str(path)],
                      log=run_dir / "logs" / "mesh.log", stdout_pipe=True)
        assert child.proc.stdout is not None
        loop = asyncio.get_running_loop()
        try:
            line = await asyncio.wait_for(loop.run_in_executor(None, child.proc.stdout.readline),
                                          timeout)
            if not line:
                raise ClusterError(f"the mesh exited while starting:\n{child.tail()}")
            return cls(child, json.loads(line))
        except BaseException:
            child.stop()
            raise

    async def put(self, path: str, body: Any) -> Any:
        return await self.request("PUT", path, body)

    async def post(self, path: str, body: Any) -> Any:
        return await self.request("POST", path, body)

    async def get(self, path: str) -> Any:
        return await self.request("GET", path)

    async def request(self, method: str, path: str, body: Any = None) -> Any:
        """One control call; the mesh's refusal (status 400) is a ValueError with its reason."""
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
        async with self._session.request(method, f"{self.control_url}{path}",
                                         json=body) as resp:
            data = await resp.json()
            if resp.status != 200:
                raise ValueError(data.get("error", f"mesh answered {resp.status}"))
            return data

    def get_json(self, path: str) -> Any:
        """Synchronous on purpose (a loopback round trip): snapshots are called from sync code."""
        with urllib.request.urlopen(f"{self.control_url}{path}", timeout=10) as resp:
            return json.loads(resp.read())

    async def stop(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
        self.child.stop()
