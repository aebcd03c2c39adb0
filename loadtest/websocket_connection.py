"""A client WebSocket connection that gevent's event loop reads, with no greenlet of its own.

One Locust process holds thousands of connections that each receive a frame or two a
second. A greenlet per connection, blocked in a read, costs a switch into it, a socket
wait and its restart for every frame, more than the frame's own handling. Here the loop
watches each socket itself (an io watcher) and the watcher's callback reads what
arrived, parses it with websockets' Sans-I/O protocol and hands each message over at
once, in the loop: nothing in it may block, so after the handshake the socket is
non-blocking and what it cannot take at once waits in a buffer for a write watcher.

Nearly every read holds exactly one whole, final, unmasked text frame of a few hundred
bytes: that one is taken from the bytes directly (its header's two bytes and length),
about 1.5 µs where the protocol's generic parser takes 7 (a 500-byte chat frame, on this
project's machine). Anything else, and any read while the protocol is inside a frame,
goes through the protocol.

The handshake (``open``) runs in the calling greenlet, blocking it only; ``wss://`` URLs
get TLS with the system's trusted certificates.
"""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Callable

import gevent
from gevent.event import Event
from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.protocol import State
from websockets.uri import parse_uri

READ_SIZE = 65536
WAITING = (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError)
READ, WRITE = 1, 2  # libev's event masks
FINAL_TEXT = 0x81  # first header byte: FIN, no RSV bits (no extension), opcode 1


def frame_sizes(data: bytes | bytearray, start: int) -> tuple[int, int] | None:
    """(header, payload) sizes of the frame that starts at ``data[start]`` (RFC 6455 5.2),
    or None while its header has not all come."""
    if len(data) < start + 2:
        return None
    length = data[start + 1] & 0x7F
    extended = 0 if length < 126 else 2 if length == 126 else 8
    header = 2 + extended + (4 if data[start + 1] & 0x80 else 0)  # a mask key, if masked
    if len(data) < start + header:
        return None
    if extended:
        length = int.from_bytes(data[start + 2:start + 2 + extended])
    return header, length


def single_text_frame(data: bytes) -> bytes | None:
    """The payload if ``data`` is exactly one final, unmasked text frame (a server's),
    else None."""
    if len(data) < 2 or data[0] != FINAL_TEXT or data[1] & 0x80:  # masked: not a server's
        return None
    sizes = frame_sizes(data, 0)
    if sizes is None or len(data) != sizes[0] + sizes[1]:
        return None
    return data[sizes[0]:]


class WebSocketConnection:
    """An open connection. ``on_message(data, at)`` gets each whole text or binary message
    (bytes-like) with the time its first bytes were read (epoch s); ``on_end()`` is called once
    when the connection is gone, whoever ended it. Both run in the event loop."""

    def __init__(self, sock: socket.socket, protocol: ClientProtocol,
                 on_message: Callable[[bytes, float], None], on_end: Callable[[], None]) -> None:
        self._sock = sock
        self._protocol = protocol
        self._on_message = on_message
        self._on_end = on_end
        self._fragments: list[bytes] = []
        self._unsent = bytearray()
        self._tls = isinstance(sock, ssl.SSLSocket)
        # Where the protocol stands in the stream, for the fast path: bytes of its current
        # frame still to come, or the start of a header not yet whole. (It takes a frame's
        # header before the payload has come, so its empty buffer does not say.)
        self._rest_of_frame = 0
        self._partial_header = b""
        self._handshake_read_at = 0.0
        self.ended = Event()
        sock.settimeout(0.0)
        loop = gevent.get_hub().loop
        self._reading = loop.io(sock.fileno(), READ)
        self._writing = loop.io(sock.fileno(), WRITE)

    @classmethod
    def open(cls, url: str, timeout: float, on_message: Callable[[bytes, float], None],
             on_end: Callable[[], None]) -> WebSocketConnection:
        """Connect and complete the opening handshake within ``timeout`` seconds; raises
        websockets' InvalidStatus when the server refuses (e.g. HTTP 401), OSError when it
        cannot be reached. Nothing is handed over before ``start``."""
        uri = parse_uri(url)
        protocol = ClientProtocol(uri)
        sock = socket.create_connection((uri.host, uri.port), timeout=timeout)
        try:
            if uri.secure:
                sock = ssl.create_default_context().wrap_socket(sock, server_hostname=uri.host)
            protocol.send_request(protocol.connect())
            sock.sendall(b"".join(protocol.data_to_send()))
            received = bytearray()
            while protocol.state is State.CONNECTING and protocol.handshake_exc is None:
                data = sock.recv(READ_SIZE)
                received += data
                if data:
                    protocol.receive_data(data)
                else:
                    protocol.receive_eof()
            if protocol.handshake_exc is not None:
                raise protocol.handshake_exc
        except BaseException:
            sock.close()
            raise
        connection = cls(sock, protocol, on_message, on_end)
        connection._follow(received[received.index(b"\r\n\r\n") + 4:])  # a 101 has no body
        connection._handshake_read_at = time.time()
        return connection

    def start(self) -> None:
        """Hand over the frames that came with the handshake's answer (and answer them: a
        pong, a close reply), then each as it comes. The caller starts it once it is ready
        for them: a server may write frames right behind its 101."""
        _response, *frames = self._protocol.events_received()
        self._deliver(frames, self._handshake_read_at)
        try:
            self._write(self._protocol.data_to_send())
        except OSError:
            self._end()
            return
        self._reading.start(self._on_readable)

    @property
    def open_for_sending(self) -> bool:
        return self._protocol.state is State.OPEN

    def send_text(self, text: bytes) -> None:
        """Queue a text frame and write what the socket takes now; raises
        websockets' InvalidState once a close frame has gone or come."""
        self._protocol.send_text(text)
        self._write(self._protocol.data_to_send())

    def close(self, wait_s: float) -> None:
        """Send a normal-closure frame and wait up to ``wait_s`` for the server to answer
        and end the connection, then end it here if it has not."""
        if self._protocol.state is State.OPEN:
            try:
                self._protocol.send_close(1000)
                self._write(self._protocol.data_to_send())
            except OSError:
                pass  # already broken: nothing to wait for
            else:
                self.ended.wait(wait_s)
        self._end()

    # -- in the event loop ---------------------------------------------------------------------

    def _on_readable(self) -> None:
        at = time.time()
        try:
            data = self._sock.recv(READ_SIZE)
            # TLS: the library may hold decrypted bytes that the socket no longer signals.
            while data and self._tls and self._sock.pending():
                data += self._sock.recv(READ_SIZE)
        except WAITING:
            return  # not a whole TLS record yet
        except OSError:
            data = b""  # reset: as good as an end of stream
        if data and not (self._rest_of_frame or self._partial_header) and (
                self.open_for_sending and (payload := single_text_frame(data)) is not None):
            self._on_message(payload, at)
            return
        if data:
            self._follow(data)
            self._protocol.receive_data(data)
        else:
            self._protocol.receive_eof()
        self._deliver(self._protocol.events_received(), at)
        try:
            self._write(self._protocol.data_to_send())  # pongs, the close reply
        except OSError:
            self._end()
            return
        if not data or self._protocol.state is State.CLOSED:
            self._end()

    def _follow(self, data: bytes | bytearray) -> None:
        """Follow the frame boundaries through ``data``, bytes on their way to the protocol."""
        data = self._partial_header + data
        position = self._rest_of_frame
        while position < len(data) and (sizes := frame_sizes(data, position)) is not None:
            position += sizes[0] + sizes[1]
        if position >= len(data):
            self._rest_of_frame, self._partial_header = position - len(data), b""
        else:
            self._rest_of_frame, self._partial_header = 0, bytes(data[position:])

    def _deliver(self, frames: list[Frame], at: float) -> None:
        for frame in frames:
            if frame.opcode is Opcode.TEXT or frame.opcode is Opcode.BINARY:
                if frame.fin:
                    self._on_message(frame.data, at)
                else:
                    self._fragments = [frame.data]
            elif frame.opcode is Opcode.CONT:
                self._fragments.append(frame.data)
                if frame.fin:
                    self._on_message(b"".join(self._fragments), at)
                    self._fragments = []
            # PING and CLOSE are answered by the protocol; PONG needs nothing

    def _write(self, chunks: list[bytes]) -> None:
        for chunk in chunks:
            if not chunk:  # the protocol's end of stream: the server closes, or _end does
                continue
            self._unsent += chunk
        self._flush()

    def _flush(self) -> None:
        while self._unsent:
            try:
                sent = self._sock.send(self._unsent)
            except WAITING:
                if not self._writing.active:
                    self._writing.start(self._on_writable)
                return
            del self._unsent[:sent]
        self._writing.stop()

    def _on_writable(self) -> None:
        try:
            self._flush()
        except OSError:
            self._end()

    def _end(self) -> None:
        if self.ended.is_set():
            return
        self._reading.close()
        self._writing.close()
        self._sock.close()
        self.ended.set()
        self._on_end()
