"""The capacity governor: provisioned RCU/WCU enforced per second with burst credit."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from system.local.capacity import CapacityGovernor, TokenBucket, parse_provisioned
from system.provision import Capacity


def test_provisioned_capacity_is_parsed_with_a_clear_error():
    assert parse_provisioned("MessageHistory=25/10") == ("MessageHistory", Capacity(25, 10))
    for text in ("MessageHistory", "MessageHistory=25", "=1/1", "T=0/1"):
        with pytest.raises(ValueError, match="TABLE=RCU/WCU|RCU/WCU|at least 1/1"):
            parse_provisioned(text)


def test_a_spent_bucket_throttles_until_it_refills():
    governor = CapacityGovernor({"T": Capacity(read=10, write=1)}, burst_s=0)
    assert governor.admits("Scan", ["T"], now=0.0)
    governor.charge("T", read=15, write=0, now=0.0)  # one big page takes it below zero
    assert not governor.admits("Scan", ["T"], now=0.0)
    assert not governor.admits("GetItem", ["T"], now=0.5)  # back at 0: still empty
    assert governor.admits("Query", ["T"], now=0.6)
    assert governor.admits("PutItem", ["T"], now=0.6)  # writes have their own bucket
    assert governor.admits("Scan", ["Other"], now=0.6)  # not provisioned: never throttled
    assert governor.admits("DescribeTable", ["T"], now=0.0)


def test_burst_credit_accumulates_up_to_its_window():
    bucket = TokenBucket(rate=10, burst_s=300)
    bucket.charge(0, now=0.0)
    bucket.charge(0, now=100.0)
    assert bucket.tokens == pytest.approx(10 + 1000)  # one second to start with, then refill
    bucket.charge(0, now=1000.0)
    assert bucket.tokens == pytest.approx(3000)
    without_burst = TokenBucket(rate=10, burst_s=0)
    without_burst.charge(0, now=0.0)
    without_burst.charge(0, now=1000.0)
    assert without_burst.tokens == pytest.approx(10)  # one second's worth


@given(rate=st.integers(1, 100), burst_s=st.sampled_from([0, 1, 300]),
       calls=st.lists(st.tuples(st.floats(0, 5), st.floats(0.5, 50)), max_size=60))
def test_admitted_consumption_never_passes_rate_plus_credit(rate, burst_s, calls):
    """Over [0, T] the admitted units stay within the first second's capacity, the refill
    over T, and one call's overdraft: what DynamoDB lets a provisioned table consume."""
    governor = CapacityGovernor({"T": Capacity(read=rate, write=1)}, burst_s=burst_s)
    now, admitted, largest = 0.0, 0.0, 0.0
    for gap, units in calls:
        now += gap
        if governor.admits("Scan", ["T"], now):
            governor.charge("T", read=units, write=0, now=now)
            admitted += units
            largest = max(largest, units)
    assert admitted <= rate + rate * now + largest + 1e-6
