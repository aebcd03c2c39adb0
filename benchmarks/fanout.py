"""Fan-out benchmark: the chat's broadcast strategies at several N, AWS latency model off/on.

For each latency setting (``--latency off,on``) and strategy (``--strategies
sequential,threads,batched``) it starts one local stack (``chat-harness local --fanout S``,
with ``--aws-latency`` when on) in a child process, with join and leave notices off (a
routes file with PRESENCE_NOTICES=off, so that N clients connecting cost no N(N-1)/2
posts), new connections not rate-limited, and Lambda's default 3 s timeout, so that a
broadcast that cannot make it in time shows as timeouts. Then, for each N of
``--clients`` (100,1000,5000) in ascending order, it connects clients up to N (keeping
those already connected), asks each its connection id (``whoami``), sends ``--warmup``
broadcasts (not measured: the fan-out function's environments start cold), then
``--broadcasts`` K measured ones, one at a time from the first client. The next starts
once the invocations of the last have finished (SendMessageHandler, and for ``batched``
as many FanoutHandler batches as its EMF line says it dispatched: the stack's invocations
log and metrics file tell), and every client has it, or those without it were never sent
it (the control API says so), or ``--broadcast-timeout`` seconds (30) have passed.

Printed, per latency setting, one row per strategy x N: the time from the send to the
last recipient (p50/p95, of the broadcasts that reached every client), deliveries/s
(deliveries over the sum of the send-to-last-arrival times), delivery ratio (deliveries
over N x K), the invocations of the measured broadcasts and how many timed out, and the
clients that missed a broadcast, by why (benchmarks/fanout_results.py): ``closed``, ``never
sent`` (the stack never posted it to them: the control API's posts_delivered for the
connection did not grow) or ``sent but not read`` (it did grow, the frame did not arrive
in time). Then the issue's goals: at N = 1,000 with the model off, batched against
threads (deliveries/s >= 1.5x, time to the last recipient p50 <= 0.67x); at N = 5,000
batched's delivery ratio (1); with the model on, sequential at N = 1,000 passing 3 s.
For context it first measures a bare boto3 ``post_to_connection`` loop (set up as the
handlers set theirs up) against a null HTTP sink, over HTTP and HTTPS.

Run it from the repository root, with the dev venv's Python:

    python benchmarks/fanout.py [--strategies sequential,threads,batched]
        [--clients 100,1000,5000] [--latency off,on] [--broadcasts 5] [--warmup 2]
        [--baseline-posts 5000] [--broadcast-timeout 30] [--dynamodb dynalite]
        [--json results.json]

The full run (6 stacks, up to 5,000 clients each) took 18 minutes on 2 cores on
2026-12-01 (connecting runs at about 65 clients/s, identified; a broadcast to 5,000 takes
about 10 s, or the 3 s timeout); a small one (``--clients 20,100 --broadcasts 2
--warmup 1``) about 4 minutes. All traffic stays on 127.0.0.1, every phase has a timeout,
and every process the benchmark starts is stopped when it ends, fails or is interrupted
(Ctrl-C prints the results measured so far).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import shlex
import signal
import ssl
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Self

import aiohttp
import boto3
from aiohttp import web
from botocore.config import Config
from fanout_results import (
    BROADCASTING_FUNCTION,
    COUNTED_FUNCTIONS,
    FANOUT_FUNCTION,
    MISS_REASONS,
    BroadcastResult,
    Invocation,
    Miss,
    SizeResult,
    goal_checks,
    latency_label,
    miss_lines,
    miss_reason,
    table_lines,
)
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from system.fanout_strategies import DEFAULT_FANOUT_CONCURRENCY, FANOUT_STRATEGIES
from system.handlers.frames import chat_frame, sendmessage_request
from system.local.apigateway.ids import new_connection_id
from system.local.launcher import LocalStackProcess
from system.local.processes import die_with_parent, raise_open_file_limit
from system.local.tls import local_tls
from system.options import (
    file_in_existing_directory,
    non_negative_int,
    positive_float,
    positive_int,
)
from system.routes import DEFAULT_TIMEOUT_S, with_environment, write_routes_variant
from system.stackfile import StackFile, StackFileError

# The handlers' fan-out client set-up (system/handlers/chat.py, which is not imported: it
# creates its DynamoDB client as a Lambda container would).
HANDLER_CONFIG = Config(
    max_pool_connections=DEFAULT_FANOUT_CONCURRENCY, retries={"mode": "standard", "max_attempts": 1}
)

HOST = "127.0.0.1"
STAGE = "local"
REGION = "us-east-1"
# The null sink checks no signature: any credentials sign as much work as the stack's.
SINK_CREDENTIALS = {"aws_access_key_id": "NULLSINK", "aws_secret_access_key": "null-sink"}
LATENCY_SETTINGS = {"off": False, "on": True}
# Connecting must not meet the 500/s new-connection limit, and clients that only listen
# must not meet the 10-minute idle timeout (a client the stack never posts to, e.g. past
# a sequential broadcast's timeout, is idle): neither is this benchmark's subject.
# Lambda's timeout stays the default (3 s): a fan-out that cannot make it shows as timeouts.
STACK_ARGUMENTS = ["--connect-rate", "100000", "--idle-timeout", "7200"]
# Handshakes in flight at once, and whoamis: as many as the stack's Lambda environments
# per function (--concurrency, default 8).
CONNECT_CONCURRENCY = 8
CONNECT_PROGRESS_EVERY = 1000
# Control API requests in flight at once, when asking why clients missed a broadcast.
CONTROL_CONCURRENCY = 16

SINK_START_TIMEOUT_S = 30
BASELINE_TIMEOUT_S = 300
CONNECT_PHASE_TIMEOUT_S = 1200
HANDSHAKE_TIMEOUT_S = 60
WHOAMI_TIMEOUT_S = 60
DEFAULT_BROADCAST_TIMEOUT_S = 30.0
# Once a broadcast's invocations have finished, frames still on their way arrive within
# this long of each other; when none has for this long, the missing clients are asked after.
ARRIVALS_SETTLE_S = 0.25
POLL_S = 0.02
CONTROL_REQUEST_TIMEOUT_S = 10
CONTROL_PHASE_TIMEOUT_S = 300
CLIENT_CLOSE_TIMEOUT_S = 60


def comma_list(kind: Callable[[str], object], choices: tuple[str, ...] = ()):
    """An argparse type: 'a,b,c' -> [kind(a), kind(b), kind(c)], no repeats, at least one."""

    def parse(text: str) -> list:
        items = [item.strip() for item in text.split(",")]
        if choices and (unknown := [i for i in items if i not in choices]):
            raise argparse.ArgumentTypeError(f"{', '.join(unknown)}: choose from "
                                             f"{', '.join(choices)}")
        values = []
        for item in items:
            try:
                values.append(kind(item))
            except argparse.ArgumentTypeError as error:
                raise argparse.ArgumentTypeError(f"{item!r} {error}") from None
            except ValueError:
                raise argparse.ArgumentTypeError(f"{item!r} is not a whole number") from None
        if len(set(values)) < len(values):
            raise argparse.ArgumentTypeError(f"{text!r} names a value twice")
        return values

    return parse


# -- baseline: a bare post_to_connection loop against a null sink ----------------------------


def _serve_null_sink(ready: Connection, tls_dir: str | None) -> None:
    """Child process: answer 200 to every @connections POST until terminated."""
    die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # on Ctrl-C, the parent stops it
    asyncio.run(_null_sink(ready, Path(tls_dir) if tls_dir else None))


async def _null_sink(ready: Connection, tls_dir: Path | None) -> None:
    async def accept(request: web.Request) -> web.Response:
        return web.Response()

    app = web.Application()
    app.router.add_post("/{stage}/@connections/{connection_id}", accept)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    tls = local_tls(tls_dir).server_context if tls_dir else None
    await web.TCPSite(runner, HOST, 0, ssl_context=tls, backlog=1024).start()
    ready.send(runner.addresses[0][1])
    await asyncio.Event().wait()


@contextlib.contextmanager
def null_sink(tls_dir: Path | None) -> Iterator[str]:
    """Run the sink in its own process (its own GIL, as in the stack); yield its endpoint URL.

    With ``tls_dir`` it serves HTTPS and writes its CA to ``tls_dir/ca.pem``.
    """
    context = multiprocessing.get_context("spawn")
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(target=_serve_null_sink, daemon=True,
                              args=(sender, str(tls_dir) if tls_dir else None))
    process.start()
    sender.close()
    try:
        if not receiver.poll(SINK_START_TIMEOUT_S):
            raise RuntimeError(f"the null sink did not start in {SINK_START_TIMEOUT_S} s")
        try:
            port = receiver.recv()
        except EOFError:
            raise RuntimeError(f"the null sink exited with {process.exitcode}") from None
        yield f"{'https' if tls_dir else 'http'}://{HOST}:{port}/{STAGE}"
    finally:
        process.terminate()
        process.join(5)
        if process.is_alive():
            process.kill()
            process.join()


def sample_chat_frame() -> bytes:
    """A broadcast payload shaped and sized like sendmessage's."""
    sender = new_connection_id()
    sent_at = "2026-11-26T10:00:00.000Z"
    text = "fan-out benchmark message"
    return json.dumps(chat_frame(str(uuid.uuid4()), sender, sent_at, text)).encode()


@dataclass(frozen=True)
class PostRate:
    posts: int
    seconds: float

    @property
    def per_second(self) -> float:
        return self.posts / self.seconds


def bare_post_rate(endpoint: str, ca_bundle: Path | None, posts: int) -> PostRate:
    """Time ``posts`` post_to_connection calls over DEFAULT_FANOUT_CONCURRENCY threads, after a
    warm-up that opens the client's connection pool."""
    client = boto3.client("apigatewaymanagementapi", endpoint_url=endpoint, region_name=REGION,
                          verify=str(ca_bundle) if ca_bundle else None, config=HANDLER_CONFIG,
                          **SINK_CREDENTIALS)
    data = sample_chat_frame()
    recipients = [new_connection_id() for _ in range(posts)]

    def post(recipient: str) -> None:
        client.post_to_connection(ConnectionId=recipient, Data=data)

    pool = ThreadPoolExecutor(max_workers=DEFAULT_FANOUT_CONCURRENCY, thread_name_prefix="fanout")
    try:
        list(pool.map(post, recipients[: 4 * DEFAULT_FANOUT_CONCURRENCY], timeout=BASELINE_TIMEOUT_S))
        started = time.perf_counter()
        list(pool.map(post, recipients, timeout=BASELINE_TIMEOUT_S))
        return PostRate(posts, time.perf_counter() - started)
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def measure_baseline(posts: int, tls: bool) -> PostRate:
    with tempfile.TemporaryDirectory(prefix="fanout-sink-") as directory:
        tls_dir = Path(directory) if tls else None
        with null_sink(tls_dir) as endpoint:
            return bare_post_rate(endpoint, tls_dir / "ca.pem" if tls_dir else None, posts)


def measure_baselines(posts: int) -> dict:
    print(f"Context: a bare boto3 post_to_connection loop ({DEFAULT_FANOUT_CONCURRENCY} threads) -> "
          f"null aiohttp sink, {posts} posts")
    plain = measure_baseline(posts, tls=False)
    print(f"  plain HTTP  {plain.seconds:6.2f} s  {plain.per_second:6.0f} posts/s")
    tls = measure_baseline(posts, tls=True)
    print(f"  HTTPS       {tls.seconds:6.2f} s  {tls.per_second:6.0f} posts/s  "
          f"({tls.per_second / plain.per_second:.2f} x plain HTTP)")
    return {"posts": posts, "plain_http_per_s": round(plain.per_second, 1),
            "https_per_s": round(tls.per_second, 1)}


# -- the stack's own record: invocations log and EMF metrics ---------------------------------


class AppendedLines:
    """The JSON lines appended to a file since the last read (a partly written last line
    waits for the next read)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0

    def skip_to_end(self) -> None:
        self.read()

    def read(self) -> list[dict]:
        try:
            with self.path.open("rb") as stream:
                stream.seek(self.offset)
                chunk = stream.read()
        except FileNotFoundError:
            return []
        complete = chunk[: chunk.rfind(b"\n") + 1]
        self.offset += len(complete)
        return [json.loads(line) for line in complete.splitlines() if line.strip()]


class StackRecord:
    """What the stack writes about its invocations: ``logs_dir/invocations.jsonl`` (one line
    per invocation: function, request_id, duration_ms, failed, error_type: "TimedOut" for a
    timeout) and the EMF metrics file."""

    def __init__(self, stack: StackFile) -> None:
        self.logs_dir = Path(stack.logs_dir)
        self.invocations = AppendedLines(self.logs_dir / "invocations.jsonl")
        self.metrics = AppendedLines(Path(stack.metrics_file))

    def skip_to_end(self) -> None:
        self.invocations.skip_to_end()
        self.metrics.skip_to_end()

    @staticmethod
    def timed_out(line: dict) -> bool:
        return line.get("error_type") == "TimedOut"


@dataclass
class BroadcastWork:
    """The invocations of one broadcast, as the stack records them: finished once its
    SendMessageHandler invocation has ended and, for ``batched``, as many FanoutHandler
    invocations as the broadcast dispatched batches (its EMF line's Batches). A batched
    broadcast whose SendMessageHandler failed (no EMF line) dispatched an unknown number:
    it is finished only when every client has the message."""

    record: StackRecord
    strategy: str
    invocations: list[Invocation] = field(default_factory=list)
    batches: int | None = None
    done: bool = False  # as last found by ``finished``

    def poll(self) -> None:
        for line in self.record.invocations.read():
            if line.get("function") in COUNTED_FUNCTIONS:
                self.invocations.append(Invocation(
                    line["function"], line.get("request_id", ""),
                    float(line.get("duration_ms", 0.0)), bool(line.get("failed")),
                    StackRecord.timed_out(line)))
        for line in self.record.metrics.read():
            if line.get("Route") == "sendmessage" and "Recipients" in line:
                self.batches = int(line.get("Batches", 0))

    def _count(self, function: str) -> int:
        return sum(1 for i in self.invocations if i.function == function)

    def finished(self, everyone_has_it: bool) -> bool:
        sent = [i for i in self.invocations if i.function == BROADCASTING_FUNCTION]
        if not sent:
            self.done = False
        elif self.strategy != "batched":
            self.done = True
        elif sent[0].failed:
            self.done = everyone_has_it
        else:
            self.done = (self.batches is not None
                         and self._count(FANOUT_FUNCTION) >= self.batches)
        return self.done

    def describe(self) -> str:
        parts = []
        for function in COUNTED_FUNCTIONS:
            mine = [i for i in self.invocations if i.function == function]
            if not mine:
                continue
            timeouts = sum(1 for i in mine if i.timed_out)
            failed = sum(1 for i in mine if i.failed) - timeouts
            text = f"{len(mine)} {function}"
            if timeouts:
                text += f" ({timeouts} timed out)"
            if failed:
                text += f" ({failed} failed)"
            parts.append(text)
        if not self.done:
            parts.append("STILL RUNNING at the broadcast timeout: the next broadcast may "
                         "count some of them")
        return ", ".join(parts) or "no invocation recorded"


# -- the control API: what the stack knows of a connection -----------------------------------


class ControlApi:
    """``GET {control_endpoint}/connections/{id}``: the connection's state and the
    @connections posts that went out to it; 404 once the stack has forgotten it."""

    def __init__(self, stack: StackFile) -> None:
        self.base = stack.control_endpoint
        self._tls = ssl.create_default_context(cafile=stack.ca_bundle)
        self._headers = {"Authorization": f"Bearer {stack.control_token}"}
        self._session: aiohttp.ClientSession | None = None
        # Requests wait here, not in the connection pool, so that the timeout of each
        # counts its own round trip only.
        self._gate = asyncio.Semaphore(CONTROL_CONCURRENCY)

    async def __aenter__(self) -> Self:
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=CONTROL_CONCURRENCY, ssl=self._tls),
            timeout=aiohttp.ClientTimeout(total=CONTROL_REQUEST_TIMEOUT_S),
            headers=self._headers)
        return self

    async def __aexit__(self, *exc) -> None:
        await self._session.close()

    async def posts_delivered(self, connection_id: str) -> int | None:
        """Posts delivered to an open connection; None if it is closing or gone."""
        url = f"{self.base}/connections/{connection_id}"
        async with self._gate, self._session.get(url) as response:
            if response.status == 404:
                return None
            response.raise_for_status()
            document = await response.json()
        return document["posts_delivered"] if document["state"] == "OPEN" else None


# -- the clients ---------------------------------------------------------------------------


@dataclass
class ChatClient:
    number: int
    ws: ClientConnection
    connection_id: str = ""
    identified: asyncio.Event = field(default_factory=asyncio.Event)
    posts_read: int = 0  # frames that were @connections posts (not API Gateway's own)
    posts_known: int = 0  # posts_delivered, as the control API last said
    closed: bool = False
    reader: asyncio.Task | None = None


@dataclass
class Arrivals:
    """Who has one broadcast's message, and when."""

    marker: str
    expected: int
    sent_at: float
    received: dict[int, float] = field(default_factory=dict)  # client number -> when
    last_at: float = 0.0

    def receive(self, client: int, now: float) -> None:
        if client not in self.received:
            self.received[client] = now
            self.last_at = now

    @property
    def complete(self) -> bool:
        return len(self.received) == self.expected


class ChatClients:
    """WebSocket clients that read every frame, know their connection ids and count who
    got the current broadcast."""

    def __init__(self) -> None:
        self.clients: list[ChatClient] = []
        self.current: Arrivals | None = None

    async def grow(self, url: str, total: int) -> None:
        """Connect clients until there are ``total``; each learns its connection id."""
        wanted = total - len(self.clients)
        if wanted <= 0:
            return
        handshakes = asyncio.Semaphore(CONNECT_CONCURRENCY)
        whoamis = asyncio.Semaphore(CONNECT_CONCURRENCY)
        started = time.perf_counter()
        before = len(self.clients)
        identified = 0

        async def connect_one() -> None:
            nonlocal identified
            async with handshakes:
                ws = await connect(url, open_timeout=HANDSHAKE_TIMEOUT_S, ping_interval=None,
                                   compression=None, close_timeout=2, max_size=None)
            client = ChatClient(len(self.clients), ws)
            self.clients.append(client)
            client.reader = asyncio.create_task(self._read(client))
            async with whoamis, asyncio.timeout(WHOAMI_TIMEOUT_S):
                await ws.send(json.dumps({"action": "whoami"}))
                await client.identified.wait()
            identified += 1
            if identified % CONNECT_PROGRESS_EVERY == 0:
                print(f"    {before + identified:>5} identified after "
                      f"{time.perf_counter() - started:.0f} s")

        try:
            async with asyncio.timeout(CONNECT_PHASE_TIMEOUT_S), asyncio.TaskGroup() as group:
                for _ in range(wanted):
                    group.create_task(connect_one())
        except TimeoutError:
            raise RuntimeError(f"only {len(self.clients)} of {total} clients connected and "
                               f"identified in {CONNECT_PHASE_TIMEOUT_S} s") from None
        except ExceptionGroup as failures:
            raise RuntimeError(f"{len(self.clients)} of {total} clients connected, then: "
                               f"{failures.exceptions[0]!r}") from failures
        print(f"  {total - before} clients connected and identified in "
              f"{time.perf_counter() - started:.1f} s ({total} in all)")

    async def _read(self, client: ChatClient) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for message in client.ws:
                frame = json.loads(message)
                kind = frame.get("type") if isinstance(frame, dict) else None
                if kind is None:
                    continue  # API Gateway's own (an error to the sender), not a post
                client.posts_read += 1
                if kind == "whoami":
                    client.connection_id = frame["connection_id"]
                    client.identified.set()
                elif kind == "chat":
                    arrivals = self.current
                    if arrivals is not None and frame.get("text") == arrivals.marker:
                        arrivals.receive(client.number, time.perf_counter())
        client.closed = True

    async def close(self) -> None:
        async with asyncio.timeout(CLIENT_CLOSE_TIMEOUT_S):
            await asyncio.gather(*(c.ws.close() for c in self.clients), return_exceptions=True)
            await asyncio.gather(*(c.reader for c in self.clients), return_exceptions=True)


# -- one broadcast ---------------------------------------------------------------------------


class Broadcaster:
    """Sends broadcasts one at a time from the first client and finds out what each did."""

    def __init__(self, chat: ChatClients, record: StackRecord, control: ControlApi,
                 strategy: str, timeout_s: float) -> None:
        self.chat = chat
        self.record = record
        self.control = control
        self.strategy = strategy
        self.timeout_s = timeout_s

    async def send(self) -> tuple[BroadcastResult, BroadcastWork]:
        clients = list(self.chat.clients)
        posts_at_start = {c.number: max(c.posts_read, c.posts_known) for c in clients}
        self.record.skip_to_end()
        work = BroadcastWork(self.record, self.strategy)
        arrivals = Arrivals(f"fanout-{uuid.uuid4().hex}", len(clients), time.perf_counter())
        self.chat.current = arrivals
        deadline = arrivals.sent_at + self.timeout_s
        try:
            await clients[0].ws.send(json.dumps(sendmessage_request(arrivals.marker)))
            await self._until_settled(arrivals, work, deadline)
            misses = await self._misses(clients, arrivals, posts_at_start, deadline)
            while not work.finished(arrivals.complete) and time.perf_counter() < deadline:
                await asyncio.sleep(POLL_S)
                work.poll()
        finally:
            self.chat.current = None
        last = arrivals.last_at - arrivals.sent_at if arrivals.received else None
        result = BroadcastResult(len(clients), len(arrivals.received), last, tuple(misses),
                                 tuple(work.invocations))
        return result, work

    async def _until_settled(self, arrivals: Arrivals, work: BroadcastWork,
                             deadline: float) -> None:
        """Until every client has the message and the invocations have finished, or they
        have finished and no frame has arrived for ARRIVALS_SETTLE_S, or the deadline."""
        while (now := time.perf_counter()) < deadline:
            work.poll()
            if work.finished(arrivals.complete):
                if arrivals.complete:
                    return
                if now - max(arrivals.last_at, arrivals.sent_at) >= ARRIVALS_SETTLE_S:
                    return
            await asyncio.sleep(POLL_S)

    async def _misses(self, clients: list[ChatClient], arrivals: Arrivals,
                      posts_at_start: dict[int, int], deadline: float) -> list[Miss]:
        """Why each client without the message missed it. Those the stack did post it to
        are waited for until the deadline."""
        missing = [c for c in clients if c.number not in arrivals.received]
        if not missing:
            return []

        async def ask(client: ChatClient) -> None:
            if client.closed:
                return
            posts = await self.control.posts_delivered(client.connection_id)
            if posts is None:
                client.closed = True
            else:
                client.posts_known = posts

        async with asyncio.timeout(CONTROL_PHASE_TIMEOUT_S):
            await asyncio.gather(*(ask(c) for c in missing))
        sent = [c for c in missing
                if not c.closed and c.posts_known > posts_at_start[c.number]]
        while time.perf_counter() < deadline and any(
                c.number not in arrivals.received and not c.closed for c in sent):
            await asyncio.sleep(POLL_S)
        return [Miss(c.number, c.connection_id,
                     miss_reason(c.closed, posts_at_start[c.number], c.posts_known))
                for c in missing if c.number not in arrivals.received]


def broadcast_line(label: str, result: BroadcastResult, work: BroadcastWork) -> str:
    if result.complete:
        outcome = f"{result.last_arrival_s:.3f} s to the last of {result.recipients:,}"
    else:
        reasons = {reason: sum(1 for m in result.misses if m.reason == reason)
                   for reason in MISS_REASONS}
        why = ", ".join(f"{n} {reason}" for reason, n in reasons.items() if n)
        outcome = f"INCOMPLETE: {result.delivered:,} of {result.recipients:,} ({why})"
    return f"    {label}: {outcome}; {work.describe()}"


# -- one stack: a strategy, the model on or off ----------------------------------------------


@dataclass(frozen=True)
class StackPlan:
    latency: bool
    strategy: str

    @property
    def label(self) -> str:
        return f"{self.strategy}, {latency_label(self.latency)}"

    def arguments(self, routes: Path, dynamodb: str) -> list[str]:
        arguments = [*STACK_ARGUMENTS, "--routes", str(routes), "--fanout", self.strategy,
                     "--dynamodb", dynamodb]
        return [*arguments, "--aws-latency"] if self.latency else arguments


async def measure_stack(plan: StackPlan, stack: StackFile, launcher: LocalStackProcess,
                        options: argparse.Namespace, results: list[SizeResult]) -> None:
    """Every N of the run on one stack; each size's result is appended as it is done."""
    chat = ChatClients()
    record = StackRecord(stack)
    try:
        async with ControlApi(stack) as control:
            broadcaster = Broadcaster(chat, record, control, plan.strategy,
                                      options.broadcast_timeout)
            for size in options.clients:
                print(f"  N = {size:,}")
                await chat.grow(stack.websocket_url, size)
                for number in range(1, options.warmup + 1):
                    result, work = await broadcaster.send()
                    print(broadcast_line(f"warm-up {number}", result, work))
                measured = []
                for number in range(1, options.broadcasts + 1):
                    result, work = await broadcaster.send()
                    measured.append(result)
                    print(broadcast_line(f"broadcast {number}", result, work))
                results.append(SizeResult(plan.latency, plan.strategy, size, tuple(measured)))
    finally:
        # Stop the stack before the clients close: it closes them without running
        # $disconnect, N invocations at once otherwise.
        await asyncio.to_thread(launcher.stop)
        await chat.close()


def run_stack(plan: StackPlan, routes: Path, options: argparse.Namespace,
              results: list[SizeResult]) -> str | None:
    """Start the plan's stack, measure on it, stop it; the date of its AWS latency model."""
    arguments = plan.arguments(routes, options.dynamodb)
    print(f"\n{plan.label}: {shlex.join(['chat-harness', 'local', *arguments])}")
    launcher = LocalStackProcess(arguments)
    try:
        stack = launcher.start()
        if plan.latency:
            print(f"  AWS latency model of {stack.aws_latency}")
        asyncio.run(measure_stack(plan, stack, launcher, options, results))
        return stack.aws_latency
    finally:
        launcher.stop()


# -- report ----------------------------------------------------------------------------------


def print_report(results: list[SizeResult], options: argparse.Namespace) -> list:
    for latency in options.latency:
        mine = [r for r in results if r.latency == latency]
        print(f"\nResults, {latency_label(latency)} ({options.broadcasts} broadcasts per row; "
              f"Lambda timeout {DEFAULT_TIMEOUT_S:g} s)")
        if not mine:
            print("  none (every stack failed)")
            continue
        for line in table_lines(mine):
            print(f"  {line}")
    lines = miss_lines(results)
    if lines:
        print("\nClients that missed a broadcast, by why")
        for line in lines:
            print(f"  {line}")
    checks = goal_checks(results)
    print("\nGoals")
    for check in checks:
        print(f"  {check.line()}")
    return checks


def write_json(path: Path, options: argparse.Namespace, baseline: dict | None,
               results: list[SizeResult], checks: list, failures: list[str],
               latency_table: str | None) -> None:
    document = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "options": {"strategies": options.strategies, "clients": options.clients,
                    "latency": ["on" if on else "off" for on in options.latency],
                    "broadcasts": options.broadcasts, "warmup": options.warmup,
                    "broadcast_timeout_s": options.broadcast_timeout,
                    "dynamodb": options.dynamodb},
        "lambda_timeout_s": DEFAULT_TIMEOUT_S,
        "aws_latency_table": latency_table,
        "baseline": baseline,
        "results": [r.as_json() for r in results],
        "goals": [c.as_json() for c in checks],
        "failures": failures,
    }
    path.write_text(json.dumps(document, indent=2) + "\n")
    print(f"\nResults written to {path}")


def parse_options(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--strategies", type=comma_list(str, FANOUT_STRATEGIES),
                        default=list(FANOUT_STRATEGIES), metavar="S1,S2",
                        help="fan-out strategies, comma-separated (default: all)")
    parser.add_argument("--clients", type=comma_list(positive_int), default=[100, 1000, 5000], metavar="N1,N2",
                        help="numbers of clients N, comma-separated (default 100,1000,5000)")
    parser.add_argument("--latency", type=comma_list(str, tuple(LATENCY_SETTINGS)),
                        default=["off", "on"], metavar="off,on",
                        help="the AWS latency model off, on, or both (default off,on)")
    parser.add_argument("--broadcasts", type=positive_int, default=5, metavar="K",
                        help="measured broadcasts per N (K, default %(default)s)")
    parser.add_argument("--warmup", type=non_negative_int, default=2, metavar="W",
                        help="broadcasts before the measured ones, per N (default %(default)s)")
    parser.add_argument("--broadcast-timeout", type=positive_float,
                        default=DEFAULT_BROADCAST_TIMEOUT_S, metavar="SECONDS",
                        help="how long a broadcast may take to reach everyone "
                             "(default %(default)s)")
    parser.add_argument("--baseline-posts", type=non_negative_int, default=5000, metavar="POSTS",
                        help="posts of the bare-loop baseline, 0 to skip it "
                             "(default %(default)s)")
    parser.add_argument("--dynamodb", default="dynalite", metavar="dynalite|moto|URL",
                        help="the stacks' DynamoDB backend (default %(default)s)")
    parser.add_argument("--json", type=file_in_existing_directory, metavar="PATH",
                        help="also write the results as JSON to PATH")
    options = parser.parse_args(argv)
    options.clients.sort()
    options.latency = [LATENCY_SETTINGS[setting] for setting in options.latency]
    return options


def main(argv: list[str] | None = None) -> int:
    options = parse_options(argv)
    sys.stdout.reconfigure(line_buffering=True)
    needed_files = 2 * max(options.clients) + 1024  # this process's clients, and the stack's
    if raise_open_file_limit(needed_files) < needed_files:
        print(f"warning: the open-file limit (hard limit) is below the {needed_files} "
              f"this run may need")
    started = time.perf_counter()
    print(f"Fan-out benchmark: {os.cpu_count()} CPUs; strategies {', '.join(options.strategies)}; "
          f"N = {', '.join(f'{n:,}' for n in options.clients)}; {options.warmup} warm-up and "
          f"{options.broadcasts} measured broadcasts per N; AWS latency model "
          f"{' and '.join('on' if on else 'off' for on in options.latency)}")
    baseline = measure_baselines(options.baseline_posts) if options.baseline_posts else None

    results: list[SizeResult] = []
    failures: list[str] = []
    latency_table = None
    interrupted = False
    try:
        with tempfile.TemporaryDirectory(prefix="fanout-bench-") as directory:
            routes = write_routes_variant(Path(directory) / "routes.toml",
                                          with_environment(PRESENCE_NOTICES="off"))
            for latency in options.latency:
                for strategy in options.strategies:
                    plan = StackPlan(latency, strategy)
                    try:
                        latency_table = run_stack(plan, routes, options, results) or latency_table
                    except (RuntimeError, OSError, aiohttp.ClientError, StackFileError) as error:
                        failures.append(f"{plan.label}: {error!r}")
                        print(f"  FAILED: {error!r}")
    except KeyboardInterrupt:
        interrupted = True
        failures.append("interrupted (Ctrl-C): the results are those measured before")
        print("\nInterrupted: every stack stopped; the results measured so far follow")
    checks = print_report(results, options)
    for failure in failures:
        print(f"FAILED: {failure}")
    if options.json is not None:
        write_json(options.json, options, baseline, results, checks, failures, latency_table)
    print(f"Total {time.perf_counter() - started:.0f} s")
    return 130 if interrupted else 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
