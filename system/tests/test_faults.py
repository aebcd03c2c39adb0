"""Fault injection state: arming, counting down, clearing, refusing nonsense."""

import pytest

from system.local.dynamodb_proxy import parse_json, tables_of
from system.local.faults import FaultError, Faults


def test_handler_errors_and_throttles_count_down():
    faults = Faults()
    faults.arm({"handler_errors": {"sendmessage": 2}, "throttle": {"MessageHistory": 1}})
    assert [faults.handler_error("sendmessage") for _ in range(3)] == [True, True, False]
    assert not faults.handler_error("$connect")
    assert [faults.throttle("MessageHistory") for _ in range(2)] == [True, False]
    assert faults.state()["injected"] == {"handler_errors": 2, "throttle": 1}


def test_post_failures_follow_the_fraction():
    faults = Faults()
    faults.arm({"post_failure": {"status": 429, "fraction": 0.25}, "seed": 7})
    outcomes = [faults.post_failure() for _ in range(4000)]
    assert set(outcomes) == {None, 429}
    assert 800 < outcomes.count(429) < 1200


def test_clear_disarms_everything():
    faults = Faults()
    faults.arm({"suppress_disconnect": True, "post_failure": {"status": 410, "fraction": 1},
                "handler_errors": {"$default": 5}})
    faults.clear()
    assert not faults.disconnect_suppressed()
    assert faults.post_failure() is None and not faults.handler_error("$default")


@pytest.mark.parametrize("document, message", [
    ({"explode": True}, "unknown faults"),
    ({"post_failure": {"status": 500, "fraction": 1}}, "status 429 or 410"),
    ({"post_failure": {"status": 429, "fraction": 2}}, "fraction in"),
    ({"throttle": {"T": -1}}, "non-negative integer"),
])
def test_nonsense_is_refused(document, message):
    with pytest.raises(FaultError, match=message):
        Faults().arm(document)


def test_the_proxy_finds_the_tables_a_request_touches():
    assert tables_of(parse_json(b'{"TableName":"A","Item":{}}')) == ["A"]
    assert tables_of(parse_json(b'{"RequestItems":{"A":[],"B":[]}}')) == ["A", "B"]
    assert all(tables_of(parse_json(body)) == [] for body in (b"not json", b"[]", b""))
