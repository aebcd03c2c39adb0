"""Which opening handshakes API Gateway refuses before $connect runs, and with what.

A request that is not a WebSocket upgrade gets 426; a path other than the
stage's gets 403 ``{"message":"Forbidden"}``; a connection over the account's
new-connection rate gets 429 (LimitExceeded). Only a handshake that would
otherwise go on to $connect is a new connection: the others spend nothing of
the rate.
"""

from __future__ import annotations

from dataclasses import dataclass

from system.local.apigateway.limits import ConnectRateLimiter


@dataclass(frozen=True)
class Refusal:
    status: int
    body: str


NOT_AN_UPGRADE = Refusal(426, "WebSocket upgrade required\n")
NO_SUCH_STAGE = Refusal(403, '{"message":"Forbidden"}')
OVER_CONNECTION_RATE = Refusal(429, '{"message":"LimitExceededException"}')


def handshake_refusal(path: str, upgrade_header: str | None, stage: str,
                      rate: ConnectRateLimiter, now: float) -> Refusal | None:
    """None lets the handshake go on to $connect (and takes one of ``rate``'s tokens at
    ``now``); a refusal otherwise."""
    if (upgrade_header or "").lower() != "websocket":
        return NOT_AN_UPGRADE
    if path.rstrip("/") != f"/{stage}":
        return NO_SUCH_STAGE
    if not rate.allow(now):
        return OVER_CONNECTION_RATE
    return None
