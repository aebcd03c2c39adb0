"""WebSocketConnection against real servers on 127.0.0.1, and its fast path on its own.

The connection only ever runs in a gevent-patched process (Locust's), so it runs here in
a spawned child (``Client``, driven by commands through a pipe) that patches itself
first; pytest's own process, where asyncio tests run, must not be patched. So this module
imports nothing at its top that imports ssl, asyncio or gevent: the child imports it to
find ``run_client``. The servers run here, each in a thread with its own asyncio loop:
websockets' (``Server``), or a bare one speaking websockets' Sans-I/O protocol
(``HandshakeServer``) to put frames in the same write as the handshake's answer.

What is checked: TLS (``wss://``) with a certificate the system trusts, and one it does
not; messages whole and in order, however they are framed (fragments) and however the
bytes are cut into reads (a frame split across reads, several frames in a read, frames
bigger than a read); pings answered; a refused handshake (HTTP 401) and an unreachable
server raise; a close from either side, or a dropped connection, ends the connection
once; and ``single_text_frame``, the fast path, on its own (here, without gevent's
patching: importing the module patches nothing and imports no Locust).
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import threading
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Self

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from websockets.frames import Frame, Opcode

from loadtest.spawned_child import SpawnedChild

HOST = "127.0.0.1"
WAIT_S = 30  # the bound of every wait here, not a pace
NORMAL_CLOSURE, GOING_AWAY = 1000, 1001
REPOSITORY = Path(__file__).resolve().parents[1]


def server_frame(opcode: Opcode, payload: bytes, fin: bool = True) -> bytes:
    """A frame as a server sends it (unmasked)."""
    return Frame(opcode, payload, fin=fin).serialize(mask=False)


def text_frame(payload: bytes) -> bytes:
    return server_frame(Opcode.TEXT, payload)


def assert_same_messages(got: list[bytes], expected: list[bytes]) -> None:
    """Equal lists, with a short account of the first difference when they are long."""
    if got == expected:
        return
    if len(repr(got)) + len(repr(expected)) < 1200:
        assert got == expected  # short lists: pytest shows them both
    first = next((i for i, (g, e) in enumerate(zip(got, expected)) if g != e),
                 min(len(got), len(expected)))
    shown = (lambda message: repr(message[:80]) + (f"... ({len(message)} bytes)"
                                                  if len(message) > 80 else ""))
    raise AssertionError(
        f"{len(got)} messages, {len(expected)} expected; first difference at {first}: "
        f"got {shown(got[first]) if first < len(got) else 'nothing'}, "
        f"expected {shown(expected[first]) if first < len(expected) else 'nothing'}")


# -- the servers, in threads of this process --------------------------------------------------


class ServerThread:
    """An asyncio loop in a thread of its own; ``run(coroutine)`` runs a coroutine in it and
    returns its result. ``stop`` closes the server (``_close``), cancels whatever still runs
    in the loop and ends the thread."""

    def __init__(self) -> None:
        import asyncio

        self.changed = threading.Condition()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=type(self).__name__,
                                        daemon=True)
        self._thread.start()

    def run(self, coroutine):
        import asyncio

        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(WAIT_S)

    def wait_for(self, what: str, condition: Callable[[], bool]) -> None:
        with self.changed:
            if not self.changed.wait_for(condition, WAIT_S):
                raise AssertionError(f"the server saw no {what} in {WAIT_S} s")

    def notify(self) -> None:
        with self.changed:
            self.changed.notify_all()

    async def _close(self) -> None:
        pass

    async def _shutdown(self) -> None:
        import asyncio

        await self._close()
        tasks = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def stop(self) -> None:
        try:
            self.run(self._shutdown())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(WAIT_S)
            if not self._thread.is_alive():
                self._loop.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


class Server(ServerThread):
    """websockets' asyncio server: keeps each connection (to send on, close, ping), the
    messages it received (in order), and each ended connection's close code from the
    client (None: no close frame came)."""

    def __init__(self, ssl_context=None, process_request=None) -> None:
        super().__init__()
        self.connections: list = []
        self.received: list[str | bytes] = []
        self.client_close_codes: dict = {}  # connection -> code
        try:
            self._server = self.run(self._serve(ssl_context, process_request))
        except BaseException:
            self.stop()
            raise
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"{'wss' if ssl_context else 'ws'}://{HOST}:{port}/"

    async def _serve(self, ssl_context, process_request):
        from websockets.asyncio.server import serve

        return await serve(self._handle, HOST, 0, ssl=ssl_context,
                           process_request=process_request, compression=None,
                           ping_interval=None)

    async def _handle(self, connection) -> None:
        from websockets.exceptions import ConnectionClosed

        with self.changed:
            self.connections.append(connection)
            self.changed.notify_all()
        with contextlib.suppress(ConnectionClosed):
            async for message in connection:
                with self.changed:
                    self.received.append(message)
                    self.changed.notify_all()
        await connection.wait_closed()
        close = connection.protocol.close_rcvd
        with self.changed:
            self.client_close_codes[connection] = None if close is None else close.code
            self.changed.notify_all()

    async def _close(self) -> None:
        self._server.close()
        await self._server.wait_closed()

    def connection(self):
        """The first connection, once it is open."""
        self.wait_for("connection", lambda: self.connections)
        return self.connections[0]

    def send(self, connection, *messages) -> None:
        """Each message in turn, at once (a list: sent as fragments)."""
        async def send():
            for message in messages:
                await connection.send(message)

        self.run(send())

    def write(self, connection, data: bytes) -> None:
        """Bytes on the connection's transport, as they are: in one write."""
        async def write():
            connection.transport.write(data)

        self.run(write())

    def client_close_code(self, connection) -> int | None:
        self.wait_for("end of the connection", lambda: connection in self.client_close_codes)
        return self.client_close_codes[connection]


class HandshakeServer(ServerThread):
    """A bare server speaking websockets' Sans-I/O protocol: accepts the handshake and
    writes its answer together with ``with_answer`` frames (a text frame, then a ping) in
    one write; then keeps the frames the client sends."""

    MESSAGE, PING = b"sent with the handshake's answer", b"a ping with the answer"

    def __init__(self) -> None:
        super().__init__()
        self.frames: list[tuple[Opcode, bytes]] = []
        self._server = self.run(self._serve())
        self.url = f"ws://{HOST}:{self._server.sockets[0].getsockname()[1]}/"

    async def _serve(self):
        import asyncio

        return await asyncio.start_server(self._handle, HOST, 0)

    async def _handle(self, reader, writer) -> None:
        import asyncio

        from websockets.frames import Frame as ReceivedFrame
        from websockets.server import ServerProtocol

        protocol = ServerProtocol()
        events = []
        while not events:
            data = await reader.read(65536)
            if not data:
                return
            protocol.receive_data(data)
            events = protocol.events_received()
        protocol.send_response(protocol.accept(events[0]))
        protocol.send_text(self.MESSAGE)
        protocol.send_ping(self.PING)
        writer.write(b"".join(protocol.data_to_send()))
        # Cancelled when the test ends (Python 3.11 logs a stream handler's cancellation
        # as an error: it is the end here).
        with contextlib.suppress(asyncio.CancelledError):
            while data := await reader.read(65536):
                protocol.receive_data(data)
                with self.changed:
                    self.frames += [(event.opcode, bytes(event.data))
                                    for event in protocol.events_received()
                                    if isinstance(event, ReceivedFrame)]
                    self.changed.notify_all()
        writer.close()

    async def _close(self) -> None:
        self._server.close()


# -- the client, in a spawned gevent-patched child --------------------------------------------


def run_client(channel: Connection) -> None:
    """Child process: patches itself with gevent (as Locust does), then runs commands from
    ``channel`` on one WebSocketConnection at a time, answering each with a dict:

    - ("open", url): opens and starts the connection: {"opened": True, "handed over before
      start": messages delivered between the two}, or what open raised ({"raised",
      "message", "status"})
    - ("messages", n): every message received so far, once there are n (or WAIT_S passed),
      and whether each came with a time between the open and its delivery
    - ("send", text): {"sent": True}, or {"raised": name} if send_text raised
    - ("close", wait_s): close(wait_s), then whether it ended and on_end's calls so far
    - ("end",): once on_end has been called (or WAIT_S passed), its calls so far

    A command that fails answers {"exception": traceback}."""
    from gevent import monkey

    monkey.patch_all()

    import time
    import traceback

    from gevent.event import Event
    from gevent.socket import wait_read

    from loadtest.websocket_connection import WebSocketConnection

    received: list[tuple[bytes, float, float]] = []  # (message, its time, delivered at)
    ends: list[float] = []
    changed = Event()
    connection: WebSocketConnection | None = None
    opened_at = 0.0

    def on_message(data: bytes, at: float) -> None:
        received.append((data, at, time.time()))
        changed.set()

    def on_end() -> None:
        ends.append(time.time())
        changed.set()

    def wait_until(condition: Callable[[], bool]) -> None:
        deadline = time.monotonic() + WAIT_S
        while not condition() and (remaining := deadline - time.monotonic()) > 0:
            changed.clear()
            changed.wait(remaining)

    def execute(command: str, *args) -> dict:
        nonlocal connection, opened_at
        if command == "open":
            received.clear()
            ends.clear()
            opened_at = time.time()
            try:
                connection = WebSocketConnection.open(args[0], WAIT_S, on_message, on_end)
            except Exception as exc:  # noqa: BLE001 - reported to the test
                response = getattr(exc, "response", None)
                return {"raised": type(exc).__name__, "message": str(exc),
                        "status": getattr(response, "status_code", None)}
            handed_over_before_start = len(received)
            connection.start()
            return {"opened": True, "handed over before start": handed_over_before_start}
        if command == "messages":
            wait_until(lambda: len(received) >= args[0])
            return {"messages": [bytes(data) for data, _, _ in received],
                    "timed": all(opened_at <= at <= delivered for _, at, delivered in received)}
        if command == "send":
            try:
                connection.send_text(args[0])
            except Exception as exc:  # noqa: BLE001 - reported to the test
                return {"raised": type(exc).__name__}
            return {"sent": True}
        if command == "close":
            connection.close(args[0])
            return {"ended": connection.ended.is_set(), "ends": len(ends)}
        if command == "end":
            wait_until(lambda: ends)
            return {"ends": len(ends), "open_for_sending": connection.open_for_sending}
        raise ValueError(f"unknown command {command!r}")

    try:
        while True:
            wait_read(channel.fileno(), timeout=10 * WAIT_S)  # cooperatively: the loop runs
            try:
                command = channel.recv()
            except EOFError:  # the test is done
                return
            try:
                reply = execute(*command)
            except Exception:  # noqa: BLE001 - reported to the test
                reply = {"exception": traceback.format_exc()}
            channel.send(reply)
    finally:
        if connection is not None:
            connection.close(0)


class Client(SpawnedChild):
    """``with Client() as client:`` runs ``run_client`` in a spawned child;
    ``client.ask(*command)`` is its answer."""

    def __init__(self) -> None:
        super().__init__("websocket client", run_client)

    def ask(self, *command) -> dict:
        reply = super().ask(command, 2 * WAIT_S)  # the child's own waits are bounded by WAIT_S
        if "exception" in reply:
            raise AssertionError(f"the client failed {command[0]!r}:\n{reply['exception']}")
        return reply

    def open(self, url: str) -> None:
        reply = self.ask("open", url)
        assert reply == {"opened": True, "handed over before start": 0}, reply

    def messages(self, count: int) -> list[bytes]:
        reply = self.ask("messages", count)
        assert reply["timed"], "a message's time is not between the open and its delivery"
        return reply["messages"]


@pytest.fixture
def server():
    with Server() as server:
        yield server


@pytest.fixture
def client():
    with Client() as client:
        yield client


# -- TLS ----------------------------------------------------------------------------------


@pytest.fixture
def tls(tmp_path, monkeypatch):
    """A CA that the child trusts (SSL_CERT_FILE, read by ssl.create_default_context), and
    ``tls(name, ca)``: a server context with a certificate for ``name`` from ``ca``."""
    import ssl

    import trustme

    ca = trustme.CA()
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    monkeypatch.setenv("SSL_CERT_FILE", str(ca_file))
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)

    def server_context(name: str, issuer=ca) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        issuer.issue_cert(name).configure_cert(context)
        return context

    return server_context


def test_wss_messages_whole_and_in_order_a_sent_frame_and_a_normal_close(tls):
    # A large message spans many TLS records and reads; no two of its parts are alike,
    # so a part lost, repeated or out of place shows.
    large = "".join(f"{i:07d}," for i in range(12_500))  # 100,000 bytes
    messages = ["first", "é, ü and ✓: not ASCII", large, "", "last"]
    with Server(ssl_context=tls(HOST)) as server, Client() as client:
        assert server.url.startswith("wss://")
        client.open(server.url)
        connection = server.connection()
        server.send(connection, *messages)
        assert_same_messages(client.messages(len(messages)), [m.encode() for m in messages])

        assert client.ask("send", b'{"action": "sendmessage"}') == {"sent": True}
        server.wait_for("message from the client", lambda: server.received)
        assert server.received == ['{"action": "sendmessage"}']

        assert client.ask("close", WAIT_S) == {"ended": True, "ends": 1}
        assert server.client_close_code(connection) == NORMAL_CLOSURE


def test_wss_refuses_a_certificate_it_does_not_trust(tls):
    import trustme

    with (Server(ssl_context=tls(HOST, issuer=trustme.CA())) as untrusted,
          Server(ssl_context=tls("localhost")) as other_name, Client() as client):
        for server in untrusted, other_name:  # the URL's host is 127.0.0.1
            reply = client.ask("open", server.url)
            assert reply["raised"] == "SSLCertVerificationError", reply
            assert server.connections == []


# -- framing and reads ----------------------------------------------------------------------


def test_a_fragmented_message_arrives_once_whole(server, client):
    client.open(server.url)
    connection = server.connection()
    server.send(connection, ["one ", "two, ", "three"], "after", [b"\x00\x01", b"", b"\xff"])
    assert client.messages(3) == [b"one two, three", b"after", b"\x00\x01\xff"]


def test_many_messages_sent_at_once_arrive_all_in_order(server, client):
    # Reads then hold many frames, and cut frames anywhere: in a header, in a length, in
    # a payload. Some messages are bigger than a read (65536 bytes).
    messages = [f"{i}:".encode() + bytes([97 + i % 26]) * (i * 37 % 400) for i in range(3000)]
    for i in range(100, 3000, 700):
        messages[i] = f"{i}:".encode() + bytes(range(32, 127)) * 1000  # 95,000 bytes
    client.open(server.url)
    connection = server.connection()
    server.send(connection, *messages)
    assert_same_messages(client.messages(len(messages)), messages)


# Frames with each kind of length (7, 16 and 64 bits) and the cuts to read them in two
# parts: none (a read of one whole frame: the fast path), in the first two header bytes,
# right after them, in the extended length, right after it, in the payload.
SPLIT_FRAMES = [
    (b"short", [0, 1, 2, 3, 6]),
    (b"sixteen-bit length " * 20, [0, 1, 2, 3, 4, 5, 200]),
    (bytes(range(48, 58)) * 7000, [0, 1, 2, 3, 9, 10, 11, 65536, 70009]),
]


def test_a_frame_split_across_reads_arrives_whole(server, client):
    """Each frame's first part is written with a whole frame before it, so both come in
    one read; the rest is written once that whole frame has been delivered: the client
    has read the first part, and holds it (or has parsed it) when the rest comes."""
    client.open(server.url)
    connection = server.connection()
    expected: list[bytes] = []
    for payload, cuts in SPLIT_FRAMES:
        frame = text_frame(payload)
        for cut in [*cuts, len(frame)]:  # the last: the whole frame after another, in a read
            marker = f"before a cut at {cut} of {len(frame)}".encode()
            server.write(connection, text_frame(marker) + frame[:cut])
            expected.append(marker)
            if cut < len(frame):
                assert_same_messages(client.messages(len(expected)), expected)
                server.write(connection, frame[cut:])
            expected.append(payload)
            assert_same_messages(client.messages(len(expected)), expected)
    server.send(connection, "still in step")
    assert_same_messages(client.messages(len(expected) + 1), [*expected, b"still in step"])


def test_a_payload_that_looks_like_a_text_frame_read_apart_from_its_header(server, client):
    """A binary message's payload may hold any bytes, among them those of a whole text
    frame. Read apart from its header (which the protocol has parsed, leaving no bytes
    in its buffer), that payload is still a payload, not a frame of its own."""
    lookalike = text_frame(b"hello")
    client.open(server.url)
    connection = server.connection()
    frame = server_frame(Opcode.BINARY, lookalike)
    server.write(connection, text_frame(b"marker") + frame[:2])  # ...and its header
    assert client.messages(1) == [b"marker"]
    server.write(connection, frame[2:])  # the payload alone
    server.send(connection, "after")
    assert_same_messages(client.messages(3), [b"marker", lookalike, b"after"])


def test_frames_that_come_with_the_handshakes_answer_are_handled(client):
    """A message in the same read as the handshake's answer is delivered once the connection
    starts, not before (the caller records the connection first); a ping there is answered,
    with nothing more coming from the server."""
    with HandshakeServer() as server:
        client.open(server.url)
        assert client.messages(1) == [HandshakeServer.MESSAGE]
        server.wait_for("pong", lambda: server.frames)
        assert server.frames == [(Opcode.PONG, HandshakeServer.PING)]


# -- control frames and the end ---------------------------------------------------------------


def test_pings_are_answered(server, client):
    client.open(server.url)
    connection = server.connection()

    async def ping_and_wait(data: bytes) -> None:
        import asyncio

        pong = await connection.ping(data)
        await asyncio.wait_for(pong, WAIT_S)

    for data in b"first", b"", b"third":
        server.run(ping_and_wait(data))
    server.send(connection, "after the pings")  # pings are not messages
    assert client.messages(1) == [b"after the pings"]


@pytest.mark.parametrize("how", ["close", "drop"])
def test_a_connection_the_server_ends_ends_once(server, client, how):
    client.open(server.url)
    connection = server.connection()
    if how == "close":
        server.run(connection.close(GOING_AWAY))
    else:
        async def drop():
            connection.transport.abort()

        server.run(drop())
    assert client.ask("end") == {"ends": 1, "open_for_sending": False}
    # The server's close is answered with its own code (RFC 6455 5.5.1).
    assert server.client_close_code(connection) == (GOING_AWAY if how == "close" else None)
    assert client.ask("send", b"too late") == {"raised": "InvalidState"}
    assert client.ask("close", 1) == {"ended": True, "ends": 1}  # nothing more to end


def test_a_refused_handshake_raises_invalid_status_with_the_status(client):
    from http import HTTPStatus

    def refuse(connection, request):
        return connection.respond(HTTPStatus.UNAUTHORIZED, "Unauthorized\n")

    with Server(process_request=refuse) as server:
        reply = client.ask("open", server.url)
    assert reply["raised"] == "InvalidStatus", reply
    assert reply["status"] == 401
    assert "401" in reply["message"] and "\n" not in reply["message"], reply["message"]


def test_an_unreachable_server_raises_oserror(client):
    import socket

    with socket.socket() as listening:  # a port that was free, closed again
        listening.bind((HOST, 0))
        port = listening.getsockname()[1]
    reply = client.ask("open", f"ws://{HOST}:{port}/")
    assert reply["raised"] == "ConnectionRefusedError", reply


# -- single_text_frame, the fast path ----------------------------------------------------------


def test_importing_the_module_patches_nothing_and_imports_no_locust():
    code = ("import sys, gevent.monkey, loadtest.websocket_connection\n"
            "print('locust' in sys.modules, gevent.monkey.is_anything_patched())\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPOSITORY, capture_output=True,
                            text=True, timeout=WAIT_S, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "False"]


def test_single_text_frame_gives_the_payload_for_each_kind_of_length():
    from loadtest.websocket_connection import single_text_frame

    assert single_text_frame(b"\x81\x05hello") == b"hello"
    assert single_text_frame(b"\x81\x00") == b""
    sixteen = b"x" * 300
    assert single_text_frame(b"\x81\x7e" + (300).to_bytes(2, "big") + sixteen) == sixteen
    sixty_four = bytes(range(256)) * 300  # 76,800 bytes
    assert single_text_frame(b"\x81\x7f" + len(sixty_four).to_bytes(8, "big")
                             + sixty_four) == sixty_four


@pytest.mark.parametrize("data", [
    pytest.param(Frame(Opcode.TEXT, b"hello").serialize(mask=True), id="masked"),
    pytest.param(Frame(Opcode.TEXT, b"x" * 300).serialize(mask=True), id="masked 16-bit"),
    pytest.param(server_frame(Opcode.TEXT, b"hello", fin=False), id="not final"),
    pytest.param(b"\xc1\x05hello", id="rsv1"),
    pytest.param(b"\xa1\x05hello", id="rsv2"),
    pytest.param(b"\x91\x05hello", id="rsv3"),
    pytest.param(server_frame(Opcode.CONT, b"hello"), id="continuation"),
    pytest.param(server_frame(Opcode.BINARY, b"hello"), id="binary"),
    pytest.param(server_frame(Opcode.CLOSE, b"\x03\xe8"), id="close"),
    pytest.param(server_frame(Opcode.PING, b"hello"), id="ping"),
    pytest.param(server_frame(Opcode.PONG, b"hello"), id="pong"),
    pytest.param(text_frame(b"hello") + b"x", id="a byte more"),
    pytest.param(text_frame(b"hello") + text_frame(b"again"), id="two frames"),
    pytest.param(text_frame(b"hello")[:-1], id="truncated"),
    pytest.param(text_frame(b"x" * 300)[:3], id="truncated in its length"),
    pytest.param(b"\x81", id="one byte"),
    pytest.param(b"", id="nothing"),
])
def test_single_text_frame_is_none_for_anything_else(data):
    from loadtest.websocket_connection import single_text_frame

    assert single_text_frame(data) is None


@given(payload=st.binary(max_size=70_000), cut=st.integers(min_value=0),
       extra=st.binary(min_size=1, max_size=16))
@example(payload=b"x" * 125, cut=1, extra=b"\x00")
@example(payload=b"x" * 126, cut=3, extra=b"\x81")
@example(payload=b"x" * 65535, cut=65538, extra=b"x")
@example(payload=b"x" * 65536, cut=9, extra=b"\x81\x00")
@example(payload=b"\x81\x05hello", cut=2, extra=b"x")
def test_single_text_frame_takes_exactly_one_whole_frame(payload, cut, extra):
    from loadtest.websocket_connection import single_text_frame

    frame = text_frame(payload)
    assert single_text_frame(frame) == payload
    # Any strict prefix: every one in the header, the last and one drawn.
    for length in {*range(min(len(frame), 12)), len(frame) - 1, cut % len(frame)}:
        assert single_text_frame(frame[:length]) is None, length
    assert single_text_frame(frame + extra) is None
