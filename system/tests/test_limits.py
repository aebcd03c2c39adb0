"""API Gateway quotas: the new-connection rate and limit validation."""

import pytest

from system.local.apigateway.limits import ApiLimits, ConnectRateLimiter


def test_burst_of_one_second_then_refill():
    limiter = ConnectRateLimiter(rate=500, now=0.0)
    assert sum(limiter.allow(0.0) for _ in range(600)) == 500
    assert not limiter.allow(0.0)
    assert sum(limiter.allow(0.1) for _ in range(100)) == 50


def test_rate_holds_over_time():
    limiter = ConnectRateLimiter(rate=10, now=0.0)
    allowed = sum(limiter.allow(step / 100) for step in range(1000))  # 10 s, 100 tries/s
    assert 100 <= allowed <= 110


def test_limits_must_be_positive():
    with pytest.raises(ValueError, match="idle_timeout_s"):
        ApiLimits(idle_timeout_s=0)
