"""The authorizer rules (system/local/apigateway/authorizers.py), as values."""

from __future__ import annotations

import pytest

from system.local.apigateway.authorizers import (
    AUTHORIZER_FAILED,
    EXPLICIT_DENY,
    NOT_ALLOWED,
    UNAUTHORIZED,
    authorizer_event,
    decide,
    method_arn,
    missing_identity,
    policy_effect,
)
from system.local.lambda_runtime.outcome import Outcome, throttled
from system.routes import AuthorizerSpec

ARN = method_arn("eu-west-1", "abc123", "dev")


def statement(effect: str, resource, action="execute-api:Invoke") -> dict:
    return {"Effect": effect, "Action": action, "Resource": resource}


def allowed(answer) -> Outcome:
    return Outcome("r1", 12.4, result=answer)


def answer(*statements, **extra) -> dict:
    return {"principalId": "u1",
            "policyDocument": {"Version": "2012-10-17", "Statement": list(statements)}, **extra}


def test_the_method_arn_is_the_stages_connect_route():
    assert ARN == "arn:aws:execute-api:eu-west-1:000000000000:abc123/dev/$connect"


@pytest.mark.parametrize(("resource", "effect"), [
    (ARN, "Allow"),
    ("arn:aws:execute-api:eu-west-1:*:abc123/*", "Allow"),
    ("arn:aws:execute-api:*:*:*/dev/$conn?ct", "Allow"),
    ([ARN.replace("dev", "prod"), ARN], "Allow"),
    ("arn:aws:execute-api:eu-west-1:000000000000:abc123/dev/*/*", None),  # needs another /
    (ARN.upper(), None),  # resources match case-sensitively
])
def test_a_statement_matches_the_method_arn_with_iams_wildcards(resource, effect):
    assert policy_effect({"Statement": [statement("Allow", resource)]}, ARN) == effect


def test_an_explicit_deny_wins_and_actions_match_without_case():
    document = {"Statement": [statement("Allow", "*"), statement("Deny", ARN, "EXECUTE-API:*")]}
    assert policy_effect(document, ARN) == "Deny"
    assert policy_effect({"Statement": statement("Allow", ARN, ["s3:*", "*"])}, ARN) == "Allow"
    assert policy_effect({"Statement": [statement("Allow", ARN, "s3:GetObject")]}, ARN) is None


def test_missing_identity_sources_are_named_headers_without_case():
    spec = AuthorizerSpec("a", "F", ("route.request.header.X-Token",
                                     "route.request.querystring.user"))
    assert missing_identity(spec, [("x-token", "t")], "user=ann") is None
    assert missing_identity(spec, [("x-token", "")], "user=ann") == spec.identity_sources[0]
    assert missing_identity(spec, [("X-Token", "t")], "user=") == spec.identity_sources[1]
    assert missing_identity(AuthorizerSpec("none", "F", ()), [], "") is None


def test_the_authorizer_event_is_a_request_event_with_the_connects_request():
    connect = {"headers": {"Host": "h"}, "multiValueHeaders": {"Host": ["h"]},
               "queryStringParameters": {"t": "1"},
               "multiValueQueryStringParameters": {"t": ["1"]},
               "requestContext": {"routeKey": "$connect"}, "isBase64Encoded": False}
    event = authorizer_event(connect, ARN)
    assert event == {"type": "REQUEST", "methodArn": ARN, "headers": {"Host": "h"},
                     "multiValueHeaders": {"Host": ["h"]}, "queryStringParameters": {"t": "1"},
                     "multiValueQueryStringParameters": {"t": ["1"]}, "stageVariables": {},
                     "requestContext": {"routeKey": "$connect"}}


def test_allowed_the_context_reaches_events_as_strings():
    decision = decide(allowed(answer(statement("Allow", ARN),
                                     context={"n": 7, "ok": False, "s": "x"})), ARN)
    assert decision.refusal is None
    assert decision.authorizer == {"principalId": "u1", "integrationLatency": 12,
                                   "n": "7", "ok": "false", "s": "x"}


@pytest.mark.parametrize(("outcome", "refusal"), [
    (allowed(answer(statement("Deny", ARN))), EXPLICIT_DENY),
    (allowed(answer(statement("Allow", "arn:aws:execute-api:*:*:other/*"))), NOT_ALLOWED),
    (Outcome("r", 1.0, error={"errorType": "Exception", "errorMessage": "Unauthorized"}),
     UNAUTHORIZED),
    (Outcome("r", 1.0, error={"errorType": "ValueError", "errorMessage": "boom"}),
     AUTHORIZER_FAILED),
    (Outcome("r", 3000.0, error={"errorType": "TimedOut", "errorMessage": "timed out"}),
     AUTHORIZER_FAILED),
    (throttled("r"), AUTHORIZER_FAILED),
    (allowed({"policyDocument": {"Statement": []}}), AUTHORIZER_FAILED),  # no principalId
    (allowed(answer(statement("Allow", ARN), context={"a": {"b": 1}})), AUTHORIZER_FAILED),
    (allowed(answer(statement("Allow", ARN), context={"a": [1]})), AUTHORIZER_FAILED),
    (allowed("Allow"), AUTHORIZER_FAILED),
    (allowed(None), AUTHORIZER_FAILED),
])
def test_refusals_have_api_gateways_statuses(outcome, refusal):
    decision = decide(outcome, ARN)
    assert (decision.authorizer, decision.refusal) == (None, refusal)
    assert decision.why
