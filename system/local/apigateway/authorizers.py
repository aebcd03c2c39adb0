"""Lambda REQUEST authorizers on $connect, as API Gateway runs them: values in, decisions out.

AWS rules (API Gateway Developer Guide: "Control access to WebSocket APIs with AWS
Lambda REQUEST authorizers", "Output from an API Gateway Lambda authorizer"):
- A request missing one of the identity sources (a header or query-string parameter
  absent or empty) is refused with 401 and the authorizer is not invoked.
- The authorizer gets ``type`` REQUEST, ``methodArn``
  (``arn:aws:execute-api:{region}:{account}:{api-id}/{stage}/$connect``), the headers and
  query string as $connect gets them, ``stageVariables`` and the ``requestContext``.
- Its answer holds ``principalId`` and a ``policyDocument``; statements match the
  methodArn with IAM's wildcards (``*`` any run of characters, ``?`` one). An explicit
  Deny wins; no Allow is a deny too: 403. A function error whose message is
  "Unauthorized" is 401; any other error, a timeout, or an answer of the wrong shape
  (no principalId, a ``context`` that is not flat strings, numbers and booleans) is 500.
- Allowed, ``principalId``, ``integrationLatency`` and the ``context`` entries (as
  strings) reach every later event of the connection as ``requestContext.authorizer``.
The refusal bodies are REST APIs' (the WebSocket handshake's are not documented).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from urllib.parse import parse_qsl

from system.local.apigateway.handshake import Refusal
from system.local.lambda_runtime.outcome import Outcome
from system.routes import AuthorizerSpec, identity_source_name

ACCOUNT_ID = "000000000000"  # the local stack's account, as in its Lambda ARNs
INVOKE_ACTION = "execute-api:Invoke"


UNAUTHORIZED = Refusal(401, '{"message":"Unauthorized"}')
EXPLICIT_DENY = Refusal(
    403, '{"Message":"User is not authorized to access this resource with an explicit deny"}')
NOT_ALLOWED = Refusal(403, '{"Message":"User is not authorized to access this resource"}')
AUTHORIZER_FAILED = Refusal(500, '{"message":null}')


def method_arn(region: str, api_id: str, stage: str) -> str:
    return f"arn:aws:execute-api:{region}:{ACCOUNT_ID}:{api_id}/{stage}/$connect"


def missing_identity(authorizer: AuthorizerSpec, headers: list[tuple[str, str]],
                     query: str) -> str | None:
    """The first identity source the request lacks (absent or empty), or None."""
    header_values = {name.lower(): value for name, value in headers}
    query_values = dict(parse_qsl(query, keep_blank_values=True))
    for source in authorizer.identity_sources:
        where, name = identity_source_name(source)
        value = header_values.get(name.lower()) if where == "header" else query_values.get(name)
        if not value:
            return source
    return None


def authorizer_event(connect_event: dict, arn: str) -> dict:
    """The authorizer's event: what $connect will get, as a REQUEST authorizer sees it."""
    return {"type": "REQUEST", "methodArn": arn,
            **{key: connect_event[key] for key in (
                "headers", "multiValueHeaders", "queryStringParameters",
                "multiValueQueryStringParameters") if key in connect_event},
            "stageVariables": {}, "requestContext": dict(connect_event["requestContext"])}


def _matches(patterns, value: str, *, ignore_case: bool = False) -> bool:
    """IAM's wildcard match of ``value`` against a pattern or a list of them."""
    flags = re.IGNORECASE if ignore_case else 0
    for pattern in [patterns] if isinstance(patterns, str) else patterns:
        regex = re.escape(str(pattern)).replace(r"\*", ".*").replace(r"\?", ".")
        if re.fullmatch(regex, value, flags):
            return True
    return False


def policy_effect(document: dict, arn: str) -> str | None:
    """'Deny' if a statement denies ``arn``, else 'Allow' if one allows it, else None."""
    statements = document["Statement"]
    effects = {
        statement["Effect"] for statement in ([statements] if isinstance(statements, dict)
                                              else statements)
        if _matches(statement.get("Action", []), INVOKE_ACTION, ignore_case=True)
        and _matches(statement.get("Resource", []), arn)
    }
    return "Deny" if "Deny" in effects else "Allow" if "Allow" in effects else None


def _context_value(value) -> str:
    if isinstance(value, bool):
        return json.dumps(value)
    if isinstance(value, int | float | str):
        return str(value)
    raise TypeError(f"context values must be strings, numbers or booleans, not {value!r}")


@dataclass(frozen=True)
class Decision:
    """An authorizer's verdict: ``authorizer`` (requestContext.authorizer) if allowed,
    else the ``refusal``; ``why`` says it in a log line."""

    authorizer: dict | None
    refusal: Refusal | None
    why: str


def decide(outcome: Outcome, arn: str) -> Decision:
    if outcome.failed:
        message = outcome.error.get("errorMessage")
        if not outcome.rejected and message == "Unauthorized":
            return Decision(None, UNAUTHORIZED, "the authorizer raised Unauthorized")
        return Decision(None, AUTHORIZER_FAILED, f"the authorizer failed: {message}")
    answer = outcome.result
    try:
        principal = answer["principalId"]
        effect = policy_effect(answer["policyDocument"], arn)
        context = {str(key): _context_value(value)
                   for key, value in (answer.get("context") or {}).items()}
    except (KeyError, TypeError, AttributeError) as error:
        return Decision(None, AUTHORIZER_FAILED, f"the authorizer's answer is malformed: {error}")
    if effect == "Deny":
        return Decision(None, EXPLICIT_DENY, f"the policy denies {principal}")
    if effect is None:
        return Decision(None, NOT_ALLOWED, f"the policy allows {principal} nothing here")
    return Decision({"principalId": str(principal),
                     "integrationLatency": round(outcome.duration_ms), **context},
                    None, f"allowed {principal}")
