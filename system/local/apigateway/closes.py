"""Which close frame API Gateway sends in each situation, and what $disconnect reports.

AWS rules: DeleteConnection closes with 1000; the idle timeout and the maximum
connection duration close with 1001 "Going away"; a binary frame on an API
that takes text is refused with 1003. $disconnect's disconnectStatusCode and
disconnectReason are the close the client sent (1005 when its close frame had
no code), else the one the server sent, else 1006 for a connection that was
lost without any close frame.
"""

from __future__ import annotations

from dataclasses import dataclass

# RFC 6455 section 7.4.1
NORMAL_CLOSURE = 1000
GOING_AWAY_CODE = 1001
PROTOCOL_ERROR = 1002
UNSUPPORTED_DATA = 1003
ABNORMAL_CLOSURE = 1006
INVALID_DATA = 1007
MESSAGE_TOO_BIG = 1009


@dataclass(frozen=True)
class Close:
    """A close frame's code and reason."""

    code: int
    reason: str = ""


DELETED = Close(NORMAL_CLOSURE, "")
GOING_AWAY = Close(GOING_AWAY_CODE, "Going away")
BINARY_REFUSED = Close(UNSUPPORTED_DATA, "Binary frames are not supported")
DROPPED = Close(ABNORMAL_CLOSURE, "Connection dropped without a close frame")

# Closes that mean the client sent something the API refuses: worth a line in the log.
_BAD_INPUT = {
    UNSUPPORTED_DATA: "binary frame",
    INVALID_DATA: "invalid UTF-8",
    MESSAGE_TOO_BIG: "message or frame over the size limit",
    PROTOCOL_ERROR: "WebSocket protocol error",
}


def disconnect_status(received: Close | None, sent: Close | None) -> Close:
    """disconnectStatusCode/Reason from the close frames received and sent (None: none)."""
    if received is not None:
        return received
    if sent is not None:
        return sent
    return DROPPED


def bad_input(close: Close) -> str | None:
    """What the client did wrong, when ``close`` is the API refusing its input."""
    return _BAD_INPUT.get(close.code)
