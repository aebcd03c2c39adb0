"""Which WebSocket handshakes API Gateway refuses before $connect runs, and with what.

Called for a request that is a valid WebSocket handshake (websockets checks that first,
with RFC 6455's answers: 405 for another method, 505 for another HTTP version, 426
without an upgrade, 400 for a bad key or version). A path other than the stage's gets
403 ``{"message":"Forbidden"}``; a connection over the account's new-connection rate
gets 429 (LimitExceeded). Only a handshake that would otherwise go on to $connect is a
new connection: the others spend nothing of the rate.
"""

from __future__ import annotations

from dataclasses import dataclass

from system.local.apigateway.limits import ConnectRateLimiter


@dataclass(frozen=True)
class Refusal:
    status: int
    body: str


NO_SUCH_STAGE = Refusal(403, '{"message":"Forbidden"}')
OVER_CONNECTION_RATE = Refusal(429, '{"message":"LimitExceededException"}')


def handshake_refusal(path: str, stage: str, rate: ConnectRateLimiter,
                      now: float) -> Refusal | None:
    """None lets the handshake go on to $connect (and takes one of ``rate``'s tokens at
    ``now``); a refusal otherwise."""
    if path.rstrip("/") != f"/{stage}":
        return NO_SUCH_STAGE
    if not rate.allow(now):
        return OVER_CONNECTION_RATE
    return None
