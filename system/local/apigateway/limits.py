"""API Gateway WebSocket quotas, named once, and the new-connection rate limit."""

from __future__ import annotations

from dataclasses import dataclass

# https://docs.aws.amazon.com/apigateway/latest/developerguide/limits.html
FRAME_BYTES = 32 * 1024
MESSAGE_BYTES = 128 * 1024
IDLE_TIMEOUT_SECONDS = 10 * 60
MAX_DURATION_SECONDS = 2 * 60 * 60
NEW_CONNECTIONS_PER_SECOND = 500
MANAGEMENT_PAYLOAD_BYTES = 131072
# The longest an integration may run before API Gateway gives up on it (29 s).
INTEGRATION_TIMEOUT_SECONDS = 29


@dataclass(frozen=True)
class ApiLimits:
    """The quotas one emulated API enforces; tests shorten them."""

    frame_bytes: int = FRAME_BYTES
    message_bytes: int = MESSAGE_BYTES
    idle_timeout_s: float = IDLE_TIMEOUT_SECONDS
    max_duration_s: float = MAX_DURATION_SECONDS
    new_connections_per_s: float = NEW_CONNECTIONS_PER_SECOND

    def __post_init__(self) -> None:
        for name in ("frame_bytes", "message_bytes", "idle_timeout_s", "max_duration_s",
                     "new_connections_per_s"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")


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
