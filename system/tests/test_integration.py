"""What a client sees of an integration's outcome: handshake status, reply frames."""

import json

import pytest

from system.local.apigateway.integration import (
    connect_refusal_body,
    connect_status,
    route_reply,
)
from system.local.lambda_runtime.outcome import Outcome, throttled


def ok(result):
    return Outcome("rid", 1.0, result=result)


CRASH = Outcome("rid", 1.0, error={"errorType": "RuntimeError", "errorMessage": "boom"})
TIMEOUT = Outcome("rid", 3000.0, error={"errorType": "TimedOut", "errorMessage": "Task timed out"})
THROTTLE = throttled("rid")


@pytest.mark.parametrize("result", [{"statusCode": 200}, {"statusCode": 204}, None, "ok", {}])
def test_connect_accepted(result):
    assert connect_status(ok(result)) is None


@pytest.mark.parametrize("status", [400, 401, 403, 429, 500, 503])
def test_connect_refused_with_the_handlers_status(status):
    assert connect_status(ok({"statusCode": status})) == status
    assert connect_status(ok({"statusCode": str(status)})) == status


@pytest.mark.parametrize("outcome", [CRASH, TIMEOUT, ok({"statusCode": "teapot"})])
def test_connect_crash_is_502(outcome):
    assert connect_status(outcome) == 502


@pytest.mark.parametrize("outcome, body", [
    (CRASH, '{"message": "Internal server error"}'),
    (THROTTLE, '{"message": "Internal server error"}'),
    (ok({"statusCode": 401}), ""),
])
def test_a_refused_handshake_says_internal_error_only_where_the_integration_failed(outcome,
                                                                                   body):
    assert connect_refusal_body(outcome) == body


def test_connect_throttled_is_500():
    """The Lambda API rejected the invocation: 500, where a function that failed gets 502."""
    assert connect_status(THROTTLE) == 500


@pytest.mark.parametrize("outcome", [CRASH, TIMEOUT, THROTTLE])
def test_errors_always_reach_the_sender(outcome):
    for has_route_response in (False, True):
        frame = json.loads(route_reply(outcome, has_route_response, "cid=", "req="))
        assert frame == {"message": "Internal server error", "connectionId": "cid=",
                         "requestId": "req="}


def test_one_way_routes_send_nothing_back():
    assert route_reply(ok({"statusCode": 200, "body": "pong"}), False, "c", "r") is None


def test_route_response_sends_the_body():
    assert route_reply(ok({"statusCode": 200, "body": '{"message":"pong"}'}), True, "c", "r") == (
        '{"message":"pong"}'
    )
    assert route_reply(ok({"statusCode": 400, "body": "empty"}), True, "c", "r") == "empty"
    assert route_reply(ok({"statusCode": 200}), True, "c", "r") is None
    assert route_reply(ok("plain"), True, "c", "r") == "plain"
