"""Hypothesis opens connections as broken or hostile clients do: other methods and HTTP
versions, missing or wrong upgrade headers, keys and versions, other paths and query
strings. Each gets the status API Gateway's rules give it (the model below), a refused
one never reaches $connect (no join notice), and the canary still chats after each."""

from __future__ import annotations

import base64
import socket
from dataclasses import dataclass

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from system.client.core import on_documents

VALID_KEY = base64.b64encode(b"sixteen bytes ok").decode()


@dataclass(frozen=True)
class Handshake:
    method: str
    path: str
    version: str
    upgrade: str | None
    connection: str | None
    key: str | None
    websocket_version: str | None

    def request(self, host: str) -> bytes:
        lines = [f"{self.method} {self.path} {self.version}", f"Host: {host}"]
        for name, value in (("Upgrade", self.upgrade), ("Connection", self.connection),
                            ("Sec-WebSocket-Key", self.key),
                            ("Sec-WebSocket-Version", self.websocket_version)):
            if value is not None:
                lines.append(f"{name}: {value}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode()

    def expected_status(self, stage: str) -> int:
        """What websockets checks first, as RFC 6455 4.2.1 answers (another method 405,
        another HTTP version 505, no upgrade or no Connection: upgrade 426, a key that is
        not 16 bytes of base64 or a version other than 13 400), then API Gateway's
        refusal of another path (403). The local stack serves its web client on / to a
        plain GET."""
        path = self.path.partition("?")[0]
        if (path, self.method, self.upgrade) == ("/", "GET", None):
            return 200
        if self.method != "GET":
            return 405
        if self.version != "HTTP/1.1":
            return 505
        if (self.upgrade or "").lower() != "websocket" or "upgrade" not in (
                self.connection or "").lower():
            return 426
        if self.key != VALID_KEY or self.websocket_version != "13":
            return 400
        if path.rstrip("/") != f"/{stage}":
            return 403
        return 101


def handshakes(stage: str):
    return st.builds(
        Handshake,
        method=st.sampled_from(["GET", "GET", "GET", "POST", "HEAD"]),
        path=st.sampled_from([f"/{stage}", f"/{stage}/", f"/{stage}?token=abc&x",
                              "/", "/other", f"/{stage}x", "/%2e%2e/"]),
        version=st.sampled_from(["HTTP/1.1", "HTTP/1.1", "HTTP/1.0"]),
        upgrade=st.sampled_from(["websocket", "WebSocket", "h2c", None]),
        connection=st.sampled_from(["Upgrade", "keep-alive, Upgrade", "close", None]),
        key=st.sampled_from([VALID_KEY, VALID_KEY, "short", "", None]),
        websocket_version=st.sampled_from(["13", "13", "8", "", None]),
    )


def status_of(address: tuple[str, int], request: bytes) -> int:
    with socket.create_connection(address, timeout=30) as sock:
        sock.sendall(request)
        status_line = sock.recv(4096).split(b"\r\n", 1)[0]
    return int(status_line.split()[1])


def joins(client) -> int:
    return len(client.frames(on_documents(lambda d: d.get("type") == "join")))


@settings(max_examples=80, deadline=None, suppress_health_check=[
    HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_handshakes_get_api_gateways_answers(chat_stack, canary, data):
    stage = chat_stack.file.stage
    handshake = data.draw(handshakes(stage))
    host, port = chat_stack.file.websocket_url.split("/")[2].split(":")
    joins_before = joins(canary.pair[0])
    expected = handshake.expected_status(stage)
    assert status_of((host, int(port)), handshake.request(f"{host}:{port}")) == expected
    canary.check()  # the join notice of a $connect comes before the 101, so before this
    assert joins(canary.pair[0]) == joins_before + (expected == 101)
