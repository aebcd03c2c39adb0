"""The @connections management API over HTTPS (aiohttp), as boto3's
``apigatewaymanagementapi`` client calls it: ``{POST,GET,DELETE}
/{stage}/@connections/{connectionId}``, SigV4-signed.

Answers come from ``ConnectionRegistry`` (through ``WebSocketApi``, which owns
the sockets); this module only parses requests and renders responses, with
AWS's ``x-amzn-ErrorType`` header so that boto3 raises ``GoneException``,
``PayloadTooLargeException`` and ``ForbiddenException``.

Under ``/@harness/`` the same server offers the harness's control API (local
stacks only): ``faults`` (GET, POST, DELETE) and ``drop/{connectionId}`` (POST).
"""

from __future__ import annotations

import json
import logging
import ssl
import uuid

from aiohttp import web

from system.apigateway_quotas import MANAGEMENT_PAYLOAD_BYTES
from system.local.apigateway.connections import Answer, authorize, payload_refusal
from system.local.apigateway.websocket_server import WebSocketApi
from system.local.faults import POST_FAILURES, FaultError

log = logging.getLogger("chat_harness.apigateway")

_API_KEY = web.AppKey("api", WebSocketApi)


def _render(answer: Answer) -> web.Response:
    headers = {"x-amzn-RequestId": str(uuid.uuid4())}
    if answer.error_type:
        headers["x-amzn-ErrorType"] = answer.error_type
    if answer.body is None:
        return web.Response(status=answer.status, headers=headers)
    return web.Response(status=answer.status, headers=headers, text=json.dumps(answer.body),
                        content_type="application/json")


CONTROL_PREFIX = "/@harness/"


@web.middleware
async def _signed_only(request: web.Request, handler):
    if request.path.startswith(CONTROL_PREFIX):  # the harness's own API, not AWS's
        return await handler(request)
    refusal = authorize(request.headers.get("Authorization"))
    if refusal is not None:
        log.warning("refused unsigned @connections %s %s from %s", request.method,
                    request.path, request.remote)
        return _render(refusal)
    return await handler(request)


def _stage_matches(request: web.Request) -> Answer | None:
    api = request.app[_API_KEY]
    if request.match_info["stage"] != api.api.stage:
        return Answer.error(403, "ForbiddenException", "Forbidden")
    return None


async def _post(request: web.Request) -> web.Response:
    if (wrong := _stage_matches(request)) is not None:
        return _render(wrong)
    api = request.app[_API_KEY]
    connection_id = request.match_info["connection_id"]
    if (status := api.faults.post_failure()) is not None:
        return _render(Answer.error(status, POST_FAILURES[status], "injected fault"))
    if (too_large := payload_refusal(request.content_length or 0)) is not None:
        answer = too_large  # without reading the body
    else:
        answer = await api.post(connection_id, await request.read())
    if answer.status not in (200, 410):
        log.warning("@connections POST %s: %s %s", connection_id, answer.status, answer.error_type)
    return _render(answer)


async def _get(request: web.Request) -> web.Response:
    if (wrong := _stage_matches(request)) is not None:
        return _render(wrong)
    return _render(request.app[_API_KEY].describe(request.match_info["connection_id"]))


async def _delete(request: web.Request) -> web.Response:
    if (wrong := _stage_matches(request)) is not None:
        return _render(wrong)
    return _render(request.app[_API_KEY].delete(request.match_info["connection_id"]))


async def _faults(request: web.Request) -> web.Response:
    """GET the armed faults, POST JSON to arm more, DELETE to clear them all."""
    faults = request.app[_API_KEY].faults
    if request.method == "POST":
        try:
            faults.arm(await request.json())
        except (FaultError, ValueError, AttributeError) as error:
            return web.json_response({"message": f"bad fault request: {error}"}, status=400)
        log.info("faults armed: %s", faults.state())
    elif request.method == "DELETE":
        faults.clear()
    return web.json_response(faults.state())


async def _drop(request: web.Request) -> web.Response:
    if request.app[_API_KEY].drop(request.match_info["connection_id"]):
        return web.Response(status=204)
    return web.json_response({"message": "no such open connection"}, status=404)


async def _unknown_path(request: web.Request) -> web.Response:
    return _render(Answer.error(403, "ForbiddenException", "Forbidden"))


def management_app(api: WebSocketApi) -> web.Application:
    # Bodies over the 128 KB limit must reach _post to be answered 413 as AWS does.
    app = web.Application(middlewares=[_signed_only], client_max_size=4 * MANAGEMENT_PAYLOAD_BYTES)
    app[_API_KEY] = api
    path = "/{stage}/@connections/{connection_id}"
    app.router.add_post(path, _post)
    app.router.add_get(path, _get, allow_head=False)
    app.router.add_delete(path, _delete)
    app.router.add_route("*", CONTROL_PREFIX + "faults", _faults)
    app.router.add_post(CONTROL_PREFIX + "drop/{connection_id}", _drop)
    app.router.add_route("*", "/{tail:.*}", _unknown_path)
    return app


class ManagementServer:
    """Serves ``management_app`` on 127.0.0.1 over TLS (or plain HTTP without a context)."""

    def __init__(self, api: WebSocketApi, tls: ssl.SSLContext | None) -> None:
        self._runner = web.AppRunner(management_app(api), access_log=None, handle_signals=False)
        self._tls = tls

    async def start(self, host: str, port: int) -> int:
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port, ssl_context=self._tls, backlog=1024)
        await site.start()
        return self._runner.addresses[0][1]

    async def stop(self) -> None:
        await self._runner.cleanup()
