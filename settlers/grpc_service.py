"""The gRPC front end (grpc.aio): settlers.v1.Producer/Produce plus grpc.health.v1."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from settlers import wire
from settlers.peerbytes import Peer
from settlers.producer import BadRequest, Order, Producer, UpstreamError
from settlers.proto import settlers_pb2, settlers_pb2_grpc

__all__ = ["SERVICE_NAME", "GrpcService", "build_server"]

SERVICE_NAME = "settlers.v1.Producer"


class _Servicer(settlers_pb2_grpc.ProducerServicer):
    def __init__(self, producer: Producer) -> None:
        self._producer = producer

    async def Produce(self, request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        peers = self._producer.peers
        source = None
        if peers is not None:  # --mesh-metrics: name this workload, learn the caller's
            await context.send_initial_metadata(((wire.WORKLOAD_HEADER, peers.me.header),))
            source = Peer.parse(dict(context.invocation_metadata() or ()).get(
                wire.WORKLOAD_HEADER))
        order = Order(request.item, request.count, request.size, request.caller)
        try:
            product = await self._producer.produce(order)
        except BadRequest as exc:
            await self._abort(context, source, request, grpc.StatusCode.INVALID_ARGUMENT,
                              "invalid", str(exc))
        except UpstreamError as exc:
            code, kind = ((grpc.StatusCode.DEADLINE_EXCEEDED, "timeout") if exc.timeout
                          else (grpc.StatusCode.UNAVAILABLE, "upstream"))
            await self._abort(context, source, request, code, kind, str(exc))
        hops = [settlers_pb2.Hop(item=h.item, pod=h.pod, caller=h.caller, bytes=h.bytes,
                                 elapsed_ms=h.elapsed_ms) for h in product.trace]
        response = settlers_pb2.ProduceResponse(item=product.item, count=product.count,
                                                payload=product.payload, trace=hops)
        if peers is not None and source is not None:
            peers.served(source, request.ByteSize(), response.ByteSize())
        return response

    async def _abort(self, context: grpc.aio.ServicerContext[Any, Any], source: Peer | None,
                     request: Any, code: grpc.StatusCode, kind: str, message: str) -> None:
        peers = self._producer.peers
        if peers is not None and source is not None:
            peers.served(source, request.ByteSize(), len(message.encode()))
        # The kind travels as trailing metadata so a client can tell this service's
        # "an input is unavailable" from its own failure to connect (both UNAVAILABLE).
        await context.abort(code, message, trailing_metadata=((wire.ERROR_KIND_KEY, kind),))


@dataclass
class GrpcService:
    """A bound (not yet started) server; ``port`` is the port it got."""

    server: grpc.aio.Server
    port: int
    health: health.aio.HealthServicer

    async def start(self) -> None:
        await self.server.start()
        # Ready only once the server really accepts calls.
        for name in ("", SERVICE_NAME):
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)

    async def stop(self, grace: float) -> None:
        for name in ("", SERVICE_NAME):
            await self.health.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
        await self.server.stop(grace)


def build_server(producer: Producer, address: str) -> GrpcService:
    server = grpc.aio.server(options=wire.grpc_server_options(producer.max_size))
    settlers_pb2_grpc.add_ProducerServicer_to_server(  # type: ignore[no-untyped-call]
        _Servicer(producer), server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    try:
        port = server.add_insecure_port(address)
    except RuntimeError as exc:  # grpc raises RuntimeError("Failed to bind ...")
        raise OSError(f"cannot listen on {address}: {exc}") from None
    if port == 0:  # older grpc versions return 0 instead of raising
        raise OSError(f"cannot listen on {address}")
    return GrpcService(server, port, health_servicer)
