"""Quotas end to end, with short configured values: the server closes an idle connection
and one past its maximum duration (1001 "Going away"), and refuses handshakes over the
new-connection rate (429).

When each quota falls due, and with which close, is decided by pure functions tested
without a clock (test_limits.py, test_handshake.py). These tests only prove that the
server acts on those decisions, so they take each limit's time once and wait for events,
never for a fixed time.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

import websockets
from websockets.exceptions import InvalidStatus

from system.local.launcher import LocalStackProcess
from system.local.stack_fixtures import stack_fixture

# Each short quota on a stack of its own, the other quota out of reach: on a busy 2-core
# machine a slow $connect (the maximum duration counts from the handshake) or a slow
# reply must not let the other quota close the connection first.
IDLE_S = 2.0
MAX_DURATION_S = 3.0
OUT_OF_REACH_S = 600.0
PING_EVERY_S = 0.25
CONNECT_RATE = 3
PING = {"action": "sendmessage", "message": "ping"}


short_lived_stack = stack_fixture(
    ["--idle-timeout", str(IDLE_S), "--max-duration", str(OUT_OF_REACH_S),
     "--connect-rate", str(CONNECT_RATE)], scope="module",
    doc="An idle timeout and a connection rate short enough to meet in a test.")
short_duration_stack = stack_fixture(
    ["--idle-timeout", str(OUT_OF_REACH_S), "--max-duration", str(MAX_DURATION_S)],
    scope="module", doc="A maximum duration short enough to meet in a test.")


async def quota_that_closed(stack: LocalStackProcess, connection_id: str) -> str:
    """The quota the server logged when it closed ``connection_id``."""
    line = await asyncio.to_thread(stack.wait_for_output, f"closing {connection_id}: ")
    return line.rsplit(f"closing {connection_id}: ", 1)[1].strip()


async def test_idle_connection_is_closed_going_away(short_lived_stack, clients):
    client = await clients(short_lived_stack.file.websocket_url)
    started = time.time()  # before its last activity: the whoami below and its reply
    connection_id = await client.whoami()
    assert await client.closed(timeout=IDLE_S + 10) == (1001, "Going away")
    assert time.time() - started >= IDLE_S
    assert await quota_that_closed(short_lived_stack, connection_id) == "idle timeout"


async def test_active_connection_is_closed_going_away_at_max_duration(short_duration_stack,
                                                                      clients):
    started = time.time()  # before the handshake, where the duration starts
    client = await clients(short_duration_stack.file.websocket_url)
    connection_id = await client.whoami()
    closing = asyncio.ensure_future(client.closed(timeout=MAX_DURATION_S + 10))
    while not (await asyncio.wait({closing}, timeout=PING_EVERY_S))[0]:
        with contextlib.suppress(websockets.ConnectionClosed):  # a ping racing the close
            await client.send(PING)
    closed = closing.result()
    assert closed == (1001, "Going away")
    assert time.time() - started >= MAX_DURATION_S
    assert await quota_that_closed(short_duration_stack, connection_id) == "maximum duration"


async def test_new_connections_over_the_rate_are_refused_429(short_lived_stack):
    """Twelve handshakes at once against 3 new connections/s: the burst is refused.
    Last in this module: the connections above were made over a second ago, so the
    bucket is full."""
    attempts = await asyncio.gather(
        *(websockets.connect(short_lived_stack.file.websocket_url) for _ in range(12)),
        return_exceptions=True,
    )
    opened = [a for a in attempts if not isinstance(a, BaseException)]
    for ws in opened:
        await ws.close()
    refused = [(a.response.status_code, bytes(a.response.body)) for a in attempts
               if isinstance(a, InvalidStatus)]
    assert len(opened) + len(refused) == len(attempts), attempts
    assert set(refused) == {(429, b'{"message":"LimitExceededException"}')}
    assert CONNECT_RATE <= len(opened) < len(attempts)
