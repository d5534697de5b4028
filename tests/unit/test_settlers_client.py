"""settlers.client: argument checks and connection failures (against closed ports)."""

from __future__ import annotations

import socket
import time

import pytest

from settlers.client import OrderError, open_client
from settlers.wire import PROTOCOLS


def _closed_port() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{s.getsockname()[1]}"


@pytest.mark.parametrize("target", ["localhost", "127.0.0.1:", ":80", "host:http"])
def test_bad_target_is_refused(target: str) -> None:
    with pytest.raises(ValueError, match="target must be 'host:port'"):
        open_client(target, "http")


def test_bad_protocol_is_refused() -> None:
    with pytest.raises(ValueError, match="protocol must be 'http' or 'grpc'"):
        open_client("127.0.0.1:1", "udp")  # type: ignore[arg-type]


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_nothing_listening_is_a_quick_connect_error(protocol: str) -> None:
    target = _closed_port()
    async with open_client(target, protocol, timeout=5) as client:  # type: ignore[arg-type]
        start = time.monotonic()
        with pytest.raises(OrderError) as err:
            await client.produce("water", 1, 16)
    assert time.monotonic() - start < 3
    assert err.value.kind == "connect"
    assert err.value.target == target
    assert str(err.value).startswith(f"{target}: cannot connect")


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_close_is_idempotent_and_client_reopens(protocol: str) -> None:
    client = open_client(_closed_port(), protocol, timeout=5)  # type: ignore[arg-type]
    for _ in range(2):
        # Used (its session/channel exists), closed twice, then used again: a closed
        # client reopens instead of failing with "session is closed".
        with pytest.raises(OrderError) as err:
            await client.produce("water", 1, 16)
        assert err.value.kind == "connect"
        await client.close()
        await client.close()


async def test_a_connection_reset_during_the_order_is_broken_not_connect() -> None:
    """Something listens, accepts and resets (as an overflowing service does): the
    order fails as ``broken``, which callers must not read as a wrong address."""
    import asyncio
    import struct

    async def reset(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(100)
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()

    server = await asyncio.start_server(reset, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with open_client(f"127.0.0.1:{port}", "http", timeout=5) as client:
            with pytest.raises(OrderError) as err:
                await client.produce("water", 1, 16)
    finally:
        server.close()
        await server.wait_closed()
    assert err.value.kind == "broken", err.value
