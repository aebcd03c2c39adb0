"""What a client sees of a Lambda integration's outcome.

AWS rules: $connect holds the upgrade until the integration returns; a non-2xx
statusCode refuses the handshake with that status. API Gateway treats invocation
and function errors alike as internal errors, with one difference of status
(Lambda Developer Guide, "Handling Lambda errors with an API Gateway API"): an
invocation the Lambda API rejects (a throttle) gives 500, a function that ran and
failed (or answered in the wrong format) 502. For messages, a route is one-way
unless it has a $default route response, in which case the function's ``body``
is sent back to the sender; any error, throttle or timeout always sends
``{"message": "Internal server error", ...}``.
"""

from __future__ import annotations

import json

from system.local.lambda_runtime.outcome import Outcome

INTERNAL_SERVER_ERROR = 500
BAD_GATEWAY = 502
INTERNAL_ERROR_BODY = '{"message": "Internal server error"}'


def connect_status(outcome: Outcome) -> int | None:
    """None accepts the handshake; otherwise the HTTP status that refuses it."""
    if outcome.rejected:
        return INTERNAL_SERVER_ERROR
    if outcome.failed:
        return BAD_GATEWAY
    result = outcome.result
    if not isinstance(result, dict) or "statusCode" not in result:
        return None
    try:
        status = int(result["statusCode"])
    except (TypeError, ValueError):
        return BAD_GATEWAY
    if 200 <= status < 300:
        return None
    return status if 100 <= status <= 599 else BAD_GATEWAY


def connect_refusal_body(outcome: Outcome) -> str:
    """The body of a refused handshake: API Gateway's internal error document where the
    invocation failed or was rejected; empty where the function chose the status."""
    return INTERNAL_ERROR_BODY if outcome.failed or outcome.rejected else ""


def internal_error_frame(connection_id: str, request_id: str) -> str:
    return json.dumps(
        {"message": "Internal server error", "connectionId": connection_id, "requestId": request_id}
    )


def forbidden_frame(connection_id: str, request_id: str) -> str:
    """Sent when no route matched and the API has no $default route."""
    return json.dumps({"message": "Forbidden", "connectionId": connection_id, "requestId": request_id})


def route_reply(
    outcome: Outcome, has_route_response: bool, connection_id: str, request_id: str
) -> str | None:
    """The frame the sender gets back for one message, if any."""
    if outcome.failed:
        return internal_error_frame(connection_id, request_id)
    if not has_route_response or outcome.result is None:
        return None
    result = outcome.result
    if isinstance(result, dict) and "statusCode" in result:
        body = result.get("body")
        if body is None:
            return None
        return body if isinstance(body, str) else json.dumps(body)
    return result if isinstance(result, str) else json.dumps(result)
