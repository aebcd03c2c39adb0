"""Handshakes refused before $connect runs, and which ones count against the
new-connection rate. The rate's clock is a value: nothing sleeps."""

import pytest

from system.local.apigateway.handshake import handshake_refusal
from system.local.apigateway.limits import ConnectRateLimiter

STAGE = "local"


def plenty() -> ConnectRateLimiter:
    return ConnectRateLimiter(rate=1000, now=0.0)


@pytest.mark.parametrize("path", ["/local", "/local/"])
def test_a_handshake_for_the_stage_goes_on_to_connect(path):
    assert handshake_refusal(path, STAGE, plenty(), 0.0) is None


@pytest.mark.parametrize("path", ["/prod", "/", "", "/local/x", "/localx"])
def test_a_handshake_for_another_path_is_403_forbidden(path):
    refusal = handshake_refusal(path, STAGE, plenty(), 0.0)
    assert (refusal.status, refusal.body) == (403, '{"message":"Forbidden"}')


def test_over_the_new_connection_rate_is_429_until_the_bucket_refills():
    rate = ConnectRateLimiter(rate=2, now=0.0)
    outcomes = [handshake_refusal("/local", STAGE, rate, 0.0) for _ in range(3)]
    assert outcomes[:2] == [None, None]
    assert (outcomes[2].status, outcomes[2].body) == (429, '{"message":"LimitExceededException"}')
    assert handshake_refusal("/local", STAGE, rate, 0.5) is None  # one token back


def test_refused_requests_spend_nothing_of_the_rate():
    rate = ConnectRateLimiter(rate=1, now=0.0)
    for _ in range(5):
        assert handshake_refusal("/prod", STAGE, rate, 0.0).status == 403
    assert handshake_refusal("/local", STAGE, rate, 0.0) is None
    assert handshake_refusal("/local", STAGE, rate, 0.0).status == 429
