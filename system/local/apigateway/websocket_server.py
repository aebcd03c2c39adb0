"""The data plane: a ``websockets`` server that runs each connection as API Gateway does.

It only moves data: what an event holds, which route a body selects, which
status or frame a client gets, and what @connections answers all come from the
pure modules beside it.
"""

from __future__ import annotations

import asyncio
import http
import logging
import time
from pathlib import Path

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.frames import CloseCode
from websockets.http11 import Request, Response

from system.local.apigateway.connections import Connection, ConnectionRegistry
from system.local.apigateway.events import (
    Api,
    connect_event,
    disconnect_event,
    message_event,
    new_request_id,
)
from system.local.apigateway.handshake import handshake_refusal
from system.local.apigateway.integration import connect_status, forbidden_frame, route_reply
from system.local.apigateway.limits import (
    INTEGRATION_TIMEOUT_SECONDS,
    ApiLimits,
    ConnectRateLimiter,
)
from system.local.apigateway.routing import CONNECT_ROUTE, DISCONNECT_ROUTE, route_for
from system.local.faults import Faults
from system.local.lambda_runtime.outcome import Outcome
from system.local.lambda_runtime.pool import LambdaRuntime
from system.local.routes import RouteTable

log = logging.getLogger("chat_harness.apigateway")

WEB_CLIENT = Path(__file__).resolve().parent.parent / "web" / "index.html"
# Where a close was not a clean one, the reason is worth a line in the log.
_BAD_INPUT_CODES = {
    CloseCode.UNSUPPORTED_DATA: "binary frame",
    CloseCode.INVALID_DATA: "invalid UTF-8",
    CloseCode.MESSAGE_TOO_BIG: "message or frame over the size limit",
    CloseCode.PROTOCOL_ERROR: "WebSocket protocol error",
}


def _now_ms() -> int:
    return int(time.time() * 1000)


class WebSocketApi:
    """One emulated WebSocket API stage: its connections, routes and integrations."""

    def __init__(self, api: Api, routes: RouteTable, runtime: LambdaRuntime,
                 limits: ApiLimits, faults: Faults) -> None:
        self.api = api
        self.faults = faults
        self.routes = routes
        self.runtime = runtime
        self.limits = limits
        self.registry = ConnectionRegistry()
        self.sockets: dict[str, ServerConnection] = {}
        self._rate = ConnectRateLimiter(limits.new_connections_per_s, time.monotonic())
        self._tasks: set[asyncio.Task] = set()
        self._server: Server | None = None
        self._stopping = False

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self, host: str, port: int) -> int:
        self._server = await serve(
            self._serve_connection,
            host,
            port,
            process_request=self._handshake,
            compression=None,
            ping_interval=None,
            close_timeout=2,
            # The upgrade waits for $connect, which may run up to the integration timeout.
            open_timeout=INTEGRATION_TIMEOUT_SECONDS + 10,
            max_size=(self.limits.message_bytes, self.limits.frame_bytes),
            max_queue=64,
            write_limit=2**20,
            server_header="chat-harness",
        )
        return self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Close every connection (1001). $disconnect is not run for them: the stack
        is going away, and N leave notices to N clients would only delay Ctrl-C."""
        self._stopping = True
        if self._server is not None:
            self._server.close(close_connections=True)
            await self._server.wait_closed()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def _spawn(self, coroutine) -> None:
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- $connect: the upgrade is held until the integration returns ------------------------

    async def _handshake(self, ws: ServerConnection, request: Request) -> Response | None:
        path, _, query = request.path.partition("?")
        upgrade = request.headers.get("Upgrade")
        if path == "/" and upgrade is None:
            page = WEB_CLIENT.read_text(encoding="utf-8").replace("__STAGE__", self.api.stage)
            return _html_response(ws, page.encode())
        refusal = handshake_refusal(path, upgrade, self.api.stage,
                                    upgrade is None or self._rate.allow(time.monotonic()))
        if refusal is not None:
            log.warning("refused handshake for %s: %s %s", path, refusal.status, refusal.body)
            return ws.respond(refusal.status, refusal.body)
        connection = self.registry.begin(
            ws.remote_address[0], request.headers.get("User-Agent"), _now_ms()
        )
        ws.chat_connection = connection
        accepted = False
        try:
            refusal = await self._run_connect(ws, connection, request, query)
            accepted = refusal is None
            return refusal
        finally:
            if accepted:
                self._spawn(self._after_close(ws, connection))
            else:
                self.registry.close(connection.connection_id)

    async def _run_connect(self, ws: ServerConnection, connection: Connection, request: Request,
                           query: str) -> Response | None:
        """Invoke $connect, if routed: None accepts, else the response that refuses."""
        function = self.routes.function_for(CONNECT_ROUTE)
        if function is None:
            return None
        event = connect_event(self.api, connection, request.headers.raw_items(), query, _now_ms())
        try:
            async with asyncio.timeout(INTEGRATION_TIMEOUT_SECONDS):
                outcome = await self._invoke(CONNECT_ROUTE, function, event)
        except TimeoutError:
            log.warning("$connect for %s passed the %s s integration timeout",
                        connection.connection_id, INTEGRATION_TIMEOUT_SECONDS)
            return ws.respond(http.HTTPStatus.GATEWAY_TIMEOUT,
                              '{"message":"Endpoint request timed out"}')
        status = connect_status(outcome)
        if status is None:
            return None
        log.info("$connect refused %s with %s", connection.connection_id, status)
        return ws.respond(status, "")

    # -- an open connection ----------------------------------------------------------------

    async def _serve_connection(self, ws: ServerConnection) -> None:
        connection: Connection = ws.chat_connection
        if self.registry.open(connection.connection_id):
            self.sockets[connection.connection_id] = ws
            await self._receive(ws, connection)

    async def _after_close(self, ws: ServerConnection, connection: Connection) -> None:
        """Once $connect has accepted, $disconnect follows when the socket is gone: closed,
        dropped, or never opened because the client left during $connect."""
        await ws.wait_closed()
        connection_id = connection.connection_id
        self.sockets.pop(connection_id, None)
        self.registry.close(connection_id)
        status, reason = _disconnect_status(ws)
        if status in _BAD_INPUT_CODES:
            log.warning("closed %s with %s: %s", connection_id, status, _BAD_INPUT_CODES[status])
        function = self.routes.function_for(DISCONNECT_ROUTE)
        if function is None or self._stopping or self.faults.disconnect_suppressed():
            return
        event = disconnect_event(self.api, connection, status, reason, _now_ms())
        await self._invoke(DISCONNECT_ROUTE, function, event)

    async def _invoke(self, route_key: str, function: str, event: dict) -> Outcome:
        """Invoke a route's function, unless an armed fault makes it fail first."""
        if self.faults.handler_error(route_key):
            return Outcome(event["requestContext"]["requestId"], 0.0, error={
                "errorType": "InjectedFault", "errorMessage": f"injected failure of {route_key}"})
        return await self.runtime.invoke(function, event)

    async def _receive(self, ws: ServerConnection, connection: Connection) -> None:
        """Read messages until the client leaves or a quota (idle, duration) ends it."""
        max_end = connection.connected_at_ms / 1000 + self.limits.max_duration_s
        while True:
            idle_end = connection.last_active_at_ms / 1000 + self.limits.idle_timeout_s
            remaining = min(idle_end, max_end) - time.time()
            if remaining <= 0:
                await ws.close(CloseCode.GOING_AWAY, "Going away")
                return
            try:
                message = await asyncio.wait_for(ws.recv(), remaining)
            except TimeoutError:
                continue
            except ConnectionClosed:
                return
            if isinstance(message, bytes):
                await ws.close(CloseCode.UNSUPPORTED_DATA, "Binary frames are not supported")
                return
            self.registry.touch(connection.connection_id, _now_ms())
            self._dispatch(ws, connection, message)

    def _dispatch(self, ws: ServerConnection, connection: Connection, body: str) -> None:
        route_key = route_for(body, self.routes.routes.keys(), self.routes.selection_path)
        if route_key is None:
            log.info("no route for a message from %s and no $default", connection.connection_id)
            self._spawn(_send(ws, forbidden_frame(connection.connection_id, new_request_id())))
            return
        self._spawn(self._integrate(ws, connection, route_key, body))

    async def _integrate(self, ws: ServerConnection, connection: Connection, route_key: str,
                         body: str) -> None:
        route = self.routes.routes[route_key]
        event = message_event(self.api, connection, route_key, body, _now_ms())
        outcome = await self._invoke(route_key, route.function, event)
        frame = route_reply(outcome, route.route_response, connection.connection_id,
                            event["requestContext"]["requestId"])
        if frame is not None:
            await _send(ws, frame)

    # -- what @connections does to a socket ------------------------------------------------

    async def deliver(self, connection_id: str, data: bytes) -> bool:
        """Send a management POST's data as one message; False if the socket is gone."""
        ws = self.sockets.get(connection_id)
        if ws is None:
            return False
        self.registry.touch(connection_id, _now_ms())  # messages either way keep it from idling
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            return await _send(ws, data)
        return await _send(ws, text)

    def close(self, connection_id: str) -> None:
        """DELETE @connections/{id}: the client sees a normal close (1000)."""
        ws = self.sockets.get(connection_id)
        if ws is not None:
            self._spawn(ws.close(CloseCode.NORMAL_CLOSURE, ""))

    def drop(self, connection_id: str) -> bool:
        """Fault injection: lose the connection without a close frame, as a network does."""
        ws = self.sockets.get(connection_id)
        if ws is None:
            return False
        ws.transport.abort()
        return True


async def _send(ws: ServerConnection, frame: str | bytes) -> bool:
    try:
        await ws.send(frame)
        return True
    except ConnectionClosed:
        return False


def _disconnect_status(ws: ServerConnection) -> tuple[int, str]:
    """disconnectStatusCode/Reason: the client's close code (1005 when it sent none),
    else the one the server sent, else 1006 for a connection that just dropped."""
    protocol = ws.protocol
    if protocol.close_rcvd is not None:
        return int(protocol.close_rcvd.code), protocol.close_rcvd.reason
    if protocol.close_sent is not None:
        return int(protocol.close_sent.code), protocol.close_sent.reason
    return int(CloseCode.ABNORMAL_CLOSURE), "Connection dropped without a close frame"


def _html_response(ws: ServerConnection, body: bytes) -> Response:
    response = ws.respond(http.HTTPStatus.OK, "")
    headers = Headers([(k, v) for k, v in response.headers.raw_items()
                       if k.lower() not in {"content-type", "content-length"}])
    headers["Content-Type"] = "text/html; charset=utf-8"
    headers["Content-Length"] = str(len(body))
    return Response(response.status_code, response.reason_phrase, headers, body)
