"""Pods: one real ``settlers serve`` process per replica, on a loopback port.

A pod's inputs point at its own egress listeners in the mesh, never at another
pod, so moving pods between nodes needs no restart. Readiness is the service's own
check: ``GET /healthz`` (HTTP) or grpc.health.v1 SERVING (gRPC).
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from harness.backends.emulated.procs import Child
from settlers.wire import WireProtocol

__all__ = ["PodInfo", "PodProcess", "probe_health"]


# `settlers.cli:main` is the agreed console-script entry; calling it through the
# current interpreter works in a venv or an editable install without PATH lookups.
_SETTLERS = [sys.executable, "-c",
             "import sys; sys.argv[0] = 'settlers'; from settlers.cli import main; main()"]


@dataclass
class PodInfo:
    """A pod of the emulated cluster: ``name`` is ``<item>-<index>``."""

    name: str
    item: str
    node: str
    port: int = 0
    pid: int = 0


class PodProcess:
    """A running ``settlers serve`` for one pod."""

    def __init__(self, pod: PodInfo, *, protocol: WireProtocol, economy_file: Path,
                 inputs: Mapping[str, int], log_dir: Path) -> None:
        self.pod = pod
        self.protocol = protocol
        argv = [*_SETTLERS, "serve", "--item", pod.item, "--protocol", protocol,
                "--host", "127.0.0.1", "--port", str(pod.port), "--economy", str(economy_file),
                "--pod-name", pod.name]
        for item, port in sorted(inputs.items()):
            argv += ["--input", f"{item}=127.0.0.1:{port}"]
        self.child = Child(pod.name, argv, log=log_dir / f"{pod.name}.log",
                           env={"PYTHONUNBUFFERED": "1"})
        pod.pid = self.child.pid

    @property
    def exit_code(self) -> int | None:
        return self.child.returncode

    async def wait_ready(self, timeout: float) -> None:
        """Poll the health check until it passes; ClusterError if the pod exits or times out."""
        target = f"127.0.0.1:{self.pod.port}"
        await self.child.wait_ready(lambda: probe_health(target, self.protocol, timeout=0.5),
                                    what=f"pod {self.pod.name}", timeout=timeout)

    def stop(self) -> None:
        self.child.stop()


async def probe_health(target: str, protocol: WireProtocol, *, timeout: float = 1.0) -> bool:
    """True when the producer at ``target`` says it is ready."""
    try:
        if protocol == "http":
            client_timeout = aiohttp.ClientTimeout(total=timeout)
            async with aiohttp.ClientSession(timeout=client_timeout) as session, \
                    session.get(f"http://{target}/healthz") as resp:
                return resp.status == 200
        async with grpc.aio.insecure_channel(target) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            reply = await stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=timeout)
            return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)
    except (TimeoutError, aiohttp.ClientError, grpc.RpcError, OSError):
        return False
