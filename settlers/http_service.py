"""The HTTP front end (aiohttp): ``POST /produce``, ``GET /healthz``, ``GET /metrics``.

Also used, without ``/produce``, as the side server that exposes ``/healthz`` and
``/metrics`` next to a gRPC service.
"""

from __future__ import annotations

import json

from aiohttp import web

from settlers import wire
from settlers.metrics import CONTENT_TYPE, ServiceMetrics
from settlers.peerbytes import Peer
from settlers.producer import BadRequest, Producer, UpstreamError, parse_order
from settlers.trace import encode_trace

__all__ = ["build_app", "build_side_app"]

_USAGE = """settlers producer {item!r} (pod {pod!r}, inputs: {inputs})

POST {path}  JSON {{"count": 1, "size": 16, "item": "{item}", "caller": ""}}
             -> 200, body = count*size bytes, header {header}: the trace
             errors: JSON {{"error": ...}}; 400 bad order, 502 input failed, 504 input timeout
GET /healthz  200 when serving
GET /metrics  Prometheus metrics (settlers_*)
"""


def build_app(producer: Producer) -> web.Application:
    # A produce request is a few dozen bytes of JSON: refuse anything large up front.
    app = web.Application(client_max_size=64 * 2**10)
    usage = _USAGE.format(item=producer.item.name, pod=producer.pod, path=wire.PRODUCE_PATH,
                          header=wire.TRACE_HEADER,
                          inputs=", ".join(f"{k}={v}" for k, v in producer.inputs.items())
                          or "none (raw item)")

    async def produce(request: web.Request) -> web.Response:
        response = await answer(request)
        peers = producer.peers
        if peers is not None:  # --mesh-metrics: count this call, name this workload
            peers.served(Peer.parse(request.headers.get(wire.WORKLOAD_HEADER)),
                         request.content_length or 0,
                         (response.content_length or 0)
                         + len(response.headers.get(wire.TRACE_HEADER, "")))
            response.headers[wire.WORKLOAD_HEADER] = peers.me.header
        return response

    async def answer(request: web.Request) -> web.Response:
        try:
            order = parse_order(_json(await request.read()))
        except (BadRequest, web.HTTPRequestEntityTooLarge) as exc:
            # Refused before reaching the producer, so it is counted here.
            producer.metrics.observe("invalid", 0.0)
            if isinstance(exc, BadRequest):
                return _error(400, str(exc))
            return _error(413, "the request body is too large (an order is a small JSON object)")
        try:
            product = await producer.produce(order)
        except BadRequest as exc:
            return _error(400, str(exc))
        except UpstreamError as exc:
            return _error(504 if exc.timeout else 502, str(exc))
        return web.Response(body=product.payload, headers={
            "Content-Type": "application/octet-stream",
            wire.TRACE_HEADER: encode_trace(product.trace)})

    async def index(request: web.Request) -> web.Response:
        return web.Response(text=usage)

    app.router.add_post(wire.PRODUCE_PATH, produce)
    app.router.add_get("/", index)
    _add_side_routes(app, producer.metrics)
    return app


def build_side_app(metrics: ServiceMetrics) -> web.Application:
    app = web.Application()
    _add_side_routes(app, metrics)
    return app


def _add_side_routes(app: web.Application, metrics: ServiceMetrics) -> None:
    async def healthz(request: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def prometheus(request: web.Request) -> web.Response:
        return web.Response(body=metrics.render(), headers={"Content-Type": CONTENT_TYPE})

    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", prometheus)


def _json(body: bytes) -> object:
    try:
        return json.loads(body)
    except ValueError as exc:
        raise BadRequest(f"the body is not valid JSON ({exc}); expected e.g. "
                         '{"count": 1, "size": 16}') from None


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)
