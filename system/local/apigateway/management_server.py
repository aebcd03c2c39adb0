"""The @connections management API over HTTPS (aiohttp), as boto3's
``apigatewaymanagementapi`` client calls it: ``{POST,GET,DELETE}
/{stage}/@connections/{connectionId}``, SigV4-signed with the stack's own credentials
(checked by ``signatures.signature_refusal``; anything else is refused 403 as AWS
refuses it).

Answers come from ``ConnectionRegistry`` (through ``WebSocketApi``, which owns
the sockets); this module only parses requests and renders responses, with
AWS's ``x-amzn-ErrorType`` header so that boto3 raises ``GoneException``,
``PayloadTooLargeException`` and ``ForbiddenException``.

Under ``/@harness/`` the same server offers the harness's control API (local
stacks only): ``faults`` (GET, POST, DELETE), ``drop/{connectionId}`` (POST),
``connections/{connectionId}`` (GET: its state and posts delivered) and ``activity``
(GET: the work still to finish, that a run waits for before reading the logs), for
loopback clients only, wherever the server listens, and only to requests carrying the
stack's control token as ``Authorization: Bearer <token>``.

With the AWS latency model on (``system.local.aws_latency``), every @connections call
(POST, GET, DELETE) that passes the signature check waits a ``post_to_connection`` delay
before it is answered, as the Lambda making it would wait in AWS; the control API waits
nothing.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
import ssl
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from aiohttp import web

from system.apigateway_quotas import MANAGEMENT_PAYLOAD_BYTES
from system.local.apigateway.connections import Answer, payload_refusal
from system.local.apigateway.signatures import SignedRequest, signature_refusal
from system.local.apigateway.websocket_server import WebSocketApi
from system.local.aws_latency import AWS_LATENCY_OFF, AwsLatency
from system.local.faults import POST_FAILURES, FaultError, fault_document

log = logging.getLogger("chat_harness.apigateway")

_API_KEY = web.AppKey("api", WebSocketApi)
_SECRET_KEYS = web.AppKey("secret_keys", Mapping)
_CONTROL_TOKEN = web.AppKey("control_token", str)
_LATENCY = web.AppKey("latency", AwsLatency)


def _render(answer: Answer) -> web.Response:
    headers = {"x-amzn-RequestId": str(uuid.uuid4())}
    if answer.error_type:
        headers["x-amzn-ErrorType"] = answer.error_type
    if answer.body is None:
        return web.Response(status=answer.status, headers=headers)
    return web.Response(status=answer.status, headers=headers, text=json.dumps(answer.body),
                        content_type="application/json")


CONTROL_PREFIX = "/@harness/"
CONTROL_TOKEN_REQUIRED = ("the control endpoint needs the stack file's control_token, "
                          "sent as 'Authorization: Bearer <control_token>'")


async def _signature_refusal(request: web.Request) -> Answer | None:
    if (request.content_length or 0) > request.client_max_size:
        # A body this server does not read cannot be verified; it is over 128 KB anyway.
        return payload_refusal(request.content_length)
    signed = SignedRequest(request.method, f"https://{request.host}{request.raw_path}",
                           request.headers, await request.read())
    return signature_refusal(signed, request.app[_SECRET_KEYS], datetime.now(UTC))


def _has_control_token(request: web.Request) -> bool:
    presented = request.headers.get("Authorization", "").encode(errors="replace")
    return hmac.compare_digest(presented, f"Bearer {request.app[_CONTROL_TOKEN]}".encode())


@web.middleware
async def _authenticated(request: web.Request, handler):
    """@connections serves only requests signed with the stack's credentials, as AWS's
    IAM authorisation does; the harness's own control API only those with its token."""
    if request.path.startswith(CONTROL_PREFIX):
        if not _has_control_token(request):
            log.warning("refused control %s %s from %s: no or wrong control token",
                        request.method, request.path, request.remote)
            return web.json_response({"message": CONTROL_TOKEN_REQUIRED}, status=403)
    elif (refusal := await _signature_refusal(request)) is not None:
        log.warning("refused @connections %s %s from %s: %s", request.method, request.path,
                    request.remote, refusal.error_type)
        return _render(refusal)
    return await handler(request)


def _stage_matches(request: web.Request) -> Answer | None:
    api = request.app[_API_KEY]
    if request.match_info["stage"] != api.api.stage:
        return Answer.error(403, "ForbiddenException", "Forbidden")
    return None


async def _post(request: web.Request) -> web.Response:
    await request.app[_LATENCY].wait("post_to_connection")
    if (wrong := _stage_matches(request)) is not None:
        return _render(wrong)
    api = request.app[_API_KEY]
    connection_id = request.match_info["connection_id"]
    if (status := api.faults.post_failure()) is not None:
        return _render(Answer.error(status, POST_FAILURES[status], "injected fault"))
    if (too_large := payload_refusal(request.content_length or 0)) is not None:
        answer = too_large
    else:
        answer = await api.post(connection_id, await request.read())
    if answer.status not in (200, 410):
        log.warning("@connections POST %s: %s %s", connection_id, answer.status, answer.error_type)
    return _render(answer)


async def _get(request: web.Request) -> web.Response:
    await request.app[_LATENCY].wait("post_to_connection")
    if (wrong := _stage_matches(request)) is not None:
        return _render(wrong)
    return _render(request.app[_API_KEY].describe(request.match_info["connection_id"]))


async def _delete(request: web.Request) -> web.Response:
    await request.app[_LATENCY].wait("post_to_connection")
    if (wrong := _stage_matches(request)) is not None:
        return _render(wrong)
    return _render(request.app[_API_KEY].delete(request.match_info["connection_id"]))


def _refused_unless_loopback(request: web.Request) -> web.Response | None:
    """403 for a control request from anywhere but this machine's loopback: a stack on a
    network address exposes its chat, not its faults."""
    try:
        address = ipaddress.ip_address(request.remote or "")
    except ValueError:
        address = None
    if address is not None and (getattr(address, "ipv4_mapped", None) or address).is_loopback:
        return None
    log.warning("refused control request %s %s from %s", request.method, request.path,
                request.remote)
    return web.json_response({"message": "the control API answers loopback clients only"},
                             status=403)


async def _faults(request: web.Request) -> web.Response:
    """GET the armed faults, POST JSON to arm more, DELETE to clear them all."""
    if (refused := _refused_unless_loopback(request)) is not None:
        return refused
    faults = request.app[_API_KEY].faults
    if request.method == "POST":
        try:
            faults.arm(fault_document(await request.read()))
        except FaultError as error:
            return web.json_response({"message": f"bad fault request: {error}"}, status=400)
        log.info("faults armed: %s", faults.state())
    elif request.method == "DELETE":
        faults.clear()
    return web.json_response(faults.state())


async def _drop(request: web.Request) -> web.Response:
    if (refused := _refused_unless_loopback(request)) is not None:
        return refused
    if request.app[_API_KEY].drop(request.match_info["connection_id"]):
        return web.Response(status=204)
    return web.json_response({"message": "no such open connection"}, status=404)


async def _connection_state(request: web.Request) -> web.Response:
    """What the stack knows of a connection that @connections GET does not say: its state
    and how many posts went out to it (a benchmark tells "never sent" from "not read")."""
    if (refused := _refused_unless_loopback(request)) is not None:
        return refused
    connection = request.app[_API_KEY].registry.get(request.match_info["connection_id"])
    if connection is None:
        return web.json_response({"message": "no such connection (closed, or never was)"},
                                 status=404)
    return web.json_response({"state": connection.state.name,
                              "posts_delivered": connection.posts_delivered})


async def _activity(request: web.Request) -> web.Response:
    """``?connected_since_ms=N``: how many connections made since N are open or await
    their $disconnect, and how many invocations run or wait to (a run's logs are complete
    once both are 0)."""
    if (refused := _refused_unless_loopback(request)) is not None:
        return refused
    try:
        since_ms = int(request.query.get("connected_since_ms", "0"))
    except ValueError:
        return web.json_response({"message": "connected_since_ms must be an integer (epoch "
                                             "milliseconds)"}, status=400)
    api = request.app[_API_KEY]
    return web.json_response({"connections": api.unfinished_connections(since_ms),
                              "invocations": api.runtime.unfinished_invocations()})


async def _unknown_path(request: web.Request) -> web.Response:
    return _render(Answer.error(403, "ForbiddenException", "Forbidden"))


def management_app(api: WebSocketApi, secret_keys: Mapping[str, str], control_token: str, *,
                   latency: AwsLatency = AWS_LATENCY_OFF) -> web.Application:
    """``secret_keys``: access key id -> secret access key, the credentials @connections
    accepts signatures of; ``control_token``: what the control API takes; ``latency``: the
    AWS latency model the @connections calls wait on (off by default)."""
    # Bodies over the 128 KB limit must reach _post to be answered 413 as AWS does.
    app = web.Application(middlewares=[_authenticated],
                          client_max_size=4 * MANAGEMENT_PAYLOAD_BYTES)
    app[_API_KEY] = api
    app[_SECRET_KEYS] = secret_keys
    app[_CONTROL_TOKEN] = control_token
    app[_LATENCY] = latency
    path = "/{stage}/@connections/{connection_id}"
    app.router.add_post(path, _post)
    app.router.add_get(path, _get, allow_head=False)
    app.router.add_delete(path, _delete)
    app.router.add_route("*", CONTROL_PREFIX + "faults", _faults)
    app.router.add_post(CONTROL_PREFIX + "drop/{connection_id}", _drop)
    app.router.add_get(CONTROL_PREFIX + "connections/{connection_id}", _connection_state,
                       allow_head=False)
    app.router.add_get(CONTROL_PREFIX + "activity", _activity, allow_head=False)
    app.router.add_route("*", "/{tail:.*}", _unknown_path)
    return app


class ManagementServer:
    """Serves ``management_app`` over TLS (or plain HTTP without a context)."""

    def __init__(self, api: WebSocketApi, tls: ssl.SSLContext | None,
                 secret_keys: Mapping[str, str], control_token: str, *,
                 latency: AwsLatency = AWS_LATENCY_OFF) -> None:
        self._runner = web.AppRunner(
            management_app(api, secret_keys, control_token, latency=latency),
            access_log=None, handle_signals=False)
        self._tls = tls

    async def start(self, hosts: Sequence[str], port: int) -> int:
        """Listen on each of ``hosts`` at one port (the first's choice where ``port`` is 0)."""
        await self._runner.setup()
        for host in hosts:
            site = web.TCPSite(self._runner, host, port, ssl_context=self._tls, backlog=1024)
            await site.start()
            port = self._runner.addresses[0][1]
        return port

    async def stop(self) -> None:
        await self._runner.cleanup()
