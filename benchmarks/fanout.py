"""Fan-out benchmark: chat broadcast deliveries/s through the local stack vs a bare boto3 loop.

It measures, in one run:

1. Baseline: deliveries/s of a bare boto3 ``apigatewaymanagementapi``
   ``post_to_connection`` loop, set up as the chat handlers set theirs up
   (system/handlers/chat.py: a ThreadPoolExecutor of FANOUT_CONCURRENCY threads and
   the same botocore Config), posting to a null sink: an aiohttp server in another
   process that answers 200 to ``POST /{stage}/@connections/{id}`` and does nothing
   else. Measured over plain HTTP, then over TLS with a trustme CA as the local
   stack serves @connections, to show what TLS costs.
2. Full stack: ``chat-harness local`` in a child process (LocalStackProcess) and N
   WebSocket clients connected to it; then K chat messages broadcast one at a time,
   each timed from the send until the last of the N clients has it. Printed:
   deliveries/s, its ratio to the plain-HTTP baseline (goal >= 0.8), the time to the
   last recipient p50/p95/max (goal p50 <= 1.5 s), and as a cross-check the
   handler's own FanoutDuration from the stack's EMF metrics file.

The baseline is measured once the clients are connected, just before the
broadcasts, so that the two numbers of the ratio are taken close together.

Run it from the repository root, with the dev venv's Python:

    python benchmarks/fanout.py [--clients 1000] [--broadcasts 10]
                                [--baseline-posts 5000] [--dynamodb dynalite]

Connecting takes most of the run: each $connect posts a join notice to everyone
already connected, N(N-1)/2 posts in all (5 to 6 minutes for 1,000 clients on
2 cores). All traffic stays on 127.0.0.1, every phase has a timeout, and every
process the benchmark starts is stopped when it ends, fails or is interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import multiprocessing
import os
import shlex
import signal
import sys
import tempfile
import time
import uuid
from collections import deque
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path

import boto3
from aiohttp import web
from botocore.config import Config
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from system.handlers.frames import chat_frame
from system.local.apigateway.ids import new_connection_id
from system.local.launcher import LocalStackProcess
from system.local.processes import die_with_parent, raise_open_file_limit
from system.local.tls import local_tls
from system.stackfile import StackFile

# The handlers' fan-out settings (system/handlers/chat.py), repeated here because
# importing that module creates its DynamoDB client as a Lambda container would.
FANOUT_CONCURRENCY = int(os.environ.get("FANOUT_CONCURRENCY", "32"))
HANDLER_CONFIG = Config(
    max_pool_connections=FANOUT_CONCURRENCY, retries={"mode": "standard", "max_attempts": 1}
)

HOST = "127.0.0.1"
STAGE = "local"
REGION = "us-east-1"
# The null sink checks no signature: any credentials sign as much work as the stack's.
SINK_CREDENTIALS = {"aws_access_key_id": "NULLSINK", "aws_secret_access_key": "null-sink"}
# A 1,000-recipient fan-out must not meet the 3 s default Lambda timeout, and the
# connect phase must not meet the 500/s connection rate limit.
STACK_ARGUMENTS = ["--lambda-timeout", "30", "--connect-rate", "100000"]
# Handshakes in flight at once: as many as the stack's ConnectHandler environments
# (--concurrency, default 8). Each $connect posts a join notice to everyone already
# connected, about a second's work near 1,000 clients; handshakes queued behind more
# would wait for a free environment, towards API Gateway's 29 s integration timeout.
CONNECT_CONCURRENCY = 8
CONNECT_PROGRESS_EVERY = 100

SINK_START_TIMEOUT_S = 30
BASELINE_TIMEOUT_S = 300
CONNECT_PHASE_TIMEOUT_S = 1800
HANDSHAKE_TIMEOUT_S = 60
JOIN_DRAIN_TIMEOUT_S = 120
BROADCAST_TIMEOUT_S = 60
METRICS_WAIT_S = 10
CLIENT_CLOSE_TIMEOUT_S = 30

GOAL_RATIO = 0.8
GOAL_P50_S = 1.5


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
    """Time ``posts`` post_to_connection calls over FANOUT_CONCURRENCY threads, after a
    warm-up that opens the client's connection pool."""
    client = boto3.client("apigatewaymanagementapi", endpoint_url=endpoint, region_name=REGION,
                          verify=str(ca_bundle) if ca_bundle else None, config=HANDLER_CONFIG,
                          **SINK_CREDENTIALS)
    data = sample_chat_frame()
    recipients = [new_connection_id() for _ in range(posts)]

    def post(recipient: str) -> None:
        client.post_to_connection(ConnectionId=recipient, Data=data)

    pool = ThreadPoolExecutor(max_workers=FANOUT_CONCURRENCY, thread_name_prefix="fanout")
    try:
        list(pool.map(post, recipients[: 4 * FANOUT_CONCURRENCY], timeout=BASELINE_TIMEOUT_S))
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


# -- full stack: N WebSocket clients, K broadcasts ------------------------------------------


@dataclass
class Broadcast:
    """One chat message on its way to ``expected`` clients."""

    marker: str
    expected: int
    sent_at: float
    received: int = 0
    last_received_at: float = 0.0
    complete: asyncio.Event = field(default_factory=asyncio.Event)

    def receive(self, now: float) -> None:
        self.received += 1
        self.last_received_at = now
        if self.received == self.expected:
            self.complete.set()

    @property
    def time_to_last(self) -> float:
        return self.last_received_at - self.sent_at


class ChatClients:
    """WebSocket clients that read every frame (join notices included, so the stack is
    never held up by a full socket) and count arrivals of the current broadcast."""

    def __init__(self) -> None:
        self.sockets: list[ClientConnection] = []
        self.current: Broadcast | None = None
        self._readers: set[asyncio.Task] = set()

    async def connect(self, url: str, count: int) -> None:
        gate = asyncio.Semaphore(CONNECT_CONCURRENCY)
        started = time.perf_counter()

        async def connect_one() -> None:
            async with gate:
                ws = await connect(url, open_timeout=HANDSHAKE_TIMEOUT_S, ping_interval=None,
                                   compression=None, close_timeout=2)
            self.sockets.append(ws)
            if len(self.sockets) % CONNECT_PROGRESS_EVERY == 0:
                print(f"  {len(self.sockets):>5} connected after "
                      f"{time.perf_counter() - started:.0f} s")
            reader = asyncio.create_task(self._read(ws))
            self._readers.add(reader)
            reader.add_done_callback(self._readers.discard)

        try:
            async with asyncio.timeout(CONNECT_PHASE_TIMEOUT_S), asyncio.TaskGroup() as group:
                for _ in range(count):
                    group.create_task(connect_one())
        except TimeoutError:
            raise RuntimeError(f"only {len(self.sockets)} of {count} clients connected in "
                               f"{CONNECT_PHASE_TIMEOUT_S} s") from None
        except ExceptionGroup as failures:
            raise RuntimeError(f"{len(self.sockets)} of {count} clients connected, then: "
                               f"{failures.exceptions[0]!r}") from failures

    async def _read(self, ws: ClientConnection) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for message in ws:
                broadcast = self.current
                if broadcast is not None and broadcast.marker in message:
                    broadcast.receive(time.perf_counter())

    async def broadcast(self, timeout: float) -> Broadcast:
        """Send one chat message from the first client; wait until every client has it,
        or ``timeout`` passes."""
        marker = f"fanout-{uuid.uuid4().hex}"
        broadcast = Broadcast(marker, len(self.sockets), time.perf_counter())
        self.current = broadcast
        await self.sockets[0].send(json.dumps({"action": "sendmessage", "message": marker}))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(broadcast.complete.wait(), timeout)
        self.current = None
        return broadcast

    async def close(self) -> None:
        async with asyncio.timeout(CLIENT_CLOSE_TIMEOUT_S):
            await asyncio.gather(*(ws.close() for ws in self.sockets), return_exceptions=True)
            await asyncio.gather(*self._readers, return_exceptions=True)


class FanoutMetrics:
    """The FanoutDuration of each sendmessage invocation, read as the stack appends its
    EMF lines to the metrics file (once per invocation, after its last post)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._offset = 0
        self._durations_ms: deque[float] = deque()

    def _read_new_lines(self) -> None:
        with self.path.open("rb") as metrics:
            metrics.seek(self._offset)
            chunk = metrics.read()
        complete = chunk[: chunk.rfind(b"\n") + 1]
        self._offset += len(complete)
        for line in complete.splitlines():
            if b'"FanoutDuration"' in line:
                document = json.loads(line)
                if document.get("Route") == "sendmessage":
                    self._durations_ms.append(float(document["FanoutDuration"]))

    async def next_invocation_ms(self) -> float | None:
        """The next finished invocation's FanoutDuration, or None if none finishes within
        METRICS_WAIT_S. Once it is there the handler is idle, so the next broadcast
        finds its warm environment free rather than starting another."""
        deadline = time.monotonic() + METRICS_WAIT_S
        while True:
            self._read_new_lines()
            if self._durations_ms:
                return self._durations_ms.popleft()
            if time.monotonic() >= deadline:
                return None
            await asyncio.sleep(0.02)


async def connect_and_drain(chat: ChatClients, metrics: FanoutMetrics, url: str,
                            clients: int) -> None:
    print(f"Connecting {clients} clients, {CONNECT_CONCURRENCY} at a time")
    started = time.perf_counter()
    await chat.connect(url, clients)
    print(f"  connected {clients} clients in {time.perf_counter() - started:.1f} s")
    # Every $connect posted a join notice to the clients before it. A connection
    # delivers in order, so once every client has this sentinel, each has read all
    # its notices; once the sentinel's invocation has finished, the stack is idle.
    sentinel = await chat.broadcast(JOIN_DRAIN_TIMEOUT_S)
    if not sentinel.complete.is_set():
        raise RuntimeError(f"the join notices did not drain in {JOIN_DRAIN_TIMEOUT_S} s: "
                           f"{sentinel.received} of {clients} clients got the sentinel")
    await metrics.next_invocation_ms()
    print(f"  join notices drained in {sentinel.time_to_last:.1f} s")


def measure_baselines(posts: int) -> tuple[PostRate, PostRate]:
    # Measured here rather than first: the connect phase takes minutes, and a shared
    # machine's speed drifts more than that between far-apart measurements.
    print(f"Baseline, just before the broadcasts: bare boto3 post_to_connection loop -> "
          f"null aiohttp sink, {posts} posts")
    plain = measure_baseline(posts, tls=False)
    print(f"  plain HTTP  {plain.seconds:6.2f} s  {plain.per_second:6.0f} deliveries/s")
    tls = measure_baseline(posts, tls=True)
    print(f"  HTTPS       {tls.seconds:6.2f} s  {tls.per_second:6.0f} deliveries/s  "
          f"({tls.per_second / plain.per_second:.2f} x plain HTTP)")
    return plain, tls


async def run_broadcasts(chat: ChatClients, metrics: FanoutMetrics,
                         count: int) -> tuple[list[Broadcast], list[float]]:
    """``count`` broadcasts one at a time, each started once the previous invocation ended;
    returns them and the handler's FanoutDuration (ms) of each that reported one."""
    recipients = len(chat.sockets)
    print(f"Broadcasts: {count} x {recipients} recipients, one at a time")
    broadcasts: list[Broadcast] = []
    durations_ms: list[float] = []
    for number in range(1, count + 1):
        broadcast = await chat.broadcast(BROADCAST_TIMEOUT_S)
        broadcasts.append(broadcast)
        handler_ms = await metrics.next_invocation_ms()
        outcome = (f"{broadcast.time_to_last:.3f} s to the last recipient"
                   if broadcast.complete.is_set() else
                   f"INCOMPLETE: {broadcast.received} of {recipients} in {BROADCAST_TIMEOUT_S} s")
        if handler_ms is None:
            handler = f"no metrics line within {METRICS_WAIT_S} s"
        else:
            durations_ms.append(handler_ms)
            handler = f"handler FanoutDuration {handler_ms / 1000:.3f} s"
        print(f"  broadcast {number:>2}: {outcome}  ({handler})")
    return broadcasts, durations_ms


@dataclass
class Measurements:
    plain: PostRate
    tls: PostRate
    broadcasts: list[Broadcast]
    fanout_durations_ms: list[float]


async def measure(stack: StackFile, launcher: LocalStackProcess,
                  options: argparse.Namespace) -> Measurements:
    chat = ChatClients()
    metrics = FanoutMetrics(Path(stack.metrics_file))
    try:
        await connect_and_drain(chat, metrics, stack.websocket_url, options.clients)
        plain, tls = await asyncio.to_thread(measure_baselines, options.baseline_posts)
        broadcasts, durations_ms = await run_broadcasts(chat, metrics, options.broadcasts)
        return Measurements(plain, tls, broadcasts, durations_ms)
    finally:
        # Stop the stack before the clients close: it closes them without running
        # $disconnect, whose leave notices would be another N x N posts.
        await asyncio.to_thread(launcher.stop)
        await chat.close()


# -- report ----------------------------------------------------------------------------------


def percentile(values: list[float], percent: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(percent / 100 * len(ordered)) - 1)]


def verdict(met: bool) -> str:
    return "met" if met else "NOT MET"


def print_results(results: Measurements, clients: int) -> None:
    delivered = sum(b.received for b in results.broadcasts)
    seconds = sum(b.time_to_last if b.complete.is_set() else BROADCAST_TIMEOUT_S
                  for b in results.broadcasts)
    rate = delivered / seconds
    ratio = rate / results.plain.per_second
    print("Results")
    print(f"  full stack  {seconds:6.2f} s  {rate:6.0f} deliveries/s  "
          f"({delivered} of {clients * len(results.broadcasts)} delivered; the time is the "
          f"sum of send-to-last-recipient times)")
    print(f"  full stack / bare loop (plain HTTP): {ratio:.3f}  goal >= {GOAL_RATIO}  "
          f"{verdict(ratio >= GOAL_RATIO)}  (/ HTTPS loop: {rate / results.tls.per_second:.2f})")
    complete = [b.time_to_last for b in results.broadcasts if b.complete.is_set()]
    if complete:
        p50 = percentile(complete, 50)
        print(f"  time to last recipient ({len(complete)} broadcasts): p50 {p50:.3f} s  "
              f"p95 {percentile(complete, 95):.3f} s  max {max(complete):.3f} s  "
              f"goal p50 <= {GOAL_P50_S} s  {verdict(p50 <= GOAL_P50_S)}")
    else:
        print(f"  time to last recipient: no broadcast reached every client  "
              f"goal p50 <= {GOAL_P50_S} s  NOT MET")
    durations_ms = results.fanout_durations_ms
    if durations_ms:
        print(f"  handler FanoutDuration p50 (EMF metrics, {len(durations_ms)} invocations): "
              f"{percentile(durations_ms, 50) / 1000:.3f} s")
    else:
        print("  handler FanoutDuration: no sendmessage metrics found")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=1000, help="WebSocket clients (N)")
    parser.add_argument("--broadcasts", type=int, default=10, help="measured broadcasts (K)")
    parser.add_argument("--baseline-posts", type=int, default=5000,
                        help="post_to_connection calls per baseline")
    parser.add_argument("--dynamodb", default="dynalite", metavar="dynalite|moto|URL",
                        help="the stack's DynamoDB backend")
    options = parser.parse_args(argv)
    for name in ("clients", "broadcasts", "baseline_posts"):
        if getattr(options, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    sys.stdout.reconfigure(line_buffering=True)
    needed_files = 2 * options.clients + 1024  # this process's clients, and the stack's
    if raise_open_file_limit(needed_files) < needed_files:
        print(f"warning: the open-file limit (hard limit) is below the {needed_files} "
              f"this run may need")
    started = time.perf_counter()

    stack_arguments = [*STACK_ARGUMENTS, "--dynamodb", options.dynamodb]
    print(f"Fan-out benchmark: {os.cpu_count()} CPUs, FANOUT_CONCURRENCY={FANOUT_CONCURRENCY}, "
          f"{options.clients} clients, {options.broadcasts} broadcasts")
    print(f"Full stack: {shlex.join(['chat-harness', 'local', *stack_arguments])}")
    launcher = LocalStackProcess(stack_arguments)
    try:
        stack = launcher.start()
        results = asyncio.run(measure(stack, launcher, options))
    finally:
        launcher.stop()
    print_results(results, options.clients)
    print(f"Total {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
