"""Many Binding POSTs at once over one asyncio HTTP session (aiohttp).

A batch scheduler decides thousands of placements in one solve, and Kubernetes has
no batch binding: every pod is one ``POST .../bindings``. Threads over the official
(synchronous) client paid ~1-1.7 ms of client CPU per bind on this 2-core machine,
rising with the thread count (bench/throughput.py); an event loop keeps a hundred
requests in flight for a fraction of that, so the API server, not the binder, sets the
pace. Credentials, CA and server come from the official client's Configuration (the
kubeconfig or in-cluster config it loaded), so both clients talk to the same cluster
the same way.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import Sequence
from typing import Any

__all__ = ["bind_many"]


def _ssl_context(cfg: Any) -> ssl.SSLContext | bool:
    """TLS as the official client would do it: its CA, client certificate, verify flag."""
    if not str(cfg.host).startswith("https://"):
        return False
    ctx = ssl.create_default_context(cafile=cfg.ssl_ca_cert or None)
    if not cfg.verify_ssl:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if cfg.cert_file:
        ctx.load_cert_chain(cfg.cert_file, cfg.key_file or None)
    return ctx


def _auth_headers(cfg: Any) -> dict[str, str]:
    """Header credentials (a bearer token) from the client's auth settings."""
    headers: dict[str, str] = {}
    for setting in (cfg.auth_settings() or {}).values():
        if setting.get("in") == "header" and setting.get("value"):
            headers[str(setting["key"])] = str(setting["value"])
    return headers


def bind_many(cfg: Any, binds: Sequence[tuple[str, str, str]], concurrency: int
              ) -> list[str | None]:
    """POST a Binding for each (namespace, pod, node), at most ``concurrency`` in flight;
    return, in the same order, None for each that bound and the error for each that did
    not (e.g. HTTP 409: already bound or deleted). ``cfg``: a
    ``kubernetes.client.Configuration``."""
    if concurrency < 1:
        raise ValueError(f"concurrency must be >= 1, got {concurrency}")
    if not binds:
        return []
    return asyncio.run(_bind_all(cfg, binds, concurrency))


async def _bind_all(cfg: Any, binds: Sequence[tuple[str, str, str]], concurrency: int
                    ) -> list[str | None]:
    import aiohttp

    host = str(cfg.host).rstrip("/")
    headers = {"Content-Type": "application/json", "Accept": "application/json",
               **_auth_headers(cfg)}
    connector = aiohttp.TCPConnector(limit=concurrency, ssl=_ssl_context(cfg))
    gate = asyncio.Semaphore(concurrency)
    timeout = aiohttp.ClientTimeout(total=60)

    async with aiohttp.ClientSession(connector=connector, headers=headers,
                                     timeout=timeout) as session:
        async def one(namespace: str, pod: str, node: str) -> str | None:
            body = {"apiVersion": "v1", "kind": "Binding",
                    "metadata": {"name": pod, "namespace": namespace},
                    "target": {"apiVersion": "v1", "kind": "Node", "name": node}}
            async with gate:
                try:
                    async with session.post(f"{host}/api/v1/namespaces/{namespace}/bindings",
                                            data=json.dumps(body)) as reply:
                        text = await reply.text()
                        if reply.status >= 300:
                            return f"HTTP {reply.status}: {text[:300]}"
                except (aiohttp.ClientError, TimeoutError) as exc:
                    return f"{type(exc).__name__}: {exc}"
            return None

        return list(await asyncio.gather(*(one(*b) for b in binds)))
