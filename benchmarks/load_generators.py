"""Load-generator benchmark: Artillery and ChatUser against the same bare server, alternating.

Which generator costs less per frame, sent and received? Both run on this machine,
one after the other (Artillery, ChatUser, Artillery, ChatUser, ... for --rounds rounds
each), each against a fresh bare server of benchmarks/heartbeat_users.py (a
``websockets`` server on 127.0.0.1 that counts the frames clients send and broadcasts a
chat frame on a schedule). ChatUser runs as heartbeat_users.py runs it: one Locust
process (a spawned child) whose users only heartbeat and listen. Artillery is the pinned
version, installed into the cache on first use (benchmarks/artillery.py).

1. Sending: --connections N (5,000), each sending one heartbeat a second (Artillery: a
   loop of send and think 1 s; ChatUser: heartbeat_s = 1, chat off). Over a steady
   --window after all N are connected (and --settle seconds more): the generator's CPU
   (all its processes), as % of a core per 1,000 heartbeats/s counted at the server; its
   memory (RSS and USS, all its processes) per connection, read at the window's end.
2. Receiving: --listeners M (2,000), the server broadcasting 2 chat frames a second to
   each (2M frames/s) for the window. Artillery's users only listen (they think for the
   whole run); ChatUser's heartbeat every 30 s as usual and record FANOUT receipts. CPU
   % of a core per 1,000 frames/s received. ChatUser's received frames are its FANOUT
   receipts in the window. Artillery counts no frame that no step waits for, so its
   received frames are the server's writes in the window, confirmed by the kernel's
   socket table (/proc/net/tcp): after the window, nothing left in the server's send
   queues nor unread in its clients' receive queues (the drain time is reported).
3. Capacity (ChatUser only): one Locust process with --capacity-connections users under
   --capacity-broadcasts-per-s broadcasts a second to each (heartbeat_users.py's broadcast
   window): the frames/s it received, its CPU, and whether its heartbeats (every 30 s)
   still arrived on time.

Printed: each round as it ends, then each figure per tool (medians over the rounds) and
the ratios ChatUser/Artillery (below 1: ChatUser is cheaper), and the capacity.
``--json PATH`` writes the same as JSON (benchmarks/load_generator_results.py).

Run it from the repository root, with the dev venv's Python (about 12 minutes):

    python benchmarks/load_generators.py [--connections 5000] [--listeners 2000]
        [--rounds 3] [--window 30] [--json load-generators.json]

A quick check: ``--connections 200 --listeners 200 --rounds 2 --window 10
--capacity-connections 400``. Every phase has a deadline; every process the benchmark
starts is stopped when it ends, fails or is interrupted (Ctrl-C).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict
from datetime import UTC, datetime
from functools import partial
from importlib.metadata import version
from pathlib import Path
from typing import Any

from artillery import (
    ARTILLERY_VERSION,
    Artillery,
    ArtilleryRun,
    heartbeat_flow,
    install_artillery,
    listen_flow,
    memory_of,
    script,
)
from heartbeat_users import (
    BROADCAST_MARGIN_S,
    CONNECT_MARGIN_S,
    DRAIN_TIMEOUT_S,
    FILES_BESIDES_SOCKETS,
    GENERATOR_STOP_TIMEOUT_S,
    HOST,
    PROGRESS_EVERY_S,
    REPLY_TIMEOUT_S,
    REPORT_EVERY_S,
    SERVER_STOP_TIMEOUT_S,
    START_TIMEOUT_S,
    Bench,
    Broadcasts,
    Child,
    HeartbeatSchedule,
    Mark,
    Window,
    connect_users,
    measure_broadcasts,
    measure_quiet,
    run_generator,
    run_server,
)
from load_generator_results import (
    ARTILLERY,
    CHATUSER,
    TOOLS,
    Capacity,
    Comparison,
    ReceivingRound,
    SendingRound,
    in_flight,
    number,
)

from system.handlers.frames import HEARTBEAT, sendmessage_request
from system.local.npm_cache import NpmInstallError
from system.local.processes import raise_open_file_limit
from system.options import (
    file_in_existing_directory,
    non_negative_int,
    positive_float,
    positive_int,
)

HEARTBEAT_FRAME = json.dumps(sendmessage_request(HEARTBEAT))  # what ChatUser sends
SENDING_HEARTBEAT_S = 1.0
LISTENING_HEARTBEAT_S = 30.0  # ChatUser's usual
BROADCASTS_PER_S = 2.0  # to each listener
# Artillery's scenarios last this long past the measurement (the benchmark stops them).
ARTILLERY_RUN_MARGIN_S = 60
PROC_NET_TCP = Path("/proc/net/tcp")
ON_TIME = {True: "on time", False: "NOT on time", None: "none due in the window"}


def new_run_id(phase: str) -> str:
    return f"load-generators-{phase}-{uuid.uuid4().hex[:8]}"


def url(port: int) -> str:
    return f"ws://{HOST}:{port}/"


@contextlib.contextmanager
def bare_server(phase: str, connections: int) -> Iterator[tuple[Child, str, int]]:
    """A fresh bare server: the child, the run id its broadcasts carry, its port."""
    run_id = new_run_id(phase)
    server = Child("bare server", run_server, run_id, connections)
    try:
        yield server, run_id, server.receive(START_TIMEOUT_S)
    finally:
        server.stop(SERVER_STOP_TIMEOUT_S)


def ask(server: Child, *command: object, timeout: float = REPLY_TIMEOUT_S) -> Any:
    server.send(*command)
    return server.receive(timeout)


# -- ChatUser: one Locust process, as heartbeat_users.py runs it ------------------------------


@contextlib.contextmanager
def locust_process(server: Child, run_id: str, port: int, users: int, spawn_rate: float,
                   heartbeat_s: float) -> Iterator[Bench]:
    generator = Child("Locust process", run_generator, url(port), run_id, users, spawn_rate,
                      heartbeat_s)
    try:
        yield Bench(server, generator)
    finally:
        print(f"  stopped the Locust process in {generator.stop(GENERATOR_STOP_TIMEOUT_S):.1f} s")


def chatuser_sending(options: argparse.Namespace) -> SendingRound:
    n = options.connections
    with (bare_server("sending", n) as (server, run_id, port),
          locust_process(server, run_id, port, n, options.spawn_rate,
                         SENDING_HEARTBEAT_S) as bench):
        connected, schedule = connect_users(bench, n, options.spawn_rate, SENDING_HEARTBEAT_S)
        bench.pump(options.settle)
        window = measure_quiet(bench, options.window, schedule)
        memory = memory_of(bench.generator.usage)
        heartbeat_failures = bench.status["heartbeat_failures"]
    if heartbeat_failures:
        print(f"  {heartbeat_failures} heartbeat sends failed")
    return SendingRound(CHATUSER, connected.users, window.seconds, window.generator_cpu_percent,
                        window.heartbeats_per_s, window.heartbeats_due_per_s, memory.rss,
                        memory.uss, memory.processes)


def chatuser_broadcast(phase: str, users: int, broadcasts_per_s: float, seconds: float,
                       options: argparse.Namespace) -> Broadcasts:
    """heartbeat_users.py's broadcast window for one Locust process of ``users``."""
    with (bare_server(phase, users) as (server, run_id, port),
          locust_process(server, run_id, port, users, options.spawn_rate,
                         LISTENING_HEARTBEAT_S) as bench):
        _, schedule = connect_users(bench, users, options.spawn_rate, LISTENING_HEARTBEAT_S)
        bench.pump(options.settle)
        return measure_broadcasts(bench, broadcasts_per_s, seconds, schedule)


def chatuser_receiving(options: argparse.Namespace) -> ReceivingRound:
    broadcasts = chatuser_broadcast("receiving", options.listeners, BROADCASTS_PER_S,
                                    options.window, options)
    window = broadcasts.window
    fanout = {key: broadcasts.fanout[key] for key in ("latency_ms", "duplicated", "out_of_order")}
    return ReceivingRound(CHATUSER, options.listeners, window.seconds, window.generator_cpu_percent,
                          broadcasts.written / window.seconds, broadcasts.received_per_s,
                          "FANOUT receipts in the window",
                          broadcasts.received >= broadcasts.written, broadcasts.drain_s,
                          window.heartbeats_per_s, window.heartbeats_due_per_s, fanout)


def chatuser_capacity(options: argparse.Namespace) -> Capacity:
    broadcasts = chatuser_broadcast("capacity", options.capacity_connections,
                                    options.capacity_broadcasts_per_s, options.capacity_window,
                                    options)
    window = broadcasts.window
    latency = broadcasts.fanout["latency_ms"]
    return Capacity(options.capacity_connections, broadcasts.written / window.seconds,
                    broadcasts.received_per_s, window.generator_cpu_percent,
                    window.heartbeats_per_s, window.heartbeats_due_per_s, window.loop_lag_max_ms,
                    broadcasts.drain_s, latency["p50"], latency["p99"])


# -- Artillery ----------------------------------------------------------------------------


@contextlib.contextmanager
def artillery_run(artillery: Artillery, run_script: dict) -> Iterator[ArtilleryRun]:
    with tempfile.TemporaryDirectory(prefix="artillery-") as directory:
        run = ArtilleryRun(artillery, run_script, Path(directory))
        try:
            yield run
        finally:
            run.stop()


def artillery_mark(server: Child, run: ArtilleryRun) -> Mark:
    stats = ask(server, "stats")
    return Mark(time.time(), run.cpu_seconds(), server.cpu_seconds(), stats["client_frames"],
                stats["connections"])


def wait_for_artillery(server: Child, run: ArtilleryRun, connections: int,
                       spawn_rate: float) -> float:
    """Seconds until the server holds ``connections`` of Artillery's."""
    print(f"Connect: Artillery opening {connections} connections at {spawn_rate:g}/s")
    started = time.monotonic()
    deadline = started + START_TIMEOUT_S + connections / spawn_rate + CONNECT_MARGIN_S
    next_progress = started + PROGRESS_EVERY_S
    while (connected := ask(server, "stats")["connections"]) < connections:
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {connected} of {connections} Artillery connections in "
                               f"time: {run.last_output()}")
        if time.monotonic() >= next_progress:
            next_progress += PROGRESS_EVERY_S
            print(f"  {time.monotonic() - started:5.1f} s: {connected:>6} connected")
        run.expect_running_for(REPORT_EVERY_S)
    seconds = time.monotonic() - started
    print(f"  all {connections} connected {seconds:.1f} s after Artillery started")
    return seconds


def artillery_sending(artillery: Artillery, options: argparse.Namespace) -> SendingRound:
    n = options.connections
    lifetime = (START_TIMEOUT_S + n / options.spawn_rate + CONNECT_MARGIN_S + options.settle
                + options.window + ARTILLERY_RUN_MARGIN_S)
    with bare_server("sending", n) as (server, _, port):
        run_script = script(url(port), n, options.spawn_rate,
                            heartbeat_flow(HEARTBEAT_FRAME, lifetime))
        with artillery_run(artillery, run_script) as run:
            wait_for_artillery(server, run, n, options.spawn_rate)
            run.expect_running_for(options.settle)
            print(f"Sending window: {options.window:g} s of heartbeats every second")
            start = artillery_mark(server, run)
            run.expect_running_for(options.window)
            end = artillery_mark(server, run)
            memory = run.memory()
        schedule = HeartbeatSchedule(ask(server, "opened"), SENDING_HEARTBEAT_S)
    window = Window.between(start, end, [], schedule)
    processes = f"{memory.processes} process{'' if memory.processes == 1 else 'es'}"
    print(f"  Artillery CPU {window.generator_cpu_percent:.1f} % of a core ({processes}), "
          f"heartbeats {window.heartbeats_per_s:.0f}/s at the server "
          f"({window.heartbeats_due_per_s:.0f}/s due)")
    return SendingRound(ARTILLERY, end.connections, window.seconds, window.generator_cpu_percent,
                        window.heartbeats_per_s, window.heartbeats_due_per_s, memory.rss,
                        memory.uss, memory.processes)


def wait_until_drained(port: int, run: ArtilleryRun) -> float | None:
    """Seconds until nothing the server wrote is left unsent or unread on loopback, or
    None if something still is after DRAIN_TIMEOUT_S."""
    started = time.monotonic()
    while not (queued := in_flight(PROC_NET_TCP.read_text(), port)).drained:
        if time.monotonic() - started > DRAIN_TIMEOUT_S:
            print(f"  not drained {DRAIN_TIMEOUT_S} s after the window: {queued.server_unsent} "
                  f"bytes unsent by the server, {queued.client_unread} unread by Artillery")
            return None
        run.expect_running_for(REPORT_EVERY_S)
    return time.monotonic() - started


def artillery_receiving(artillery: Artillery, options: argparse.Namespace) -> ReceivingRound:
    m = options.listeners
    lifetime = (START_TIMEOUT_S + m / options.spawn_rate + CONNECT_MARGIN_S + options.settle
                + options.window + BROADCAST_MARGIN_S + DRAIN_TIMEOUT_S + ARTILLERY_RUN_MARGIN_S)
    with (bare_server("receiving", m) as (server, _, port),
          artillery_run(artillery, script(url(port), m, options.spawn_rate,
                                          listen_flow(lifetime))) as run):
        wait_for_artillery(server, run, m, options.spawn_rate)
        run.expect_running_for(options.settle)
        print(f"Broadcast window: {BROADCASTS_PER_S:g} broadcasts/s to every connection for "
              f"{options.window:g} s ({BROADCASTS_PER_S * m:.0f} frames/s offered)")
        start = artillery_mark(server, run)
        result = ask(server, "broadcast", BROADCASTS_PER_S, options.window,
                     timeout=options.window + BROADCAST_MARGIN_S)
        end = artillery_mark(server, run)
        drain_s = wait_until_drained(port, run)
    window = Window.between(start, end, [], HeartbeatSchedule([], LISTENING_HEARTBEAT_S))
    written_per_s = result["written"] / window.seconds
    drained = "never drained" if drain_s is None else f"drained {drain_s:.1f} s after the window"
    print(f"  the server wrote {result['written']} frames ({written_per_s:.0f}/s, "
          f"{result['failed']} failed writes); sockets {drained}; Artillery CPU "
          f"{window.generator_cpu_percent:.1f} % of a core")
    return ReceivingRound(ARTILLERY, end.connections, window.seconds,
                          window.generator_cpu_percent, written_per_s, written_per_s,
                          "server writes in the window, sockets drained", drain_s is not None,
                          drain_s, window.heartbeats_per_s, 0.0, None)


# -- the run ------------------------------------------------------------------------------------


def print_sending(result: SendingRound) -> None:
    uss = ("" if result.uss_kb_per_connection is None
           else f", USS {result.uss_kb_per_connection:.1f} KB")
    print(f"  => {result.tool}: {number(result.cpu_per_1000_heartbeats, 2)} % of a core per "
          f"1,000 heartbeats/s; RSS {result.rss_kb_per_connection:.1f} KB{uss} per connection "
          f"({result.rss_bytes / 2**20:.0f} MB for {result.connections})")


def print_receiving(result: ReceivingRound) -> None:
    heartbeats = ("" if result.tool == ARTILLERY else  # its listeners send nothing
                  f"; heartbeats {result.heartbeats_per_s:.0f}/s at the server "
                  f"({result.heartbeats_due_per_s:.0f}/s due: "
                  f"{ON_TIME[result.heartbeats_on_time]})")
    print(f"  => {result.tool}: {number(result.cpu_per_1000_frames, 2)} % of a core per "
          f"1,000 frames/s received ({result.frames_received_per_s:.0f}/s, "
          f"{result.counted_by}{'' if result.all_received else '; NOT all received'})"
          f"{heartbeats}")


def print_results(comparison: Comparison, capacity: Capacity | None,
                  options: argparse.Namespace) -> None:
    print(f"\nResults: {options.connections} connections sending, {options.listeners} "
          f"receiving, {os.cpu_count()} CPUs")
    for line in comparison.round_lines() + [""] + comparison.table_lines():
        print(f"  {line}")
    if capacity is not None:
        print(f"  capacity: one ChatUser process received {capacity.received_per_s:,.0f} "
              f"frames/s (offered {capacity.offered_per_s:,.0f}/s to "
              f"{capacity.connections:,} users) at {capacity.cpu_percent:.0f} % of a core, "
              f"{number(capacity.cpu_us_per_frame, 0)} us a frame ({capacity.limit()}); heartbeats "
              f"{capacity.heartbeats_per_s:.0f}/s ({capacity.heartbeats_due_per_s:.0f}/s due: "
              f"{ON_TIME[capacity.heartbeats_on_time]}); event-loop lag "
              f"max {capacity.loop_lag_max_ms / 1000:.1f} s; broadcast to receipt p50 "
              f"{capacity.latency_p50_ms:.0f} ms, p99 {capacity.latency_p99_ms:.0f} ms")


def source_state() -> dict | None:
    """The commit measured, and the loadtest files changed from it (ChatUser's code)."""
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, check=True, timeout=10).stdout.strip()
        changed = subprocess.run(["git", "status", "--porcelain", "loadtest"],
                                 capture_output=True, text=True, check=True,
                                 timeout=10).stdout.splitlines()
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit, "loadtest_changes": [line[3:] for line in changed]}


def write_json(path: Path, options: argparse.Namespace, artillery: Artillery,
               comparison: Comparison, capacity: Capacity | None, failures: list[str]) -> None:
    document = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "versions": {"artillery": ARTILLERY_VERSION, "node": artillery.node_version,
                     "python": platform.python_version(), "locust": version("locust"),
                     "websockets": version("websockets")},
        "source": source_state(),
        "options": {key: value for key, value in vars(options).items() if key != "json"},
        "comparison": comparison.as_json(),
        "capacity": None if capacity is None else asdict(capacity) | {
            "saturated": capacity.saturated, "heartbeats_on_time": capacity.heartbeats_on_time},
        "failures": failures,
    }
    path.write_text(json.dumps(document, indent=2) + "\n")
    print(f"\nResults written to {path}")


def parse_options(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=positive_int, default=5000, metavar="N",
                        help="connections sending a heartbeat a second (default %(default)s)")
    parser.add_argument("--listeners", type=positive_int, default=2000, metavar="M",
                        help="connections receiving the broadcasts (default %(default)s)")
    parser.add_argument("--rounds", type=positive_int, default=3,
                        help="rounds of each tool in each phase (default %(default)s)")
    parser.add_argument("--window", type=positive_float, default=30.0, metavar="SECONDS",
                        help="the measured window of each round (default %(default)s)")
    parser.add_argument("--settle", type=positive_float, default=5.0, metavar="SECONDS",
                        help="wait after all are connected, before the window "
                             "(default %(default)s)")
    parser.add_argument("--spawn-rate", type=positive_float, default=500.0,
                        help="connections opened a second (default %(default)s)")
    parser.add_argument("--capacity-connections", type=non_negative_int, default=10_000,
                        metavar="USERS", help="ChatUser's users in the capacity phase, 0 to "
                                              "skip it (default %(default)s)")
    parser.add_argument("--capacity-broadcasts-per-s", type=positive_float, default=2.0,
                        help="broadcasts a second to each of them (default %(default)s)")
    parser.add_argument("--capacity-window", type=positive_float, default=20.0,
                        metavar="SECONDS", help="the capacity broadcast window "
                                                "(default %(default)s)")
    parser.add_argument("--json", type=file_in_existing_directory, metavar="PATH",
                        help="also write the results as JSON to PATH")
    options = parser.parse_args(argv)
    return options


def main(argv: list[str] | None = None) -> int:
    options = parse_options(argv)
    sys.stdout.reconfigure(line_buffering=True)
    needed_files = (max(options.connections, options.listeners, options.capacity_connections)
                    + FILES_BESIDES_SOCKETS)
    limit = raise_open_file_limit(needed_files)
    if limit < needed_files:
        print(f"warning: open-file limit {limit} (the hard limit) is below the "
              f"{needed_files} each process needs")
    try:
        artillery = install_artillery()
    except NpmInstallError as error:
        print(f"load_generators: {error}", file=sys.stderr)
        return 2
    started = time.perf_counter()
    print(f"Load-generator benchmark: {artillery.version_line()} and ChatUser (one Locust "
          f"process); {os.cpu_count()} CPUs; alternating, rounds of each: {options.rounds}")
    sending: list[SendingRound] = []
    receiving: list[ReceivingRound] = []
    phases = (
        ("Sending", options.connections, sending, print_sending,
         {ARTILLERY: partial(artillery_sending, artillery), CHATUSER: chatuser_sending}),
        ("Receiving", options.listeners, receiving, print_receiving,
         {ARTILLERY: partial(artillery_receiving, artillery), CHATUSER: chatuser_receiving}),
    )
    capacity: Capacity | None = None
    failures: list[str] = []
    interrupted = False
    try:
        for phase, connections, results, print_result, measure_by_tool in phases:
            for round_number in range(1, options.rounds + 1):
                for tool in TOOLS:
                    print(f"\n== {phase}, round {round_number} of {options.rounds}: {tool}, "
                          f"{connections} connections")
                    results.append(measure_by_tool[tool](options))
                    print_result(results[-1])
        if options.capacity_connections:
            print(f"\n== Capacity: one ChatUser process, {options.capacity_connections} users")
            capacity = chatuser_capacity(options)
    except KeyboardInterrupt:
        interrupted = True
        failures.append("interrupted (Ctrl-C): the results are those measured before")
        print("\nInterrupted: every process stopped; the results measured so far follow")
    except RuntimeError as error:
        failures.append(str(error))
        print(f"\nFailed: {error}")
    comparison = Comparison(tuple(sending), tuple(receiving))
    print_results(comparison, capacity, options)
    if options.json is not None:
        write_json(options.json, options, artillery, comparison, capacity, failures)
    print(f"Total {time.perf_counter() - started:.0f} s")
    return 130 if interrupted else 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
