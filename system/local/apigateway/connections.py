"""Connection state and the @connections management API's answers.

AWS rules (apigatewaymanagementapi): POST 200, DELETE 204, GET 200 with
connectedAt, lastActiveAt and identity{sourceIp,userAgent}; an id that is not
open (unknown, still in $connect, closing or closed) -> 410 GoneException;
Data over 131,072 bytes -> 413 PayloadTooLargeException; an id that cannot be
a connection id -> 400 BadRequestException. The error type rides in the
``x-amzn-ErrorType`` header, which is what boto3 maps to its exception classes.

A connection is closing from the moment either side starts the closing
handshake (or the socket is lost) until the socket is gone: a POST then
answers 410 and nothing is delivered, as AWS answers for a connection that is
not open.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import UTC, datetime

from system.apigateway_quotas import MANAGEMENT_PAYLOAD_BYTES
from system.local.apigateway.ids import is_connection_id, new_connection_id


class State(enum.Enum):
    CONNECTING = "connecting"
    OPEN = "open"
    CLOSING = "closing"


@dataclass
class Connection:
    connection_id: str
    source_ip: str
    user_agent: str | None
    connected_at_ms: int
    last_active_at_ms: int
    state: State = State.CONNECTING
    posts_delivered: int = 0  # @connections POSTs that went out (the control API shows it)
    authorizer: dict | None = None  # requestContext.authorizer, where an authorizer allowed it


@dataclass(frozen=True)
class Answer:
    """An @connections response: status, AWS error type (for x-amzn-ErrorType), JSON body."""

    status: int
    error_type: str | None = None
    body: dict | None = field(default=None)

    @classmethod
    def error(cls, status: int, error_type: str, message: str) -> Answer:
        return cls(status, error_type, {"message": message})


def iso_ms(epoch_ms: int) -> str:
    return (
        datetime.fromtimestamp(epoch_ms / 1000, UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


def _gone(connection_id: str) -> Answer:
    return Answer.error(410, "GoneException", f"Connection {connection_id} is gone")


def payload_refusal(data_bytes: int) -> Answer | None:
    """413 for Data over 131,072 bytes, whatever the connection; None otherwise."""
    if data_bytes > MANAGEMENT_PAYLOAD_BYTES:
        return Answer.error(
            413,
            "PayloadTooLargeException",
            f"Data must be at most {MANAGEMENT_PAYLOAD_BYTES} bytes, got {data_bytes}",
        )
    return None


class ConnectionRegistry:
    """Every connection the API knows, and what @connections answers about each."""

    def __init__(self) -> None:
        self._connections: dict[str, Connection] = {}

    def __len__(self) -> int:
        return sum(1 for c in self._connections.values() if c.state is State.OPEN)

    def begin(self, source_ip: str, user_agent: str | None, now_ms: int) -> Connection:
        """A handshake arrived: the connection exists but is in $connect."""
        connection_id = new_connection_id()
        while connection_id in self._connections:
            connection_id = new_connection_id()
        connection = Connection(connection_id, source_ip, user_agent, now_ms, now_ms)
        self._connections[connection_id] = connection
        return connection

    def open(self, connection_id: str) -> bool:
        """$connect accepted and the handshake done; False if the connection already went."""
        connection = self._connections.get(connection_id)
        if connection is None:
            return False
        connection.state = State.OPEN
        return True

    def closing(self, connection_id: str) -> None:
        """A close has started (sent or received) or the socket was lost: 410 from now on."""
        connection = self._connections.get(connection_id)
        if connection is not None:
            connection.state = State.CLOSING

    def close(self, connection_id: str) -> None:
        """The socket is gone: the id is forgotten (and answers 410)."""
        self._connections.pop(connection_id, None)

    def touch(self, connection_id: str, now_ms: int) -> None:
        connection = self._connections.get(connection_id)
        if connection is not None:
            connection.last_active_at_ms = now_ms

    def get(self, connection_id: str) -> Connection | None:
        return self._connections.get(connection_id)

    def _check(self, connection_id: str) -> Answer | Connection:
        if not is_connection_id(connection_id):
            return Answer.error(400, "BadRequestException", f"Invalid connectionId: {connection_id}")
        connection = self._connections.get(connection_id)
        if connection is None or connection.state is not State.OPEN:
            return _gone(connection_id)
        return connection

    def post(self, connection_id: str, data_bytes: int) -> Answer:
        """May ``data_bytes`` be sent to ``connection_id``? 200 means send them now; the
        answer stays 200 only if ``delivered`` follows."""
        if (too_large := payload_refusal(data_bytes)) is not None:
            return too_large
        checked = self._check(connection_id)
        return checked if isinstance(checked, Answer) else Answer(200)

    def delivered(self, connection_id: str, now_ms: int) -> Answer:
        """The message went out: activity at ``now_ms``, which keeps the connection from
        idling as the client's own messages do. A delivery attempt that sent nothing
        (``undelivered``) is not activity."""
        self.touch(connection_id, now_ms)
        connection = self._connections.get(connection_id)
        if connection is not None:
            connection.posts_delivered += 1
        return Answer(200)

    def undelivered(self, connection_id: str) -> Answer:
        """A send the registry allowed did not go out (the socket was closing, or the
        client stopped reading and was disconnected): 410, nothing delivered."""
        self.closing(connection_id)
        return _gone(connection_id)

    def describe(self, connection_id: str) -> Answer:
        checked = self._check(connection_id)
        if isinstance(checked, Answer):
            return checked
        return Answer(
            200,
            body={
                "connectedAt": iso_ms(checked.connected_at_ms),
                "identity": {"sourceIp": checked.source_ip, "userAgent": checked.user_agent},
                "lastActiveAt": iso_ms(checked.last_active_at_ms),
            },
        )

    def delete(self, connection_id: str) -> Answer:
        """204 means: close the socket with 1000; the id is gone (closing) at once."""
        checked = self._check(connection_id)
        if isinstance(checked, Answer):
            return checked
        checked.state = State.CLOSING
        return Answer(204)
