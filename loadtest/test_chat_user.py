"""ChatUser under Locust's own runner, against a tiny chat server on 127.0.0.1.

Stopping a test is not a failure: no failure is recorded, no frame leaves after a
user's close frame, and a headless run that stops cleanly exits 0. A connection the
server closes or drops while the user runs is still counted (a "reconnect") and the
user connects again.

Locust runs in a child process: importing locust monkey-patches the whole process with
gevent, which must stay out of pytest's, where asyncio tests run. So this module
imports nothing at its top that imports ssl or asyncio (a spawned child imports it to
find ``run_chat_users``, which imports locust first). The server (``ChatServer``) runs
here, in a thread with its own asyncio loop, and parses every frame a client sends off
the wire itself (``Wire``): websockets stops parsing at a close frame, so it would never
show a frame sent after one.

Many users with a short heartbeat stop together, as at the end of a run: before the
fix, some of them sent a heartbeat after their close, and failed.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path

import pytest

from loadtest.measurement import ChatPayload
from loadtest.spawned_child import SpawnedChild
from system.handlers.frames import HEARTBEAT, chat_frame, sendmessage_request

HOST = "127.0.0.1"
USERS = 200
HEARTBEAT_S = 0.05
MESSAGES_PER_MINUTE = 300  # a chat message every 0.2 s besides
RUN_ID = "test-chat-user"
BEHIND_101 = "behind-101"  # the message a server may write behind its handshake's answer
WAIT_S = 30  # the bound of every wait here, not a pace
TEXT, CLOSE = 0x1, 0x8  # opcodes
NORMAL_CLOSURE, GOING_AWAY = 1000, 1001
HEARTBEAT_REQUEST = sendmessage_request(HEARTBEAT)
REPOSITORY = Path(__file__).resolve().parents[1]


# -- the chat server, in a thread of this process -------------------------------------------


class Wire:
    """One connection's client frames, parsed from the bytes as they arrived after the
    handshake; ``connection`` is websockets' own, to close or drop it."""

    def __init__(self, connection) -> None:
        from websockets.streams import StreamReader

        self.connection = connection
        self.frames: list[tuple[int, bytes]] = []  # (opcode, payload)
        self.heartbeats = 0
        self.ended = False
        self._reader = StreamReader()
        self._parser = self._parse()
        next(self._parser)

    def _parse(self):
        from websockets.frames import Frame

        while True:
            frame = yield from Frame.parse(self._reader.read_exact, mask=True)
            self.frames.append((frame.opcode.value, bytes(frame.data)))
            if frame.opcode.value == TEXT and json.loads(frame.data) == HEARTBEAT_REQUEST:
                self.heartbeats += 1

    def feed(self, data: bytes) -> None:
        self._reader.feed_data(data)
        next(self._parser)

    @property
    def close_code(self) -> int | None:
        """The code of the client's close frame, if it sent one."""
        closes = [data for opcode, data in self.frames if opcode == CLOSE]
        return int.from_bytes(closes[0][:2], "big") if closes else None

    @property
    def after_close(self) -> list[tuple[int, bytes]]:
        opcodes = [opcode for opcode, _ in self.frames]
        return self.frames[opcodes.index(CLOSE) + 1:] if CLOSE in opcodes else []


class ChatServer:
    """Answers a heartbeat "pong" and a chat message with its broadcast (to the sender
    only), as the chat does; keeps a Wire per connection. No keepalive pings: API
    Gateway sends none. With ``broadcast_behind_101``, each handshake's answer carries in
    the same write a broadcast of BEHIND_101 (as a server does that fans a message out
    to a connection just registered)."""

    def __init__(self, broadcast_behind_101: bool = False) -> None:
        self.broadcast_behind_101 = broadcast_behind_101
        self.wires: list[Wire] = []
        self.changed = threading.Condition()
        self.url = ""
        self._loop = None
        self._stop = None
        self._listening = threading.Event()
        self._thread = threading.Thread(target=self._run, name="chat server", daemon=True)
        self._thread.start()
        if not self._listening.wait(WAIT_S):
            raise RuntimeError(f"the chat server did not start in {WAIT_S} s")

    def _run(self) -> None:
        import asyncio

        asyncio.run(self._serve())

    async def _serve(self) -> None:
        import asyncio

        from websockets.asyncio.server import ServerConnection, serve
        from websockets.exceptions import ConnectionClosed
        from websockets.protocol import State

        changed, wires = self.changed, self.wires

        class TappedConnection(ServerConnection):
            def __init__(self, *args, **kwargs) -> None:
                super().__init__(*args, **kwargs)
                self.wire = Wire(self)
                with changed:
                    wires.append(self.wire)
                    changed.notify_all()

            def data_received(self, data: bytes) -> None:
                if self.protocol.state is not State.CONNECTING:
                    with changed:
                        self.wire.feed(data)
                        changed.notify_all()
                super().data_received(data)

            def connection_lost(self, exc: Exception | None) -> None:
                super().connection_lost(exc)
                with changed:
                    self.wire.ended = True
                    changed.notify_all()

        async def answer(connection: ServerConnection) -> None:
            with contextlib.suppress(ConnectionClosed):
                async for message in connection:
                    text = json.loads(message)["message"]
                    await connection.send(json.dumps(
                        {"message": "pong"} if text == HEARTBEAT
                        else chat_frame("m", "sender", "2024-01-01T00:00:00.000Z", text)))

        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        def with_a_broadcast(connection, request, response):
            """The 101 has no body: what follows its headers is the connection's first frame."""
            from dataclasses import replace

            from websockets.frames import Frame, Opcode

            now = time.time()
            text = ChatPayload(RUN_ID, BEHIND_101, "server", 0, now, now).encode()
            frame = json.dumps(chat_frame(BEHIND_101, "server", "2024-01-01T00:00:00.000Z", text))
            return replace(response, body=Frame(Opcode.TEXT, frame.encode()).serialize(mask=False))

        async with serve(answer, HOST, 0, create_connection=TappedConnection,
                         process_response=with_a_broadcast if self.broadcast_behind_101 else None,
                         compression=None, ping_interval=None) as listening:
            self.url = f"ws://{HOST}:{listening.sockets[0].getsockname()[1]}/"
            self._listening.set()
            await self._stop.wait()

    def wait_for(self, what: str, condition: Callable[[list[Wire]], bool]) -> None:
        with self.changed:
            if not self.changed.wait_for(lambda: condition(self.wires), WAIT_S):
                raise AssertionError(f"the server saw no {what} in {WAIT_S} s "
                                     f"({len(self.wires)} connections)")

    def wait_for_heartbeats(self, users: int, each: int) -> None:
        self.wait_for(f"{users} users with {each} heartbeats each", lambda wires: (
            len(wires) == users and all(wire.heartbeats >= each for wire in wires)))

    def end(self, wire: Wire, how: str) -> None:
        """Close the connection as a server going away does, or drop it without a word."""
        import asyncio

        if how == "close":
            asyncio.run_coroutine_threadsafe(wire.connection.close(GOING_AWAY),
                                             self._loop).result(WAIT_S)
        else:
            self._loop.call_soon_threadsafe(wire.connection.transport.abort)

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(WAIT_S)


@pytest.fixture
def chat_server():
    server = ChatServer()
    yield server
    server.stop()


@pytest.fixture
def chat_server_broadcasting_behind_101():
    server = ChatServer(broadcast_behind_101=True)
    yield server
    server.stop()


# -- the Locust process ---------------------------------------------------------------------

# A locustfile for the headless run: the same users, found in its namespace.
LOCUSTFILE = "from loadtest.test_chat_user import chatter_class\n\nChatter = chatter_class()\n"


def chatter_class() -> type:
    """The users of these tests: many chat messages and heartbeats a second. Defined when
    called, in a process that has imported locust first."""
    from loadtest.chat_user import ChatUser
    from loadtest.measurement import FanoutLedger

    class Chatter(ChatUser):
        ledger = FanoutLedger()
        run_id = RUN_ID
        heartbeat_s = HEARTBEAT_S
        messages_per_minute = MESSAGES_PER_MINUTE

    return Chatter


def run_chat_users(channel: Connection, host: str, users: int) -> None:
    """Child process: ``users`` ChatUsers under a LocalRunner against ``host``. Answers
    "report" with the runner's figures; "stop" stops the runner as the end of a test does
    (Locust's quit), then answers with its figures."""
    import locust  # noqa: F401 - first, so gevent patches sockets before anything imports ssl
    from gevent.socket import wait_read
    from locust.env import Environment

    started = []

    class Chatter(chatter_class()):
        def on_start(self) -> None:
            started.append(self)
            super().on_start()

    environment = Environment(user_classes=[Chatter], host=host)
    runner = environment.create_local_runner()

    def report() -> dict:
        stats = environment.stats
        ledger = Chatter.ledger.snapshot()
        return {
            "users": runner.user_count,
            "failures": stats.total.num_failures,
            "errors": [f"{error.method} {error.name}: {error.error} x{error.occurrences}"
                       for error in stats.errors.values()],
            "exceptions": [row["msg"] for row in runner.exceptions.values()],
            "requests": {f"{entry.method} {entry.name}": entry.num_requests
                         for entry in stats.entries.values()},
            "connections": [key for key, _, _ in ledger["connections"]],
            "receipts_of_behind_101": ledger["receipts"].get(BEHIND_101),
            "still_active": sum(user.heartbeats.active or (user.reconnecting is not None
                                                           and not user.reconnecting.dead)
                                for user in started),
        }

    runner.start(users, spawn_rate=users)
    try:
        while True:
            wait_read(channel.fileno(), timeout=4 * WAIT_S)  # for the test, cooperatively
            command = channel.recv()
            if command == "stop":
                runner.quit()
            channel.send(report())
            if command == "stop":
                return
    finally:
        runner.quit()


class LocustProcess(SpawnedChild):
    """``with LocustProcess(url, users) as locust:`` runs ChatUsers in a spawned child."""

    def __init__(self, host: str, users: int) -> None:
        super().__init__("Locust process", run_chat_users, host, users)

    def ask(self, command: str) -> dict:
        return super().ask(command, WAIT_S)


# -- the tests ------------------------------------------------------------------------------


def assert_every_user_closed_and_sent_nothing_after(wires: list[Wire]) -> None:
    for wire in wires:
        assert wire.close_code == NORMAL_CLOSURE
        assert wire.after_close == []


def test_stopping_is_no_failure_and_nothing_leaves_after_a_close(chat_server):
    with LocustProcess(chat_server.url, USERS) as locust:
        chat_server.wait_for_heartbeats(USERS, each=2)
        report = locust.ask("stop")
        chat_server.wait_for("end of every connection", lambda wires: all(w.ended for w in wires))

    assert report["failures"] == 0, report["errors"]
    assert report["errors"] == [] and report["exceptions"] == []
    assert report["still_active"] == 0  # no heartbeat timer, no reconnecting
    assert report["requests"]["WS heartbeat"] >= 2 * USERS
    assert report["requests"]["WS chat"] > 0
    assert len(chat_server.wires) == USERS  # no reconnect either
    assert_every_user_closed_and_sent_nothing_after(chat_server.wires)


def test_a_headless_run_that_stops_cleanly_exits_0(chat_server, tmp_path):
    locustfile = tmp_path / "chatter.py"
    locustfile.write_text(LOCUSTFILE)
    result = subprocess.run(
        [sys.executable, "-m", "locust", "-f", str(locustfile), "--headless", "--host",
         chat_server.url, "--users", str(USERS), "--spawn-rate", str(USERS),
         "--run-time", "2s", "--only-summary"],
        cwd=REPOSITORY, capture_output=True, text=True, timeout=2 * WAIT_S, check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert "already closed" not in output
    chat_server.wait_for("end of every connection", lambda wires: all(w.ended for w in wires))
    # However many users a busy machine started within the run time (the in-process test
    # above waits for heartbeats before it stops; this one is about the exit code). A user
    # still in its handshake when the run ends is killed without a close frame.
    assert 0 < len(chat_server.wires) <= USERS
    assert_every_user_closed_and_sent_nothing_after([w for w in chat_server.wires if w.frames
                                                     and w.frames[0][0] == TEXT])
    assert all(wire.after_close == [] for wire in chat_server.wires)


@pytest.mark.parametrize("how", ["close", "drop"])
def test_a_connection_the_server_ends_is_counted_and_the_user_reconnects(chat_server, how):
    users = 2
    with LocustProcess(chat_server.url, users) as locust:
        chat_server.wait_for_heartbeats(users, each=1)
        ended = chat_server.wires[0]
        chat_server.end(ended, how)
        chat_server.wait_for("reconnect", lambda wires: len(wires) == users + 1
                             and wires[-1].heartbeats >= 1)
        running = locust.ask("report")
        stopped = locust.ask("stop")
        chat_server.wait_for("end of every connection", lambda wires: all(w.ended for w in wires))

    assert running["users"] == users
    assert running["requests"]["WS reconnect"] == 1
    assert running["requests"]["WS connect"] == users + 1
    assert stopped["requests"]["WS reconnect"] == 1
    # The server's close is answered with its own code (RFC 6455 5.5.1, as websockets
    # does); a drop leaves nothing to answer.
    assert ended.close_code == (GOING_AWAY if how == "close" else None)
    assert_every_user_closed_and_sent_nothing_after(chat_server.wires[1:])


def test_a_broadcast_behind_the_handshakes_answer_is_the_new_connections(
        chat_server_broadcasting_behind_101):
    """Each connection's first frame comes in the handshake's own read: it is a receipt on
    that connection, not on one the ledger never saw open (which it would then expect every
    later message on)."""
    users = 3
    server = chat_server_broadcasting_behind_101
    with LocustProcess(server.url, users) as locust:
        server.wait_for_heartbeats(users, each=1)
        report = locust.ask("report")

    assert len(report["connections"]) == users and None not in report["connections"]
    connections, _delays = report["receipts_of_behind_101"]
    assert sorted(connections) == list(range(users))  # each connection's own, once
