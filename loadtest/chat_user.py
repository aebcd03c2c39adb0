"""ChatUser: what one chat client does — connect, heartbeat, chat on an open schedule, listen.

Runs under Locust's gevent. Its connection is read by the event loop itself
(loadtest/websocket_connection.py), and its heartbeats are a timer of the loop: only
the chat schedule, reconnects and the stop run in greenlets. Chat messages leave on a
schedule fixed in advance (constant or Poisson), never waiting for the previous
broadcast, so that a slow system shows as latency from the intended send time instead
of as fewer sends. Receipts and heartbeats reach Locust's statistics in bulk
(loadtest/request_tally.py).
"""

from __future__ import annotations

import json
import random
import time
import uuid

import gevent
import orjson
from locust import User, constant, task

from loadtest.live import FanoutDelta
from loadtest.measurement import ChatPayload, FanoutLedger
from loadtest.request_tally import RequestTally
from loadtest.websocket_connection import WebSocketConnection
from system.handlers.authorizer import TOKEN_PARAMETER, mint_token
from system.handlers.frames import HEARTBEAT, sendmessage_request

HEARTBEAT_FRAME = json.dumps(sendmessage_request(HEARTBEAT)).encode()
CONNECT_TIMEOUT_S = 30
CLOSE_WAIT_S = 3.0  # for the server's answer to our close frame
RECONNECT_PAUSE_S = 1.0


class ChatUser(User):
    """Settings come from the run (see locustfile.py): ``ledger``, ``run_id``,
    ``heartbeat_s``, ``messages_per_minute``, ``poisson``."""

    abstract = True
    wait_time = constant(0)  # chat() sleeps until its message's intended time
    ledger: FanoutLedger
    live = FanoutDelta()  # this process's news for the web UI
    run_id: str
    heartbeat_s: float = 30.0
    messages_per_minute: float = 6.0
    poisson: bool = False
    # No chat after this (epoch s): the last messages get settle time to arrive
    # before the run closes the connections.
    stop_sending_at: float = float("inf")
    # The key of the stack's JWT authorizer, if it has one: each user connects with a
    # token of its own (its key as the subject), as the reference client sends it.
    token_secret: str | None = None

    def __init__(self, environment) -> None:
        super().__init__(environment)
        self.requests = RequestTally.of(environment.stats)
        # Random, not counted: Locust's --processes forks workers after this module loads.
        self.key = uuid.uuid4().hex[:12]
        self.websocket: WebSocketConnection | None = None
        self.connection: str | None = None
        self.generation = 0
        self.seq = 0
        self.stopping = False
        self.reconnecting: gevent.Greenlet | None = None
        self.heartbeats = gevent.get_hub().loop.timer(self.heartbeat_s, self.heartbeat_s)
        self.next_intended = 0.0
        # Only frames that carry this run's id can hold its payloads: no JSON for the rest.
        self.run_marker = self.run_id.encode()

    # -- lifecycle -------------------------------------------------------------------------

    def on_start(self) -> None:
        self._connect()
        self.heartbeats.start(self._heartbeat)
        self.next_intended = time.time() + self._interval() * random.random()

    def on_stop(self) -> None:
        """Stop sending and reconnecting, and only then close: a user that stops sends
        nothing after its close frame and counts no failure for it. (With many users
        stopping at once, a heartbeat due meanwhile once failed on the closed socket.)"""
        self.stopping = True
        self.heartbeats.close()
        if self.reconnecting is not None:
            self.reconnecting.kill()  # it dies at once: nothing in it holds off a kill
        self._closed(time.time())
        if self.websocket is not None:
            self.websocket.close(CLOSE_WAIT_S)
        self.requests.flush()

    def _connect(self) -> None:
        started = time.perf_counter()
        url = self.host if self.token_secret is None else (
            f"{self.host}?{TOKEN_PARAMETER}={mint_token(self.token_secret, self.key)}")
        try:
            self.websocket = WebSocketConnection.open(url, CONNECT_TIMEOUT_S, self._on_message,
                                                      self._on_end)
        except Exception as error:
            self._fire("connect", started, exception=error)
            raise
        self._fire("connect", started)
        self.generation += 1
        self.connection = f"{self.key}/{self.generation}"
        now = time.time()
        self.ledger.connection_opened(self.connection, now)
        self.live.opened.append(now)
        self.websocket.start()  # receipts from here on are this connection's

    def _closed(self, at: float) -> None:
        """The current connection is gone (recorded once, however many reconnects fail)."""
        if self.connection is not None:
            self.ledger.connection_closed(self.connection, at)
            self.live.closed.append(at)
            self.connection = None

    def _fire(self, name: str, started: float, exception: Exception | None = None) -> None:
        self.environment.events.request.fire(
            request_type="WS", name=name, context={}, response=None, exception=exception,
            response_time=(time.perf_counter() - started) * 1000, response_length=0,
        )

    # -- the three activities --------------------------------------------------------------

    def _interval(self) -> float:
        mean = 60.0 / self.messages_per_minute
        return random.expovariate(1 / mean) if self.poisson else mean

    @task
    def chat(self) -> None:
        """Send the next message at its intended time (late, if the generator lags)."""
        gevent.sleep(max(0.0, self.next_intended - time.time()))
        if self.next_intended >= self.stop_sending_at:
            gevent.sleep(self._interval())  # only listening now, until the run ends
            return
        payload = ChatPayload(self.run_id, uuid.uuid4().hex, self.key, self.seq,
                              self.next_intended, time.time())
        self.seq += 1
        self.next_intended += self._interval()
        self.ledger.message_sent(payload)
        self.live.sent.append((payload.message_id, payload.sent_at))
        started = time.perf_counter()
        error = self._send(json.dumps(sendmessage_request(payload.encode())).encode())
        self._fire("chat", started, exception=error)

    def _heartbeat(self) -> None:
        """The timer's callback, in the event loop."""
        started = time.perf_counter()
        error = self._send(HEARTBEAT_FRAME)
        if error is None:
            self.requests.success("WS", "heartbeat", (time.perf_counter() - started) * 1000,
                                  time.time())
        else:
            self._fire("heartbeat", started, exception=error)

    def _send(self, frame: bytes) -> Exception | None:
        """The error if ``frame`` could not be sent; a broken connection is the reader's
        to notice and replace."""
        if self.websocket is None or not self.websocket.open_for_sending:
            return ConnectionError("no open connection")
        try:
            self.websocket.send_text(frame)
        except Exception as error:  # noqa: BLE001 - counted as this send's failure
            return error
        return None

    def _on_end(self) -> None:
        """The connection ended (in the event loop): connect again, unless stopping."""
        if not self.stopping:
            self.reconnecting = gevent.spawn(self._reconnect)

    def _reconnect(self) -> None:
        self._closed(time.time())
        self._fire("reconnect", time.perf_counter())
        while not self.stopping:
            try:
                self._connect()
                return
            except Exception:  # noqa: BLE001 - counted by _connect; try again shortly
                gevent.sleep(RECONNECT_PAUSE_S)

    def _on_message(self, frame: bytes, at: float) -> None:
        """In the event loop: a receipt if ``frame`` is a chat frame with our payload (none
        once the user stops: its connection is recorded closed then)."""
        if self.stopping or self.run_marker not in frame:
            return
        try:
            document = orjson.loads(frame)
        except orjson.JSONDecodeError:
            return
        if not isinstance(document, dict) or document.get("type") != "chat":
            return
        payload = ChatPayload.decode(document.get("text", ""), self.run_id)
        if payload is None:
            return
        own = payload.sender == self.key
        latency = self.ledger.received(self.connection, payload, at, own=own)
        self.live.receipts.append((payload.message_id, latency / 1000))
        self.requests.success("FANOUT", "sender echo" if own else "per-recipient", latency, at)
