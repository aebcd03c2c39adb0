"""Handshakes refused before $connect runs."""

import pytest

from system.local.apigateway.handshake import (
    NO_SUCH_STAGE,
    NOT_AN_UPGRADE,
    OVER_CONNECTION_RATE,
    handshake_refusal,
)


@pytest.mark.parametrize("path, upgrade, within_rate, refusal", [
    ("/local", "websocket", True, None),
    ("/local/", "WebSocket", True, None),
    ("/local", None, True, NOT_AN_UPGRADE),
    ("/local", "h2c", True, NOT_AN_UPGRADE),
    ("/prod", "websocket", True, NO_SUCH_STAGE),
    ("/", "websocket", True, NO_SUCH_STAGE),
    ("/local/x", "websocket", True, NO_SUCH_STAGE),
    ("/local", "websocket", False, OVER_CONNECTION_RATE),
])
def test_refusals(path, upgrade, within_rate, refusal):
    assert handshake_refusal(path, upgrade, "local", within_rate) == refusal
    if refusal is not None:
        assert refusal.status in (403, 426, 429)
