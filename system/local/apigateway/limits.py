"""The quotas one emulated API enforces (AWS's by default); when they close a connection; the
new-connection rate limit."""

from __future__ import annotations

from dataclasses import dataclass

from system.apigateway_quotas import (
    FRAME_BYTES,
    IDLE_TIMEOUT_SECONDS,
    MAX_DURATION_SECONDS,
    MESSAGE_BYTES,
    NEW_CONNECTIONS_PER_SECOND,
)
from system.local.apigateway.closes import GOING_AWAY, Close

# Bytes queued to one client beyond which a send waits for it to read.
OUTBOUND_BUFFER_BYTES = 2**20


@dataclass(frozen=True)
class ApiLimits:
    """The quotas one emulated API enforces; tests shorten them."""

    frame_bytes: int = FRAME_BYTES
    message_bytes: int = MESSAGE_BYTES
    idle_timeout_s: float = IDLE_TIMEOUT_SECONDS
    max_duration_s: float = MAX_DURATION_SECONDS
    new_connections_per_s: float = NEW_CONNECTIONS_PER_SECOND
    # A client that stops reading: how long a message to it may wait for the connection's
    # outbound buffer (OUTBOUND_BUFFER_BYTES) to drain before the client is disconnected.
    # AWS documents no figure; bounded, so that @connections answers in bounded time and a
    # broadcast is not held past a 3 s Lambda timeout by one reader.
    outbound_stall_s: float = 1.0

    def __post_init__(self) -> None:
        for name in ("frame_bytes", "message_bytes", "idle_timeout_s", "max_duration_s",
                     "new_connections_per_s", "outbound_stall_s"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")


@dataclass(frozen=True)
class CloseDeadline:
    """When a connection is next closed for a quota, which quota, and with what close."""

    at_ms: float
    quota: str
    close: Close = GOING_AWAY


def close_deadline(connected_at_ms: int, last_active_at_ms: int,
                   limits: ApiLimits) -> CloseDeadline:
    """The earlier of the idle deadline (last activity + idle timeout) and the maximum
    duration (connection + 2 h by default); both close with 1001 "Going away".

    Activity is any message, from the client or posted to it through @connections
    (AWS: server messages keep a connection from idling too); it moves the idle
    deadline only, never past the maximum duration.
    """
    idle_end = last_active_at_ms + limits.idle_timeout_s * 1000
    max_end = connected_at_ms + limits.max_duration_s * 1000
    if idle_end < max_end:
        return CloseDeadline(idle_end, "idle timeout")
    return CloseDeadline(max_end, "maximum duration")


class ConnectRateLimiter:
    """Token bucket for new connections: ``rate`` per second, burst of one second's worth.

    Over the rate, API Gateway refuses the handshake with 429 (LimitExceeded).
    Time is passed in, so the rule is testable without a clock.
    """

    def __init__(self, rate: float, now: float) -> None:
        self.rate = rate
        self.tokens = rate
        self.updated = now

    def allow(self, now: float) -> bool:
        self.tokens = min(self.rate, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False
