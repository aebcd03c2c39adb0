"""ChatUser: what one chat client does — connect, heartbeat, chat on an open schedule, listen.

Runs under Locust's gevent: websocket-client's blocking calls yield to other
greenlets once Locust has monkey-patched the socket module. Receiving runs in
its own greenlet; chat messages leave on a schedule fixed in advance (constant
or Poisson), never waiting for the previous broadcast, so that a slow system
shows as latency from the intended send time instead of as fewer sends.
"""

from __future__ import annotations

import json
import random
import time
import uuid

import gevent
import websocket
from locust import User, constant, task

from loadtest.live import FanoutDelta
from loadtest.measurement import ChatPayload, FanoutLedger
from system.handlers.authorizer import TOKEN_PARAMETER, mint_token
from system.handlers.frames import HEARTBEAT, sendmessage_request

HEARTBEAT_FRAME = json.dumps(sendmessage_request(HEARTBEAT))
CONNECT_TIMEOUT_S = 30
RECONNECT_PAUSE_S = 1.0
YIELD_EVERY_S = 0.005


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
        # Random, not counted: Locust's --processes forks workers after this module loads.
        self.key = uuid.uuid4().hex[:12]
        self.ws: websocket.WebSocket | None = None
        self.connection: str | None = None
        self.generation = 0
        self.seq = 0
        self.stopping = False
        self.greenlets: list[gevent.Greenlet] = []
        self.next_intended = 0.0

    # -- lifecycle -------------------------------------------------------------------------

    def on_start(self) -> None:
        self._connect()
        self.greenlets = [gevent.spawn(self._listen), gevent.spawn(self._heartbeat)]
        self.next_intended = time.time() + self._interval() * random.random()

    def on_stop(self) -> None:
        """Stop sending, end the listener and the heartbeat, and only then close: a user
        that stops sends nothing after its close frame and counts no failure for it.
        (A kill merely scheduled left both running while the socket closed: with many
        users stopping at once, a heartbeat due meanwhile failed on the closed socket,
        and the listener answered the server's close with a second one.)"""
        self.stopping = True
        gevent.killall(self.greenlets)  # they die at once: nothing in them holds off a kill
        self._closed(time.time())
        if self.ws is not None:
            self.ws.close()

    def _connect(self) -> None:
        started = time.perf_counter()
        try:
            # recv() still decodes text frames (and fails on invalid UTF-8); the library's
            # own byte-by-byte check costs ~100 us a frame in pure Python.
            url = self.host if self.token_secret is None else (
                f"{self.host}?{TOKEN_PARAMETER}={mint_token(self.token_secret, self.key)}")
            self.ws = websocket.create_connection(url, timeout=CONNECT_TIMEOUT_S,
                                                  skip_utf8_validation=True)
            self.ws.settimeout(None)  # the listener waits as long as it takes
        except Exception as error:
            self._fire("WS", "connect", started, exception=error)
            raise
        self._fire("WS", "connect", started)
        self.generation += 1
        self.connection = f"{self.key}/{self.generation}"
        now = time.time()
        self.ledger.connection_opened(self.connection, now)
        self.live.opened.append(now)

    def _closed(self, at: float) -> None:
        """The current connection is gone (recorded once, however many reconnects fail)."""
        if self.connection is not None:
            self.ledger.connection_closed(self.connection, at)
            self.live.closed.append(at)
            self.connection = None

    def _fire(self, kind: str, name: str, started: float, exception: Exception | None = None,
              response_time: float | None = None) -> None:
        self.environment.events.request.fire(
            request_type=kind, name=name, context={}, response=None, exception=exception,
            response_time=response_time if response_time is not None
            else (time.perf_counter() - started) * 1000,
            response_length=0,
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
        self._send(json.dumps(sendmessage_request(payload.encode())), "chat")

    def _heartbeat(self) -> None:
        while not self.stopping:
            gevent.sleep(self.heartbeat_s)
            self._send(HEARTBEAT_FRAME, "heartbeat")

    def _send(self, frame: str, name: str) -> None:
        if self.stopping:  # the user is closing its connection: nothing more leaves
            return
        started = time.perf_counter()
        try:
            self.ws.send(frame)
        except Exception as error:  # noqa: BLE001 - the listener reconnects
            self._fire("WS", name, started, exception=error)
            return
        self._fire("WS", name, started)

    def _listen(self) -> None:
        """Receive until the user stops. recv() only yields to other greenlets when its
        socket is empty, so under a flood the listener yields every YIELD_EVERY_S itself,
        lest it starve every other user's heartbeat and schedule."""
        yielded = time.perf_counter()
        while not self.stopping:
            if time.perf_counter() - yielded > YIELD_EVERY_S:
                gevent.sleep(0)
                yielded = time.perf_counter()
            try:
                frame = self.ws.recv()
            except Exception:  # noqa: BLE001 - a closed or broken socket: reconnect
                if self.stopping:
                    return
                try:
                    self._reconnect()
                except Exception:  # noqa: BLE001 - counted by _connect; try again shortly
                    gevent.sleep(RECONNECT_PAUSE_S)
                continue
            self._on_frame(frame, time.time())

    def _reconnect(self) -> None:
        self._closed(time.time())
        self._fire("WS", "reconnect", time.perf_counter())
        self._connect()

    def _on_frame(self, frame: str | bytes, at: float) -> None:
        try:
            document = json.loads(frame)
        except ValueError:
            return
        if not isinstance(document, dict) or document.get("type") != "chat":
            return
        payload = ChatPayload.decode(document.get("text", ""), self.run_id)
        if payload is None:
            return
        own = payload.sender == self.key
        latency = self.ledger.received(self.connection, payload, at, own=own)
        self.live.receipts.append((payload.message_id, latency / 1000))
        self._fire("FANOUT", "sender echo" if own else "per-recipient", 0.0,
                   response_time=latency)
