"""Heartbeat-users benchmark: can ONE Locust process hold 10,000 idle chat users?

Goal: one Locust process holds N users (default 10,000) that only heartbeat (every
30 s) and listen, using at most 30 % of a core. It also measures how many received
frames per second those users' listeners sustain.

Everything runs on 127.0.0.1, in two child processes:

* The bare server: a ``websockets`` asyncio server on a free port, with compression
  off and no keepalive pings (API Gateway sends none either). It accepts any
  connection, counts and drops what clients send (their heartbeats), and on request
  broadcasts (``websockets.asyncio.server.broadcast``) a small chat frame, shaped like
  the chat's own broadcast, to every connection on a fixed schedule.
* The Locust process: ``locust.env.Environment`` with a local runner, in a spawned
  child so that gevent's monkey-patching stays out of this process. Its users are
  loadtest.chat_user.ChatUser set up to only heartbeat and listen: the chat task
  sleeps for years and no message may leave (``stop_sending_at = 0``). Each
  broadcast's ``text`` is a ChatPayload of this run, so every frame takes the
  listener's real path: JSON decode, ChatPayload.decode, FanoutLedger.received and the
  FANOUT/per-recipient row of Locust's statistics (fed each second; its count is the
  number of frames received, its requests per second place them in the window). Its
  live figures are taken every report and dropped, as the locustfile ships them.

Phases, each bounded by a timeout:

1. Connect: N users spawned at --spawn-rate per second; the time until the server
   holds N connections, and the Locust process's CPU share meanwhile.
2. Quiet window (--quiet-window s, heartbeats only): the Locust process's CPU share
   (goal <= 30 % of a core) and, as a cross-check, the heartbeats per second the server
   received against those due (N / --heartbeat-s over a window of a whole number of
   heartbeat intervals; otherwise counted from each connection's open time, as
   ChatUser sends its first heartbeat one interval after connecting).
3. Broadcast window (--broadcast-window s): the server broadcasts --broadcasts-per-s
   frames a second to every connection (N x that many frames/s offered). Measured:
   the frames per second all listeners together received in the window, the CPU share
   of both processes, the heartbeats still arriving (against those due) and the
   Locust process's event-loop lag. Then the drain: how long after the window the
   listeners had every frame the server wrote, and the time from each frame's
   broadcast to its receipt (HDR percentiles from the FanoutLedger).

Run it from the repository root, with the dev venv's Python:

    python benchmarks/heartbeat_users.py [--users 10000] [--heartbeat-s 30]
        [--quiet-window 30] [--broadcasts-per-s 2] [--broadcast-window 20]
        [--spawn-rate 500]

Both processes raise their open-file limit to the hard limit (each holds N sockets).
Every process the benchmark starts is stopped when it ends, fails or is interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import logging
import math
import multiprocessing
import os
import signal
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any

import psutil

from loadtest.measurement import ChatPayload, FanoutLedger
from system.handlers.frames import chat_frame
from system.local.processes import die_with_parent, raise_open_file_limit

HOST = "127.0.0.1"
SERVER_SENDER = "bare-server"
# The heartbeat users' chat rate: a first message due years from now (and none may
# leave anyway, see HeartbeatUser).
NO_CHAT_MESSAGES_PER_MINUTE = 1e-6
GOAL_CPU_PERCENT = 30.0
FILES_BESIDES_SOCKETS = 256
LISTEN_BACKLOG = 4096

REPORT_EVERY_S = 0.5  # the Locust process's status messages
PROGRESS_EVERY_S = 5.0
START_TIMEOUT_S = 60  # a child process up and answering
REPLY_TIMEOUT_S = 10
CONNECT_MARGIN_S = 120  # on top of users / spawn rate
BROADCAST_MARGIN_S = 30  # on top of the broadcast window
DRAIN_TIMEOUT_S = 120
GENERATOR_STOP_TIMEOUT_S = 120
SERVER_STOP_TIMEOUT_S = 15


def quiet_child(needed_files: int) -> None:
    """A child's setup: it dies with the parent, leaves Ctrl-C to it, can hold its sockets."""
    die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    raise_open_file_limit(needed_files)


# -- the bare server (child process) --------------------------------------------------------


def timed_chat_frame(run_id: str, seq: int) -> str:
    """A chat broadcast shaped like the chat's own, whose text is a ChatPayload of this
    run sent now, so that ChatUser's listeners count and time it."""
    now = time.time()
    payload = ChatPayload(run_id, uuid.uuid4().hex, SERVER_SENDER, seq, now, now)
    sent_at = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now * 1000) % 1000:03d}Z"
    text = payload.encode()
    return json.dumps(chat_frame(payload.message_id, SERVER_SENDER, sent_at, text))


def run_server(channel: Connection, run_id: str, users: int) -> None:
    """Child process: send the parent the port, then answer its commands until told to
    stop: ("stats",), ("opened",), ("broadcast", per_s, seconds), ("stop",)."""
    # Imported here, not at the top: asyncio imports ssl, and the Locust child, which
    # imports this module too, must let gevent patch ssl before anything imports it.
    import asyncio

    from websockets.asyncio.server import Server, ServerConnection, broadcast, serve
    from websockets.exceptions import ConnectionClosed

    quiet_child(users + FILES_BESIDES_SOCKETS)
    client_frames = 0
    opened: list[float] = []  # epoch s, each connection's

    async def drop_client_frames(connection: ServerConnection) -> None:
        nonlocal client_frames
        opened.append(time.time())
        with contextlib.suppress(ConnectionClosed):
            async for _ in connection:
                client_frames += 1

    async def broadcast_for(server: Server, per_s: float, seconds: float) -> dict[str, float]:
        """``per_s`` broadcasts a second to every open connection for ``seconds``, each
        on its own scheduled time; returns when the window ends."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        broadcasts = round(per_s * seconds)
        written = failed = 0
        behind_s = 0.0
        for seq in range(broadcasts):
            due = started + seq / per_s
            await asyncio.sleep(max(0.0, due - loop.time()))
            behind_s = max(behind_s, loop.time() - due)
            connections = server.connections
            try:
                broadcast(connections, timed_chat_frame(run_id, seq), raise_exceptions=True)
            except ExceptionGroup as skipped:
                failed += len(skipped.exceptions)
            written += len(connections)
        await asyncio.sleep(max(0.0, started + seconds - loop.time()))
        return {"broadcasts": broadcasts, "written": written - failed, "failed": failed,
                "behind_ms": behind_s * 1000}

    async def serve_until_stopped() -> None:
        async with serve(drop_client_frames, HOST, 0, compression=None, ping_interval=None,
                         backlog=LISTEN_BACKLOG) as server:
            channel.send(server.sockets[0].getsockname()[1])
            while True:
                match await asyncio.to_thread(channel.recv):
                    case ("stats",):
                        channel.send({"connections": len(server.connections),
                                      "client_frames": client_frames})
                    case ("opened",):
                        channel.send(opened)
                    case ("broadcast", per_s, seconds):
                        channel.send(await broadcast_for(server, per_s, seconds))
                    case ("stop",):
                        return

    asyncio.run(serve_until_stopped())


# -- the Locust process (child process) -----------------------------------------------------


def run_generator(channel: Connection, host: str, run_id: str, users: int, spawn_rate: float,
                  heartbeat_s: float) -> None:
    """Child process: ONE Locust process running ``users`` heartbeat users against ``host``.
    Sends ("started", epoch s) once spawning starts, then ("status", {...}) every
    REPORT_EVERY_S; answers ("fanout",) with ("fanout", {...}); quits on ("stop",)."""
    # Imported here: importing locust monkey-patches with gevent, which must not happen
    # in the parent or the server.
    import gevent
    import locust  # noqa: F401 - before the rest, so gevent patches sockets first
    from locust.env import Environment

    from loadtest.chat_user import ChatUser

    quiet_child(users + FILES_BESIDES_SOCKETS)
    logging.basicConfig(level=logging.WARNING,
                        format="  [Locust process] %(levelname)s %(name)s: %(message)s")

    class HeartbeatUser(ChatUser):
        """Heartbeats and listens only: its first chat message is due in years, and no
        message may leave after ``stop_sending_at``."""

        messages_per_minute = NO_CHAT_MESSAGES_PER_MINUTE
        stop_sending_at = 0.0

    ledger = FanoutLedger()
    HeartbeatUser.host = host
    HeartbeatUser.ledger = ledger
    HeartbeatUser.run_id = run_id
    HeartbeatUser.heartbeat_s = heartbeat_s

    environment = Environment(user_classes=[HeartbeatUser], host=host)
    runner = environment.create_local_runner()
    stats = environment.stats
    runner.start(users, spawn_rate=spawn_rate)
    channel.send(("started", time.time()))
    try:
        while True:
            gevent.sleep(REPORT_EVERY_S)
            HeartbeatUser.live.take()  # as the locustfile ships it to the web UI: not kept
            channel.send(("status", {
                "at": time.time(),
                "spawned": runner.user_count,
                "connect_failures": stats.get("connect", "WS").num_failures,
                "reconnects": stats.get("reconnect", "WS").num_requests,
                "heartbeat_failures": stats.get("heartbeat", "WS").num_failures,
                "received": stats.get("per-recipient", "FANOUT").num_requests,
            }))
            if channel.poll():
                match channel.recv():
                    case ("fanout",):
                        channel.send(("fanout", {
                            "latency_ms": ledger.fanout.summary(),
                            "duplicated": ledger.duplicated,
                            "out_of_order": ledger.out_of_order,
                            "receipts_by_s": dict(
                                stats.get("per-recipient", "FANOUT").num_reqs_per_sec),
                        }))
                    case ("stop",):
                        return
    finally:
        runner.quit()


# -- the parent: phases and measurements ----------------------------------------------------


class Child:
    """A spawned child process and this end of its duplex pipe."""

    def __init__(self, name: str, target: Callable[..., None], *args: object) -> None:
        context = multiprocessing.get_context("spawn")
        self.name = name
        self.channel, child_end = context.Pipe()
        self.process = context.Process(target=target, args=(child_end, *args), name=name,
                                       daemon=True)
        self.process.start()
        child_end.close()
        self.usage = psutil.Process(self.process.pid)

    def send(self, *command: object) -> None:
        try:
            self.channel.send(command)
        except OSError:  # its end is closed
            raise RuntimeError(self._exited()) from None

    def receive(self, timeout: float) -> Any:
        if not self.channel.poll(timeout):
            raise RuntimeError(f"the {self.name} sent nothing in {timeout} s")
        try:
            return self.channel.recv()
        except EOFError:
            raise RuntimeError(self._exited()) from None

    def _exited(self) -> str:
        self.process.join(1)
        return f"the {self.name} exited (exit code {self.process.exitcode})"

    def cpu_seconds(self) -> float:
        times = self.usage.cpu_times()
        return times.user + times.system

    def stop(self, timeout: float) -> float:
        """Ask the child to stop; terminate it (then kill it) if it does not within
        ``timeout``. Returns the seconds it took."""
        started = time.perf_counter()
        if self.process.is_alive():
            with contextlib.suppress(RuntimeError):  # it is exiting already
                self.send("stop")
            self.process.join(timeout)
        if self.process.is_alive():
            print(f"  the {self.name} did not stop in {timeout} s: terminating it")
            self.process.terminate()
            self.process.join(5)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
        self.channel.close()
        return time.perf_counter() - started


@dataclass(frozen=True)
class Mark:
    """Counters read at one moment, to difference over a window."""

    at: float  # epoch s
    generator_cpu_s: float
    server_cpu_s: float
    client_frames: int  # frames the server received (heartbeats)
    connections: int


@dataclass(frozen=True)
class HeartbeatSchedule:
    """When ChatUser heartbeats are due: every ``heartbeat_s`` from its connection's open
    time. A window that is not a whole number of intervals sees only some users'."""

    opened: list[float]  # epoch s, each connection's, as the server saw it
    heartbeat_s: float

    def due_between(self, start: float, end: float) -> int:
        h = self.heartbeat_s
        return sum(max(0, math.floor((end - c) / h)) - max(0, math.floor((start - c) / h))
                   for c in self.opened)


@dataclass(frozen=True)
class Window:
    seconds: float
    generator_cpu_percent: float  # of one core
    server_cpu_percent: float
    heartbeats_per_s: float  # received by the server
    heartbeats_due_per_s: float
    # The Locust process's event loop: the longest it held back its status report (due
    # every REPORT_EVERY_S), over the gaps between reports that overlap the window.
    loop_lag_max_ms: float

    @classmethod
    def between(cls, start: Mark, end: Mark, statuses: list[dict],
                schedule: HeartbeatSchedule) -> Window:
        seconds = end.at - start.at
        lags = [1000 * max(0.0, later["at"] - earlier["at"] - REPORT_EVERY_S)
                for earlier, later in itertools.pairwise(statuses)
                if earlier["at"] < end.at and later["at"] > start.at]
        return cls(seconds, 100 * (end.generator_cpu_s - start.generator_cpu_s) / seconds,
                   100 * (end.server_cpu_s - start.server_cpu_s) / seconds,
                   (end.client_frames - start.client_frames) / seconds,
                   schedule.due_between(start.at, end.at) / seconds, max(lags, default=0.0))


class Bench:
    """The two children, and what the Locust process has reported so far."""

    def __init__(self, server: Child, generator: Child) -> None:
        self.server = server
        self.generator = generator
        self.spawning_since: float | None = None
        self.statuses: list[dict] = []
        self.fanout: dict | None = None

    @property
    def status(self) -> dict:
        if not self.statuses:
            raise RuntimeError("the Locust process has not reported yet")
        return self.statuses[-1]

    def _take_generator_message(self, timeout: float = 0) -> None:
        kind, data = self.generator.receive(timeout)
        if kind == "started":
            self.spawning_since = data
        elif kind == "status":
            self.statuses.append(data)
        else:
            self.fanout = data

    def pump(self, seconds: float) -> None:
        """Take in the Locust process's messages for ``seconds``."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            if self.generator.channel.poll(left):
                self._take_generator_message()

    def wait_until_spawning(self) -> float:
        """When the Locust process started spawning users (epoch s)."""
        deadline = time.monotonic() + START_TIMEOUT_S
        while self.spawning_since is None:
            self._take_generator_message(max(0.0, deadline - time.monotonic()))
        return self.spawning_since

    def ask_server(self, *command: object, timeout: float = REPLY_TIMEOUT_S) -> dict:
        """The server's answer to ``command``, taking in the Locust process's messages
        while waiting."""
        self.server.send(*command)
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            ready = wait([self.server.channel, self.generator.channel], left)
            if self.generator.channel in ready:
                self._take_generator_message()
            if self.server.channel in ready:
                return self.server.receive(0)
        raise RuntimeError(f"the {self.server.name} did not answer {command[0]!r} in {timeout} s")

    def ask_generator_fanout(self) -> dict:
        self.fanout = None
        self.generator.send("fanout")
        deadline = time.monotonic() + REPLY_TIMEOUT_S
        while self.fanout is None:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the {self.generator.name} did not report its fan-out "
                                   f"in {REPLY_TIMEOUT_S} s")
            self.pump(REPORT_EVERY_S)
        return self.fanout

    def mark(self) -> Mark:
        stats = self.ask_server("stats")
        return Mark(time.time(), self.generator.cpu_seconds(), self.server.cpu_seconds(),
                    stats["client_frames"], stats["connections"])


def verdict(met: bool) -> str:
    return "met" if met else "NOT MET"


@dataclass(frozen=True)
class Connected:
    users: int
    seconds: float
    window: Window
    rss_mb: float


def connect_users(bench: Bench, users: int, spawn_rate: float,
                  heartbeat_s: float) -> tuple[Connected, HeartbeatSchedule]:
    print(f"Connect: spawning {users} users at {spawn_rate:g}/s")
    spawning_since = bench.wait_until_spawning()
    start = bench.mark()
    deadline = time.monotonic() + users / spawn_rate + CONNECT_MARGIN_S
    next_progress = time.monotonic() + PROGRESS_EVERY_S
    while True:
        bench.pump(REPORT_EVERY_S)
        connections = bench.ask_server("stats")["connections"]
        if connections >= users and bench.statuses:  # and the process has reported
            break
        if time.monotonic() > deadline:
            status = bench.statuses[-1] if bench.statuses else {}
            raise RuntimeError(f"only {connections} of {users} users connected in time "
                               f"({status.get('spawned', 0)} spawned, "
                               f"{status.get('connect_failures', 0)} connect failures)")
        if time.monotonic() >= next_progress:
            next_progress += PROGRESS_EVERY_S
            spawned = bench.statuses[-1]["spawned"] if bench.statuses else 0
            print(f"  {time.time() - spawning_since:5.1f} s: "
                  f"{spawned:>6} spawned, {connections:>6} connected")
    end = bench.mark()
    seconds = end.at - spawning_since
    status = bench.status
    print(f"  all {users} connected {seconds:.1f} s after spawning started "
          f"({status['connect_failures']} connect failures, {status['reconnects']} reconnects)")
    schedule = HeartbeatSchedule(bench.ask_server("opened"), heartbeat_s)
    connected = Connected(end.connections, seconds,
                          Window.between(start, end, bench.statuses, schedule),
                          bench.generator.usage.memory_info().rss / 2**20)
    return connected, schedule


def measure_quiet(bench: Bench, seconds: float, schedule: HeartbeatSchedule) -> Window:
    print(f"Quiet window: {seconds:g} s of heartbeats only")
    start = bench.mark()
    bench.pump(seconds)
    window = Window.between(start, bench.mark(), bench.statuses, schedule)
    print(f"  Locust process CPU {window.generator_cpu_percent:.1f} % of a core, heartbeats "
          f"{window.heartbeats_per_s:.0f}/s at the server ({window.heartbeats_due_per_s:.0f}/s "
          f"due), event-loop lag max {window.loop_lag_max_ms:.0f} ms")
    return window


@dataclass(frozen=True)
class Broadcasts:
    offered_per_s: float  # frames/s the server wrote, over the window
    received_per_s: float  # frames/s all listeners together received in the window
    window: Window
    written: int
    received: int  # by the end of the drain
    drain_s: float | None  # None: not all received within DRAIN_TIMEOUT_S
    fanout: dict


def measure_broadcasts(bench: Bench, per_s: float, seconds: float,
                       schedule: HeartbeatSchedule) -> Broadcasts:
    users = bench.status["spawned"]
    print(f"Broadcast window: {per_s:g} broadcasts/s to every connection for {seconds:g} s "
          f"({per_s * users:.0f} frames/s offered)")
    received_before = bench.status["received"]  # the quiet window received nothing
    start = bench.mark()
    result = bench.ask_server("broadcast", per_s, seconds, timeout=seconds + BROADCAST_MARGIN_S)
    end = bench.mark()
    written = result["written"]

    drain_deadline = time.monotonic() + DRAIN_TIMEOUT_S
    next_progress = time.monotonic() + PROGRESS_EVERY_S
    bench.pump(REPORT_EVERY_S)  # at least one report after the window
    while (bench.status["received"] - received_before < written
           and time.monotonic() < drain_deadline):
        if time.monotonic() >= next_progress:
            next_progress += PROGRESS_EVERY_S
            report = bench.status
            print(f"  draining: {report['received'] - received_before} of {written} frames "
                  f"received at the Locust process's last report, {time.time() - report['at']:.0f}"
                  f" s ago")
        bench.pump(REPORT_EVERY_S)
    received = bench.status["received"] - received_before
    all_received_at = next((s["at"] for s in bench.statuses
                            if s["received"] - received_before >= written), None)
    drain_s = None if all_received_at is None else max(0.0, all_received_at - end.at)
    fanout = bench.ask_generator_fanout()
    window = Window.between(start, end, bench.statuses, schedule)
    in_window = receipts_between(fanout["receipts_by_s"], start.at, end.at)
    received_per_s = in_window / window.seconds

    print(f"  the server wrote {written} frames in {result['broadcasts']} broadcasts "
          f"({result['failed']} failed writes, at most {result['behind_ms']:.0f} ms behind "
          f"schedule); server CPU {window.server_cpu_percent:.0f} % of a core")
    print(f"  listeners received {received_per_s:.0f} frames/s in the window; Locust process "
          f"CPU {window.generator_cpu_percent:.0f} % of a core, heartbeats "
          f"{window.heartbeats_per_s:.0f}/s at the server ({window.heartbeats_due_per_s:.0f}/s "
          f"due), event-loop lag max {window.loop_lag_max_ms:.0f} ms")
    print(f"  drain: {drain_text(drain_s, received, written)}")
    latency = fanout["latency_ms"]
    print(f"  broadcast to receipt (ms): p50 {latency['p50']:.0f}  p95 {latency['p95']:.0f}  "
          f"p99 {latency['p99']:.0f}  max {latency['max']:.0f}  ({latency['count']} receipts, "
          f"{fanout['duplicated']} duplicated, {fanout['out_of_order']} out of order)")
    return Broadcasts(written / seconds, received_per_s, window, written, received, drain_s,
                      fanout)


def receipts_between(receipts_by_s: dict[int, int], start: float, end: float) -> float:
    """Receipts from ``start`` to ``end`` (epoch s), from counts per whole second (Locust's),
    each second's spread evenly over it."""
    return sum(count * max(0.0, min(second + 1, end) - max(second, start))
               for second, count in receipts_by_s.items())


def drain_text(drain_s: float | None, received: int, written: int) -> str:
    if drain_s is None:
        return f"{received} of {written} frames received {DRAIN_TIMEOUT_S} s after the window"
    if drain_s == 0:
        return f"all {written} frames received by the end of the window"
    return f"all {written} frames received {drain_s:.1f} s after the window"


def print_results(options: argparse.Namespace, connected: Connected, quiet: Window,
                  broadcasts: Broadcasts, last_status: dict, stop_s: float) -> None:
    cpu_met = quiet.generator_cpu_percent <= GOAL_CPU_PERCENT
    latency = broadcasts.fanout["latency_ms"]
    print(f"Results ({options.users} heartbeat users, heartbeat every {options.heartbeat_s:g} s, "
          f"one Locust process, {os.cpu_count()} CPUs)")
    print(f"  users connected        {connected.users} in {connected.seconds:.1f} s "
          f"(Locust process CPU {connected.window.generator_cpu_percent:.0f} % meanwhile, "
          f"RSS {connected.rss_mb:.0f} MB)")
    print(f"  quiet CPU share        {quiet.generator_cpu_percent:.1f} % of a core over "
          f"{quiet.seconds:.0f} s  goal <= {GOAL_CPU_PERCENT:g} %  {verdict(cpu_met)}")
    print(f"  heartbeats at server   {quiet.heartbeats_per_s:.0f}/s quiet "
          f"({quiet.heartbeats_due_per_s:.0f}/s due; users / heartbeat interval = "
          f"{options.users / options.heartbeat_s:.0f}/s), "
          f"{broadcasts.window.heartbeats_per_s:.0f}/s broadcasting "
          f"({broadcasts.window.heartbeats_due_per_s:.0f}/s due)")
    print(f"  received frames/s      {broadcasts.received_per_s:.0f} by all listeners "
          f"(offered {broadcasts.offered_per_s:.0f}/s), Locust process CPU "
          f"{broadcasts.window.generator_cpu_percent:.0f} % of a core then, event-loop lag "
          f"max {broadcasts.window.loop_lag_max_ms / 1000:.1f} s")
    print(f"  drain                  "
          f"{drain_text(broadcasts.drain_s, broadcasts.received, broadcasts.written)}; "
          f"broadcast to receipt p50 {latency['p50']:.0f} ms, p99 {latency['p99']:.0f} ms")
    print(f"  failures               {last_status['connect_failures']} connects, "
          f"{last_status['heartbeat_failures']} heartbeat sends, "
          f"{last_status['reconnects']} reconnects")
    print(f"  stopping the users     {stop_s:.1f} s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=10_000, help="heartbeat users (N)")
    parser.add_argument("--heartbeat-s", type=float, default=30.0, help="heartbeat interval")
    parser.add_argument("--quiet-window", type=float, default=30.0,
                        help="seconds of heartbeats only, for the CPU share")
    parser.add_argument("--broadcasts-per-s", type=float, default=2.0,
                        help="broadcasts a second to every user in the broadcast window")
    parser.add_argument("--broadcast-window", type=float, default=20.0,
                        help="seconds of broadcasts")
    parser.add_argument("--spawn-rate", type=float, default=500.0, help="users started/s")
    options = parser.parse_args(argv)
    for name in ("users", "heartbeat_s", "quiet_window", "broadcasts_per_s", "broadcast_window",
                 "spawn_rate"):
        if getattr(options, name) <= 0:
            parser.error(f"--{name.replace('_', '-')} must be positive")
    sys.stdout.reconfigure(line_buffering=True)
    if options.quiet_window < options.heartbeat_s:
        print("warning: a quiet window shorter than the heartbeat interval misses heartbeats "
              "(right after connecting, all of them): its CPU share is understated")
    needed_files = options.users + FILES_BESIDES_SOCKETS
    limit = raise_open_file_limit(needed_files)
    if limit < needed_files:
        print(f"warning: open-file limit {limit} (the hard limit) is below the "
              f"{needed_files} each process needs")

    started = time.perf_counter()
    run_id = f"heartbeat-users-{uuid.uuid4().hex[:8]}"
    print(f"Heartbeat-users benchmark: {options.users} users, heartbeat every "
          f"{options.heartbeat_s:g} s, one Locust process, {os.cpu_count()} CPUs, "
          f"open-file limit {limit}")
    server = Child("bare server", run_server, run_id, options.users)
    try:
        port = server.receive(START_TIMEOUT_S)
        host = f"ws://{HOST}:{port}/"
        print(f"Bare server: {host} (websockets, no compression, no pings)")
        generator = Child("Locust process", run_generator, host, run_id, options.users,
                          options.spawn_rate, options.heartbeat_s)
        try:
            bench = Bench(server, generator)
            connected, schedule = connect_users(bench, options.users, options.spawn_rate,
                                                options.heartbeat_s)
            quiet = measure_quiet(bench, options.quiet_window, schedule)
            broadcasts = measure_broadcasts(bench, options.broadcasts_per_s,
                                            options.broadcast_window, schedule)
        finally:
            print("Stopping the Locust process (runner.quit: every user's on_stop)")
            stop_s = generator.stop(GENERATOR_STOP_TIMEOUT_S)
            print(f"  stopped in {stop_s:.1f} s")
    except KeyboardInterrupt:
        print("Interrupted")
        return 130
    except RuntimeError as error:
        print(f"Failed: {error}")
        return 1
    finally:
        server.stop(SERVER_STOP_TIMEOUT_S)
    print_results(options, connected, quiet, broadcasts, bench.status, stop_s)
    print(f"Total {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
