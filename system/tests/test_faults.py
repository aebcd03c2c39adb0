"""Fault injection state: arming, counting down, clearing, refusing nonsense whole."""

import json
import re

import pytest

from system.control import control_call
from system.local.dynamodb_proxy import parse_json, tables_of
from system.local.faults import FaultError, Faults

DEEP = b"[" * 30_000  # deeper than any recursive JSON parser goes


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


def test_a_post_failure_storm_is_the_next_count_posts():
    faults = Faults()
    faults.arm({"post_failure": {"status": 429, "count": 3}})
    assert [faults.post_failure() for _ in range(5)] == [429, 429, 429, None, None]


def test_a_connect_hold_holds_the_next_count_handshakes():
    faults = Faults()
    faults.arm({"connect_hold": {"seconds": 6, "count": 2}})
    assert [faults.connect_hold_s() for _ in range(3)] == [6.0, 6.0, 0.0]
    assert faults.state()["injected"] == {"connect_hold": 2}


def test_clear_disarms_everything():
    faults = Faults()
    faults.arm({"suppress_disconnect": True, "post_failure": {"status": 410, "fraction": 1},
                "handler_errors": {"$default": 5}, "connect_hold": {"seconds": 1, "count": 1}})
    faults.clear()
    assert not faults.disconnect_suppressed()
    assert faults.post_failure() is None and not faults.handler_error("$default")
    assert faults.connect_hold_s() == 0


NONSENSE = [
    ([], "a fault document is a JSON object, got []"),
    ("x", "a fault document is a JSON object, got 'x'"),
    (None, "a fault document is a JSON object"),
    ({"explode": True}, "unknown faults"),
    ({"post_failure": {"status": 500, "fraction": 1}}, "status 429 or 410"),
    ({"post_failure": {"status": 429, "fraction": 2}}, "fraction in"),
    ({"post_failure": {"status": 429, "fraction": True}}, "fraction in"),
    ({"post_failure": [429, 1]}, "post_failure must be an object"),
    ({"post_failure": {"status": 429, "share": 1}}, "post_failure must be an object"),
    ({"post_failure": {"status": 429, "fraction": 1, "count": 2}}, "either fraction or count"),
    ({"post_failure": {"status": 429, "count": -1}}, "non-negative integer count"),
    ({"connect_hold": {"seconds": 30, "count": 1}}, "seconds in (0, 29]"),
    ({"connect_hold": {"seconds": 5}}, "connect_hold must be an object with seconds and count"),
    ({"throttle": {"T": -1}}, "throttle[T] must be a non-negative integer"),
    ({"throttle": ["T"]}, "throttle must be an object of table to count"),
    ({"handler_errors": {"sendmessage": True}}, "non-negative integer"),
    ({"suppress_disconnect": "yes"}, "suppress_disconnect must be true or false"),
    ({"seed": "7"}, "seed must be an integer"),
    # valid parts before and after the invalid one: none of them is armed either
    ({"suppress_disconnect": True, "handler_errors": {"sendmessage": 1},
      "post_failure": {"status": 410, "fraction": 1}, "throttle": {"T": "2"}},
     "throttle[T] must be"),
    ({"throttle": {"T": 2}, "post_failure": {"status": 410, "fraction": 1},
      "handler_errors": {"sendmessage": -1}}, "handler_errors[sendmessage] must be"),
]


@pytest.mark.parametrize("document, message", NONSENSE)
def test_an_invalid_document_is_refused_whole_and_arms_nothing(document, message):
    faults = Faults()
    faults.arm({"throttle": {"MessageHistory": 1}})
    before = faults.state()
    with pytest.raises(FaultError, match=re.escape(message)):
        faults.arm(document)
    assert faults.state() == before
    assert not faults.disconnect_suppressed() and faults.post_failure() is None


def test_the_control_endpoint_answers_400_to_any_invalid_document_and_arms_nothing(chat_stack):
    """Over HTTP: bodies that are not JSON, JSON that is not an object, hostile nesting,
    and half-valid documents are each one 400 with a one-line message."""
    stack = chat_stack.file
    bodies = [b"not json", DEEP, *(json.dumps(document).encode() for document, _ in NONSENSE)]
    try:
        for body in bodies:
            status, answer = control_call(stack, "POST", body=body)
            assert status == 400, (body[:60], answer)
            assert answer["message"].startswith("bad fault request: ")
            assert "\n" not in answer["message"]
        status, state = control_call(stack, "GET")
        assert status == 200
        assert (state["suppress_disconnect"], state["handler_errors"], state["throttle"],
                state["post_failure"], state["connect_hold"]) == (False, {}, {}, None, None)
    finally:
        control_call(stack, "DELETE")


def test_the_proxy_finds_the_tables_a_request_touches():
    assert tables_of(parse_json(b'{"TableName":"A","Item":{}}')) == ["A"]
    assert tables_of(parse_json(b'{"RequestItems":{"A":[],"B":[]}}')) == ["A", "B"]
    assert all(tables_of(parse_json(body)) == [] for body in (b"[]", b""))


@pytest.mark.parametrize("body", [b"not json", DEEP, b'{"TableName":' * 30_000])
def test_the_proxy_reads_no_document_in_a_body_that_is_not_json(body):
    assert parse_json(body) is None
