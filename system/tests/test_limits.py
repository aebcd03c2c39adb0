"""API Gateway quotas: when idle timeout and maximum duration close a connection, the
new-connection rate, limit validation. Time is a value here: nothing sleeps."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from system.local.apigateway.limits import ApiLimits, ConnectRateLimiter, close_deadline

CONNECTED = 1_795_000_000_000
MINUTE_MS = 60_000
AWS = ApiLimits()  # the defaults: AWS's quotas


def test_a_silent_connection_is_closed_10_minutes_after_it_opened():
    deadline = close_deadline(CONNECTED, CONNECTED, AWS)
    assert (deadline.at_ms, deadline.quota) == (CONNECTED + 10 * MINUTE_MS, "idle timeout")
    assert (deadline.close.code, deadline.close.reason) == (1001, "Going away")


def test_activity_moves_the_idle_deadline():
    deadline = close_deadline(CONNECTED, CONNECTED + 7 * MINUTE_MS, AWS)
    assert (deadline.at_ms, deadline.quota) == (CONNECTED + 17 * MINUTE_MS, "idle timeout")


def test_an_active_connection_is_closed_2_hours_after_it_opened():
    deadline = close_deadline(CONNECTED, CONNECTED + 115 * MINUTE_MS, AWS)
    assert (deadline.at_ms, deadline.quota) == (CONNECTED + 120 * MINUTE_MS, "maximum duration")
    assert (deadline.close.code, deadline.close.reason) == (1001, "Going away")


limits = st.builds(ApiLimits, idle_timeout_s=st.floats(0.001, 10_000),
                   max_duration_s=st.floats(0.001, 100_000))
connected_at = st.integers(0, 2**42)
activity_ms = st.integers(0, 10**9)  # how long after the connection opened it last spoke


@given(limits, connected_at, activity_ms)
def test_the_deadline_is_the_earlier_of_idle_and_maximum_duration(limits, connected, active):
    deadline = close_deadline(connected, connected + active, limits)
    idle_end = connected + active + limits.idle_timeout_s * 1000
    max_end = connected + limits.max_duration_s * 1000
    assert deadline.at_ms == min(idle_end, max_end)
    assert deadline.quota == ("idle timeout" if idle_end < max_end else "maximum duration")
    assert (deadline.close.code, deadline.close.reason) == (1001, "Going away")


@given(limits, connected_at, activity_ms, activity_ms)
def test_later_activity_never_brings_the_close_forward_nor_past_the_maximum(
        limits, connected, earlier, later):
    earlier, later = sorted((earlier, later))
    first = close_deadline(connected, connected + earlier, limits)
    second = close_deadline(connected, connected + later, limits)
    assert first.at_ms <= second.at_ms <= connected + limits.max_duration_s * 1000


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
