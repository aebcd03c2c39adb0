"""A chat client for the contract suite: blocking calls, an inbox filled by a reader
thread, and every frame it receives checked against the AsyncAPI document.

Blocking (``websockets.sync``) rather than asyncio, because hypothesis rules and
invariants are plain functions.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass

from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from contract_tests.protocol import ProtocolError, classify
from system.local.apigateway.limits import FRAME_BYTES

SETTLE_TIMEOUT_S = 15


@dataclass(frozen=True)
class Frame:
    """One received frame: its text, the protocol message it is, and its JSON (if any)."""

    text: str
    kind: str
    document: dict | None


class ChatClient:
    def __init__(self, url: str, **connect_options) -> None:
        self._resources = contextlib.ExitStack()
        self.ws: ClientConnection = self._resources.enter_context(connect(
            url, max_size=None, compression=None, open_timeout=SETTLE_TIMEOUT_S,
            **connect_options))
        self.inbox: list[Frame] = []
        self.violations: list[str] = []
        self.connection_id: str | None = None
        self._arrived = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        try:
            for raw in self.ws:
                self._receive(raw)
        except ConnectionClosed:
            pass
        with self._arrived:
            self._arrived.notify_all()

    def _receive(self, raw: str | bytes) -> None:
        try:
            kind = classify(raw)
        except ProtocolError as error:
            self.violations.append(str(error))
            kind = "invalid"
        text = raw if isinstance(raw, str) else raw.decode(errors="replace")
        try:
            document = json.loads(text)
        except ValueError:
            document = None
        with self._arrived:
            self.inbox.append(Frame(text, kind, document if isinstance(document, dict) else None))
            self._arrived.notify_all()

    # -- sending ---------------------------------------------------------------------------

    def send(self, message: dict | str) -> None:
        """Send a message, fragmented into frames API Gateway accepts (32 KB each)."""
        text = message if isinstance(message, str) else json.dumps(message, ensure_ascii=False)
        data = text.encode()
        fragments = (data[i:i + FRAME_BYTES] for i in range(0, len(data), FRAME_BYTES))
        try:
            self.ws.send(text if len(data) <= FRAME_BYTES else fragments, text=True)
        except ConnectionClosed:
            pass  # the server may close mid-message (1009); closed() tells how

    def chat(self, text: str) -> None:
        self.send({"action": "sendmessage", "message": text})

    def whoami(self) -> str:
        self.send({"action": "whoami"})
        frame = self.wait_for(lambda f: f.kind == "WhoAmI")
        self.connection_id = frame.document["connection_id"]
        return self.connection_id

    # -- receiving -------------------------------------------------------------------------

    def frames(self, predicate: Callable[[Frame], bool]) -> list[Frame]:
        with self._arrived:
            return [frame for frame in self.inbox if predicate(frame)]

    def wait_until(self, condition: Callable[[list[Frame]], bool], what: str,
                   timeout: float = SETTLE_TIMEOUT_S) -> None:
        """Block until ``condition(inbox)`` holds. AssertionError on timeout or close."""
        with self._arrived:
            if self._arrived.wait_for(
                lambda: condition(self.inbox) or not self._reader.is_alive(), timeout
            ) and condition(self.inbox):
                return
            inbox = [f.text[:120] for f in self.inbox]
        why = "the connection closed" if not self._reader.is_alive() else f"{timeout} s passed"
        raise AssertionError(f"{why} waiting for {what}; inbox: {inbox}")

    def wait_for(self, predicate: Callable[[Frame], bool], count: int = 1,
                 timeout: float = SETTLE_TIMEOUT_S) -> Frame:
        """Block until ``count`` frames match; return the first."""
        self.wait_until(lambda inbox: sum(map(predicate, inbox)) >= count,
                        f"{count} matching frame(s)", timeout)
        return self.frames(predicate)[0]

    def closed(self, timeout: float = SETTLE_TIMEOUT_S) -> int | None:
        """Wait until the server closes the connection; its close code."""
        self._reader.join(timeout)
        if self._reader.is_alive():
            raise AssertionError(f"the connection was not closed within {timeout} s")
        return self.ws.close_code

    # -- leaving ---------------------------------------------------------------------------

    def close(self) -> None:
        self._resources.close()
        self._reader.join(SETTLE_TIMEOUT_S)

    def drop(self) -> None:
        """Go away without a close frame, as a client whose network vanishes."""
        self.ws.socket.shutdown(socket.SHUT_RDWR)
