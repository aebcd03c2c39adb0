"""The data plane: a ``websockets`` server that runs each connection as API Gateway does.

It only moves data: what an event holds, which route a body selects, which
status or frame a client gets, when a quota closes a connection and with what,
what $disconnect reports, and what @connections answers all come from the pure
modules beside it.
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
from websockets.frames import Close as CloseFrame
from websockets.http11 import Request, Response
from websockets.protocol import State as SocketState

from system.apigateway_quotas import INTEGRATION_TIMEOUT_SECONDS
from system.local.apigateway.authorizers import (
    UNAUTHORIZED,
    authorizer_event,
    decide,
    method_arn,
    missing_identity,
)
from system.local.apigateway.closes import (
    BINARY_REFUSED,
    DELETED,
    Close,
    bad_input,
    disconnect_status,
)
from system.local.apigateway.connections import Answer, Connection, ConnectionRegistry
from system.local.apigateway.events import Api, connect_event, disconnect_event, message_event
from system.local.apigateway.handshake import Refusal, handshake_refusal
from system.local.apigateway.ids import new_request_id
from system.local.apigateway.integration import (
    connect_refusal_body,
    connect_status,
    forbidden_frame,
    route_reply,
)
from system.local.apigateway.limits import (
    OUTBOUND_BUFFER_BYTES,
    ApiLimits,
    ConnectRateLimiter,
    close_deadline,
)
from system.local.apigateway.routing import (
    CONNECT_ROUTE,
    DISCONNECT_ROUTE,
    RouteTable,
    route_for,
)
from system.local.faults import Faults
from system.local.lambda_runtime.outcome import Outcome
from system.local.lambda_runtime.pool import LambdaRuntime
from system.local.web_client import web_file

log = logging.getLogger("chat_harness.apigateway")

WEB_CLIENT = Path(__file__).resolve().parent.parent / "web"  # the browser chat client


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
        # connection id -> connected at (ms): from the handshake until $connect refused it
        # or its $disconnect has run (or will not)
        self._unfinished: dict[str, int] = {}
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
            write_limit=OUTBOUND_BUFFER_BYTES,
            server_header="chat-harness",
        )
        return self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Close every connection (1001). $disconnect is not run for them: the stack
        is going away, and N leave notices to N clients would only delay Ctrl-C."""
        self._stopping = True
        for connection_id in self.sockets:
            self.registry.closing(connection_id)
        if self._server is not None:
            self._server.close(close_connections=True)
            await self._server.wait_closed()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def unfinished_connections(self, since_ms: int) -> int:
        """Connections made at or after ``since_ms`` that are still open, or whose
        $disconnect has not run yet."""
        return sum(connected_at >= since_ms for connected_at in self._unfinished.values())

    def _spawn(self, coroutine) -> None:
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- $connect: the upgrade is held until the integration returns ------------------------

    async def _handshake(self, ws: ServerConnection, request: Request) -> Response | None:
        path, _, query = request.path.partition("?")
        if request.method == "GET" and request.headers.get("Upgrade") is None:
            page = web_file(WEB_CLIENT, path, self.api.stage, ws.local_address)
            if page is not None:
                return Response(http.HTTPStatus.OK.value, "OK", Headers(page.headers), page.body)
        # A request that is not a valid WebSocket handshake never reaches $connect;
        # websockets' own check answers it (405, 505, 426, 400).
        checked = ws.protocol.accept(request)
        if checked.status_code != http.HTTPStatus.SWITCHING_PROTOCOLS:
            log.warning("refused handshake for %s: %s", path, checked.status_code)
            return checked
        refusal = handshake_refusal(path, self.api.stage, self._rate, time.monotonic())
        if refusal is not None:
            log.warning("refused handshake for %s: %s %s", path, refusal.status, refusal.body)
            return ws.respond(refusal.status, refusal.body)
        connection = self.registry.begin(
            ws.remote_address[0], request.headers.get("User-Agent"), _now_ms()
        )
        ws.chat_connection = connection
        self._unfinished[connection.connection_id] = connection.connected_at_ms
        accepted = False
        try:
            refusal = await self._run_connect(ws, connection, request, query)
            accepted = refusal is None
            if accepted and (hold := self.faults.connect_hold_s()):
                await asyncio.sleep(hold)  # the fault: $connect has returned, 410 goes on
            return refusal
        finally:
            if accepted:
                self._spawn(self._after_close(ws, connection))
            else:
                self.registry.close(connection.connection_id)
                self._unfinished.pop(connection.connection_id, None)

    async def _run_connect(self, ws: ServerConnection, connection: Connection, request: Request,
                           query: str) -> Response | None:
        """Run the authorizer, if any, then $connect, if routed: None accepts, else the
        response that refuses."""
        headers = list(request.headers.raw_items())
        event = connect_event(self.api, connection, headers, query, _now_ms())
        if self.routes.authorizer is not None:
            refusal = await self._authorize(connection, headers, query, event)
            if refusal is not None:
                return ws.respond(refusal.status, refusal.body)
            event["requestContext"]["authorizer"] = connection.authorizer
        function = self.routes.function_for(CONNECT_ROUTE)
        if function is None:
            return None
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
        return ws.respond(status, connect_refusal_body(outcome))

    async def _authorize(self, connection: Connection, headers: list[tuple[str, str]],
                         query: str, connect: dict) -> Refusal | None:
        """The $connect authorizer's verdict on the request whose $connect event is
        ``connect``: None lets $connect run, with what it allowed in
        ``connection.authorizer``; a refusal otherwise."""
        authorizer = self.routes.authorizer
        missing = missing_identity(authorizer, headers, query)
        if missing is not None:
            log.info("refused %s: no %s (authorizer not invoked)", connection.connection_id,
                     missing)
            return UNAUTHORIZED
        arn = method_arn(self.api.region, self.api.api_id, self.api.stage)
        outcome = await self.runtime.invoke(authorizer.function, authorizer_event(connect, arn),
                                            start_within=INTEGRATION_TIMEOUT_SECONDS)
        decision = decide(outcome, arn)
        log.info("authorizer %s for %s: %s", authorizer.name, connection.connection_id,
                 decision.why)
        connection.authorizer = decision.authorizer
        return decision.refusal

    # -- an open connection ----------------------------------------------------------------

    async def _serve_connection(self, ws: ServerConnection) -> None:
        connection: Connection = ws.chat_connection
        if self.registry.open(connection.connection_id):
            self.sockets[connection.connection_id] = ws
            await self._receive(ws, connection)

    async def _after_close(self, ws: ServerConnection, connection: Connection) -> None:
        """Once $connect has accepted, $disconnect follows when the socket is gone: closed,
        dropped, or never opened because the client left during $connect."""
        try:
            await self._disconnect_once_closed(ws, connection)
        finally:
            self._unfinished.pop(connection.connection_id, None)

    async def _disconnect_once_closed(self, ws: ServerConnection, connection: Connection) -> None:
        await ws.wait_closed()
        connection_id = connection.connection_id
        self.sockets.pop(connection_id, None)
        self.registry.close(connection_id)
        status = disconnect_status(_close_of(ws.protocol.close_rcvd),
                                   _close_of(ws.protocol.close_sent))
        if (what := bad_input(status)) is not None:
            log.warning("closed %s with %s: %s", connection_id, status.code, what)
        function = self.routes.function_for(DISCONNECT_ROUTE)
        if function is None or self._stopping or self.faults.disconnect_suppressed():
            return
        event = disconnect_event(self.api, connection, status.code, status.reason, _now_ms())
        await self._invoke(DISCONNECT_ROUTE, function, event)

    async def _invoke(self, route_key: str, function: str, event: dict) -> Outcome:
        """Invoke a route's function, unless an armed fault makes it fail first. An
        invocation that cannot start within the integration timeout is throttled."""
        if self.faults.handler_error(route_key):
            return Outcome(event["requestContext"]["requestId"], 0.0, error={
                "errorType": "InjectedFault", "errorMessage": f"injected failure of {route_key}"})
        return await self.runtime.invoke(function, event,
                                         start_within=INTEGRATION_TIMEOUT_SECONDS)

    async def _receive(self, ws: ServerConnection, connection: Connection) -> None:
        """Read messages until the client leaves or a quota (idle, duration) ends it."""
        try:
            while True:
                deadline = close_deadline(connection.connected_at_ms,
                                          connection.last_active_at_ms, self.limits)
                remaining = deadline.at_ms / 1000 - time.time()
                if remaining <= 0:
                    log.info("closing %s: %s", connection.connection_id, deadline.quota)
                    await self._close(ws, connection, deadline.close)
                    return
                try:
                    message = await asyncio.wait_for(ws.recv(), remaining)
                except TimeoutError:
                    continue  # activity may have moved the deadline meanwhile
                if isinstance(message, bytes):
                    await self._close(ws, connection, BINARY_REFUSED)
                    return
                self.registry.touch(connection.connection_id, _now_ms())
                self._dispatch(ws, connection, message)
        except ConnectionClosed:
            pass
        finally:  # the client closed, the socket was lost, or the server closed it
            self.registry.closing(connection.connection_id)

    async def _close(self, ws: ServerConnection, connection: Connection, close: Close) -> None:
        self.registry.closing(connection.connection_id)
        await ws.close(close.code, close.reason)

    def _dispatch(self, ws: ServerConnection, connection: Connection, body: str) -> None:
        route_key = route_for(body, self.routes.routes.keys(), self.routes.selection_path)
        if route_key is None:
            log.info("no route for a message from %s and no $default", connection.connection_id)
            self._spawn(self._send(ws, connection.connection_id,
                                   forbidden_frame(connection.connection_id, new_request_id())))
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
            await self._send(ws, connection.connection_id, frame)

    # -- what @connections does to a socket ------------------------------------------------

    def _socket_seen(self, connection_id: str) -> ServerConnection | None:
        """The connection's socket, after telling the registry of a close the socket has
        seen first (a close frame just read, a lost connection, a transport closing)."""
        ws = self.sockets.get(connection_id)
        if ws is not None and (ws.state is not SocketState.OPEN or ws.transport.is_closing()):
            self.registry.closing(connection_id)
        return ws

    async def _send(self, ws: ServerConnection, connection_id: str, frame: str | bytes) -> bool:
        """Send one frame; False if it did not go out. A client that leaves more than
        OUTBOUND_BUFFER_BYTES unread for ``outbound_stall_s`` is disconnected (no close
        frame: it is not reading), and $disconnect follows as for any lost connection."""
        try:
            async with asyncio.timeout(self.limits.outbound_stall_s):
                await ws.send(frame)
            return True
        except ConnectionClosed:
            return False
        except TimeoutError:
            log.warning("disconnecting %s: it left %d bytes unread for %s s", connection_id,
                        ws.transport.get_write_buffer_size(), self.limits.outbound_stall_s)
            self.registry.closing(connection_id)
            ws.transport.abort()
            return False

    async def post(self, connection_id: str, data: bytes) -> Answer:
        """POST @connections/{id}: send ``data`` as one message where the registry says 200;
        200 only once it went out, else 410 (nothing delivered)."""
        ws = self._socket_seen(connection_id)
        answer = self.registry.post(connection_id, len(data))
        if answer.status != 200:
            return answer
        if ws is not None and await self._send(ws, connection_id, _frame(data)):
            return self.registry.delivered(connection_id, _now_ms())
        return self.registry.undelivered(connection_id)

    def describe(self, connection_id: str) -> Answer:
        """GET @connections/{id}."""
        self._socket_seen(connection_id)
        return self.registry.describe(connection_id)

    def delete(self, connection_id: str) -> Answer:
        """DELETE @connections/{id}: where the registry says 204, the client sees a close
        with 1000."""
        ws = self._socket_seen(connection_id)
        answer = self.registry.delete(connection_id)
        if answer.status == 204 and ws is not None:
            self._spawn(ws.close(DELETED.code, DELETED.reason))
        return answer

    def drop(self, connection_id: str) -> bool:
        """Fault injection: lose the connection without a close frame, as a network does."""
        ws = self.sockets.get(connection_id)
        if ws is None:
            return False
        ws.transport.abort()
        return True


def _frame(data: bytes) -> str | bytes:
    """A text frame for UTF-8 data, else a binary one."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data


def _close_of(frame: CloseFrame | None) -> Close | None:
    return None if frame is None else Close(int(frame.code), frame.reason)

