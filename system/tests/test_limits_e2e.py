"""Quotas with short configured values: idle timeout, maximum duration, connection rate."""

from __future__ import annotations

import asyncio
import time

import pytest
import websockets
from websockets.exceptions import InvalidStatus

from system.local.launcher import LocalStackProcess

IDLE_S = 1.0
MAX_DURATION_S = 4.0


@pytest.fixture(scope="module")
def short_lived_stack():
    stack = LocalStackProcess(["--idle-timeout", str(IDLE_S), "--max-duration",
                               str(MAX_DURATION_S), "--connect-rate", "3"])
    stack.start()
    yield stack
    stack.stop()


async def test_idle_connection_is_closed(short_lived_stack, clients):
    started = time.time()  # the idle clock starts at the handshake, not before
    client = await clients(short_lived_stack.file.websocket_url)
    code, _ = await client.closed(timeout=IDLE_S + 10)
    assert code == 1001
    assert time.time() - started >= IDLE_S


async def test_messages_from_the_server_also_keep_a_connection_from_idling(short_lived_stack,
                                                                           clients):
    client = await clients(short_lived_stack.file.websocket_url)
    connection_id = await client.whoami()
    management = short_lived_stack.file.management_client()
    for n in range(6):  # 2 idle periods of server-only traffic
        await asyncio.to_thread(management.post_to_connection, ConnectionId=connection_id,
                                Data=f'{{"n":{n}}}'.encode())
        await asyncio.sleep(IDLE_S / 3)
    assert client.ws.close_code is None
    assert (await client.closed(timeout=IDLE_S + 10))[0] == 1001


async def test_active_connection_is_closed_at_max_duration(short_lived_stack, clients):
    started = time.time()
    client = await clients(short_lived_stack.file.websocket_url)
    for _ in range(int(MAX_DURATION_S / (IDLE_S / 3)) + 30):  # keep it busy, bounded
        try:
            await client.send({"action": "sendmessage", "message": "ping"})
        except websockets.ConnectionClosed:
            break
        await asyncio.sleep(IDLE_S / 3)
    code, _ = await client.closed(timeout=1)
    assert code == 1001
    assert time.time() - started >= MAX_DURATION_S


async def test_new_connections_over_the_rate_are_refused_429(short_lived_stack):
    """Twelve handshakes at once against 3 new connections/s: the burst is refused."""
    attempts = await asyncio.gather(
        *(websockets.connect(short_lived_stack.file.websocket_url) for _ in range(12)),
        return_exceptions=True,
    )
    opened = [a for a in attempts if not isinstance(a, BaseException)]
    for ws in opened:
        await ws.close()
    refused = [a.response.status_code for a in attempts if isinstance(a, InvalidStatus)]
    assert len(opened) + len(refused) == len(attempts)
    assert set(refused) == {429} and 3 <= len(opened) < 12
