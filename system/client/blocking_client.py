"""The blocking chat client, for tests whose steps are plain functions (hypothesis rules
and invariants): a reader thread fills an ``Inbox``; waits block on a
``threading.Condition``."""

from __future__ import annotations

import contextlib
import socket
import threading

from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from system.client.core import (
    CONNECT_OPTIONS,
    WAIT_TIMEOUT_S,
    WHOAMI_REQUEST,
    Condition,
    Frame,
    Inbox,
    Predicate,
    answers_whoami,
    at_least,
    encode,
    fragments,
    not_closed,
)
from system.handlers.frames import sendmessage_request


class BlockingChatClient:
    """``BlockingChatClient(url)`` connects; predicates match ``Frame``s.

    ``parse`` turns each received frame into the ``Frame`` the inbox keeps, on the reader
    thread: a subclass overrides it to check or classify every frame as it arrives.
    """

    def __init__(self, url: str, **options) -> None:
        self._resources = contextlib.ExitStack()  # websockets wants connect() entered
        self.ws: ClientConnection = self._resources.enter_context(
            connect(url, **{**CONNECT_OPTIONS, **options}))
        self.connection_id: str | None = None
        self._inbox = Inbox()
        self._arrived = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def parse(self, raw: str | bytes) -> Frame:
        return Frame.parse(raw)

    def _read(self) -> None:
        try:
            for raw in self.ws:
                frame = self.parse(raw)
                with self._arrived:
                    self._inbox.receive(frame)
                    self._arrived.notify_all()
        except ConnectionClosed:
            pass
        with self._arrived:
            self._inbox.end()
            self._arrived.notify_all()

    @property
    def inbox(self) -> list[Frame]:
        """Every frame received so far, in order (a copy: the reader keeps appending)."""
        with self._arrived:
            return list(self._inbox.frames)

    # -- sending ---------------------------------------------------------------------------

    def send(self, message: dict | str) -> None:
        """Send a message, in 32 KB fragments if longer."""
        try:
            self.ws.send(fragments(encode(message)), text=True)
        except ConnectionClosed:
            pass  # the server may close mid-message (1009); closed() tells how

    def chat(self, text: str) -> None:
        self.send(sendmessage_request(text))

    def whoami(self) -> str:
        """Ask the connection's id, and wait for this request's own answer."""
        answered = len(self.frames(answers_whoami))
        self.send(WHOAMI_REQUEST)
        self.wait_until(at_least(answered + 1, answers_whoami), "the answer to whoami")
        self.connection_id = self.frames(answers_whoami)[answered].document["connection_id"]
        return self.connection_id

    # -- receiving -------------------------------------------------------------------------

    def frames(self, predicate: Predicate) -> list[Frame]:
        with self._arrived:
            return self._inbox.where(predicate)

    def wait_until(self, condition: Condition, what: str,
                   timeout: float = WAIT_TIMEOUT_S) -> None:
        """Block until ``condition(frames)`` holds. AssertionError on timeout or close."""
        with self._arrived:
            self._arrived.wait_for(lambda: self._inbox.wait_is_over(condition), timeout)
            self._inbox.require(condition, what, timeout)

    def wait_for(self, predicate: Predicate, count: int = 1,
                 timeout: float = WAIT_TIMEOUT_S) -> Frame:
        """Block until ``count`` frames match; return the first."""
        self.wait_until(at_least(count, predicate), f"{count} matching frame(s)", timeout)
        return self.frames(predicate)[0]

    def closed(self, timeout: float = WAIT_TIMEOUT_S) -> int | None:
        """Wait until the server closes the connection; its close code."""
        self._reader.join(timeout)
        if self._reader.is_alive():
            raise not_closed(timeout)
        return self.ws.close_code

    # -- leaving ---------------------------------------------------------------------------

    def close(self) -> None:
        self._resources.close()
        self._reader.join(WAIT_TIMEOUT_S)

    def drop(self) -> None:
        """Go away without a close frame, as a client whose network vanishes."""
        self.ws.socket.shutdown(socket.SHUT_RDWR)
