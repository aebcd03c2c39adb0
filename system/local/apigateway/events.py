"""The Lambda proxy events API Gateway sends for $connect, messages and $disconnect.

Shapes follow AWS: ``requestContext`` carries routeKey, eventType, connectionId,
domainName, stage, apiId, connectedAt (milliseconds, fixed for the connection's
life), requestTimeEpoch, requestTime, requestId, extendedRequestId,
messageDirection and identity.sourceIp (and ``authorizer``, what an authorizer allowed
the connection with, on every event after it); only MESSAGE events have messageId;
DISCONNECT events have disconnectStatusCode and disconnectReason; CONNECT events
have headers, multiValueHeaders and queryStringParameters; MESSAGE events have
the body as a string and isBase64Encoded.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import parse_qsl

from system.local.apigateway.connections import Connection
from system.local.apigateway.ids import new_message_id, new_request_id


def request_time(epoch_ms: int) -> str:
    """CLF-style time, as in requestContext.requestTime: '26/Nov/2026:10:00:00 +0000'."""
    return time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(epoch_ms / 1000))


@dataclass(frozen=True)
class Api:
    """What identifies the emulated API in every event."""

    api_id: str
    stage: str
    domain_name: str
    region: str = "us-east-1"


def _request_context(
    api: Api, connection: Connection, route_key: str, event_type: str, now_ms: int
) -> dict:
    request_id = new_request_id()
    context = {
        "routeKey": route_key,
        "eventType": event_type,
        "extendedRequestId": request_id,
        "requestTime": request_time(now_ms),
        "messageDirection": "IN",
        "stage": api.stage,
        "connectedAt": connection.connected_at_ms,
        "requestTimeEpoch": now_ms,
        "identity": {"sourceIp": connection.source_ip, "userAgent": connection.user_agent},
        "requestId": request_id,
        "domainName": api.domain_name,
        "connectionId": connection.connection_id,
        "apiId": api.api_id,
    }
    if connection.authorizer is not None:
        context["authorizer"] = connection.authorizer
    return context


def connect_event(
    api: Api, connection: Connection, headers: Iterable[tuple[str, str]], query: str, now_ms: int
) -> dict:
    multi: dict[str, list[str]] = {}
    for name, value in headers:
        multi.setdefault(name, []).append(value)
    query_pairs = parse_qsl(query, keep_blank_values=True)
    multi_query: dict[str, list[str]] = {}
    for name, value in query_pairs:
        multi_query.setdefault(name, []).append(value)
    event = {
        "headers": {name: ",".join(values) for name, values in multi.items()},
        "multiValueHeaders": multi,
        "requestContext": _request_context(api, connection, "$connect", "CONNECT", now_ms),
        "isBase64Encoded": False,
    }
    if query_pairs:
        event["queryStringParameters"] = {name: values[-1] for name, values in multi_query.items()}
        event["multiValueQueryStringParameters"] = multi_query
    return event


def message_event(api: Api, connection: Connection, route_key: str, body: str, now_ms: int) -> dict:
    context = _request_context(api, connection, route_key, "MESSAGE", now_ms)
    context["messageId"] = new_message_id()
    return {"requestContext": context, "body": body, "isBase64Encoded": False}


def disconnect_event(
    api: Api, connection: Connection, status_code: int, reason: str, now_ms: int
) -> dict:
    context = _request_context(api, connection, "$disconnect", "DISCONNECT", now_ms)
    context["disconnectStatusCode"] = status_code
    context["disconnectReason"] = reason
    return {
        "headers": {"Host": api.domain_name},
        "multiValueHeaders": {"Host": [api.domain_name]},
        "requestContext": context,
        "isBase64Encoded": False,
    }
