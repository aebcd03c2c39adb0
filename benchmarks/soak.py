"""Soak: many heartbeat clients and steady chat on one local stack for a bounded time;
prints what was lost and whether the stack's processes grow.

N clients (``--clients``, default 2,000) connect at ``--connect-rate`` per second, send
a heartbeat every ``--heartbeat-s`` seconds, and one of them, chosen at random, sends a
chat message every ``--chat-every-s`` seconds, for ``--minutes`` (default 30). Every
``--report-every-min`` minutes it prints:

- unexpected disconnects (a client the stack closed or lost; none is expected: the
  heartbeats keep every client inside the idle timeout);
- lost messages: for every chat message sent at least ``SETTLE_S`` seconds earlier,
  the clients that were connected when it was sent and are still connected, but have
  not received it;
- the resident memory and open files of the gateway (the stack's own process), of the
  Lambda workers (all of them, and how many) and of DynamoDB (dynalite).

At the end it prints each figure's growth from the first report after warm-up (the
second report) to the last: flat is under 10 %.

The chat runs with PRESENCE_NOTICES=off (a routes file written for the run): with
join notices, N clients connecting cost N(N-1)/2 posts, two million for 2,000, which
is the fan-out benchmark's subject, not this one's.

    python benchmarks/soak.py [--minutes 30] [--clients 2000]

All traffic stays on 127.0.0.1; the run stops by itself; every process it starts is
stopped when it ends, fails or is interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import psutil
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from system.handlers.frames import HEARTBEAT, sendmessage_request
from system.local.launcher import LocalStackProcess
from system.local.processes import raise_open_file_limit
from system.options import positive_float, positive_int
from system.routes import with_environment, write_routes_variant

SETTLE_S = 10  # a message older than this should have reached everyone
# A broadcast to 2,000 clients takes the handler 2-3 s of boto3 CPU on 2 cores: it must
# not meet Lambda's default 3 s timeout (benchmarks/fanout.py's subject, not this one's).
STACK_ARGUMENTS = ["--lambda-timeout", "30"]
FLAT_GROWTH = 0.10
HANDSHAKE_TIMEOUT_S = 60
CLOSE_TIMEOUT_S = 30
WORKER_SCRIPT = "worker.py"


@dataclass
class SentMessage:
    marker: str
    sent_at: float
    recipients: set[int]  # the clients connected when it was sent


@dataclass
class Client:
    number: int
    ws: ClientConnection
    received: set[str] = field(default_factory=set)
    closed_by_stack: bool = False


class Soak:
    def __init__(self, url: str, options: argparse.Namespace) -> None:
        self.url = url
        self.options = options
        self.clients: dict[int, Client] = {}
        self.sent: list[SentMessage] = []
        self.tasks: set[asyncio.Task] = set()
        self.stopping = False

    def _spawn(self, coroutine) -> None:
        task = asyncio.create_task(coroutine)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def connect_all(self) -> None:
        pause = 1 / self.options.connect_rate
        for number in range(self.options.clients):
            ws = await connect(self.url, open_timeout=HANDSHAKE_TIMEOUT_S, ping_interval=None,
                               compression=None, max_size=None)
            client = Client(number, ws)
            self.clients[number] = client
            self._spawn(self._read(client))
            self._spawn(self._heartbeat(client))
            await asyncio.sleep(pause)  # pacing under the stack's new-connection rate

    async def _read(self, client: Client) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for message in client.ws:
                document = json.loads(message)
                if document.get("type") == "chat":
                    client.received.add(document.get("text", ""))
        if not self.stopping:
            client.closed_by_stack = True

    async def _heartbeat(self, client: Client) -> None:
        await asyncio.sleep(random.uniform(0, self.options.heartbeat_s))  # spread them
        with contextlib.suppress(ConnectionClosed):
            while not self.stopping:
                await client.ws.send(json.dumps(sendmessage_request(HEARTBEAT)))
                await asyncio.sleep(self.options.heartbeat_s)

    async def chat(self, until: float) -> None:
        while time.monotonic() < until:
            live = [c for c in self.clients.values() if not c.closed_by_stack]
            if live:
                marker = f"soak-{uuid.uuid4().hex}"
                self.sent.append(SentMessage(marker, time.monotonic(),
                                             {c.number for c in live}))
                with contextlib.suppress(ConnectionClosed):
                    await random.choice(live).ws.send(json.dumps(sendmessage_request(marker)))
            await asyncio.sleep(self.options.chat_every_s)

    def lost(self) -> tuple[int, int]:
        """(settled messages, deliveries missing among them)."""
        settled = [m for m in self.sent if time.monotonic() - m.sent_at >= SETTLE_S]
        missing = sum(1 for m in settled for n in m.recipients
                      if not self.clients[n].closed_by_stack
                      and m.marker not in self.clients[n].received)
        return len(settled), missing

    async def close(self) -> None:
        self.stopping = True
        async with asyncio.timeout(CLOSE_TIMEOUT_S):
            await asyncio.gather(*(c.ws.close() for c in self.clients.values()),
                                 return_exceptions=True)
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


@dataclass(frozen=True)
class Footprint:
    """Resident memory (MB) and open files of one group of processes."""

    rss_mb: float
    open_files: int
    processes: int


def footprints(stack_pid: int) -> dict[str, Footprint]:
    gateway = psutil.Process(stack_pid)
    groups: dict[str, list[psutil.Process]] = {"gateway": [gateway], "workers": [],
                                               "dynamodb": []}
    for child in gateway.children(recursive=True):
        with contextlib.suppress(psutil.Error):
            command = " ".join(child.cmdline())
            groups["workers" if WORKER_SCRIPT in command else "dynamodb"].append(child)
    measured = {}
    for name, processes in groups.items():
        rss, files = 0, 0
        for process in processes:
            with contextlib.suppress(psutil.Error):
                rss += process.memory_info().rss
                files += process.num_fds()
        measured[name] = Footprint(rss / 2**20, files, len(processes))
    return measured


def print_report(minute: float, soak: Soak, measured: dict[str, Footprint]) -> None:
    settled, missing = soak.lost()
    dropped = sum(c.closed_by_stack for c in soak.clients.values())
    parts = "  ".join(f"{name} {f.rss_mb:.0f} MB {f.open_files} files"
                      + (f" ({f.processes} processes)" if name == "workers" else "")
                      for name, f in measured.items())
    print(f"{minute:5.1f} min  clients {len(soak.clients) - dropped}  unexpected disconnects "
          f"{dropped}  messages {settled}  lost deliveries {missing}  |  {parts}")


def print_growth(first: dict[str, Footprint], last: dict[str, Footprint]) -> None:
    print("Growth from the first report after warm-up to the last (flat: under "
          f"{FLAT_GROWTH:.0%}):")
    for name, early in first.items():
        for figure in ("rss_mb", "open_files"):
            before, after = getattr(early, figure), getattr(last[name], figure)
            growth = (after - before) / before if before else 0.0
            print(f"  {name:9} {figure:10} {before:8.1f} -> {after:8.1f}  {growth:+6.1%}  "
                  f"{'flat' if growth < FLAT_GROWTH else 'GROWING'}")


async def soak(stack_pid: int, url: str, options: argparse.Namespace) -> int:
    runner = Soak(url, options)
    started = time.monotonic()
    reports: list[dict[str, Footprint]] = []
    try:
        await runner.connect_all()
        print(f"{len(runner.clients)} clients connected in {time.monotonic() - started:.0f} s")
        end = started + options.minutes * 60
        chatting = asyncio.create_task(runner.chat(end))
        every = options.report_every_min * 60
        next_report = started + every
        while next_report <= end + 1:
            await asyncio.sleep(max(0.0, next_report - time.monotonic()))
            reports.append(footprints(stack_pid))
            print_report((time.monotonic() - started) / 60, runner, reports[-1])
            next_report += every
        await chatting
    finally:
        await runner.close()
    if len(reports) >= 3:
        print_growth(reports[1], reports[-1])
    settled, missing = runner.lost()
    dropped = sum(c.closed_by_stack for c in runner.clients.values())
    print(f"Total: {settled} messages, {missing} lost deliveries, {dropped} unexpected "
          f"disconnects")
    return 1 if missing or dropped else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=positive_float, default=30.0,
                        help="how long (default 30)")
    parser.add_argument("--clients", type=positive_int, default=2000,
                        help="clients (default 2000)")
    parser.add_argument("--heartbeat-s", type=positive_float, default=30.0, help="default 30")
    parser.add_argument("--chat-every-s", type=positive_float, default=5.0,
                        help="one chat message every this many seconds (default 5)")
    parser.add_argument("--connect-rate", type=positive_float, default=100.0,
                        help="new connections per second (default 100)")
    parser.add_argument("--report-every-min", type=positive_float, default=5.0,
                        help="default 5")
    options = parser.parse_args(argv)
    sys.stdout.reconfigure(line_buffering=True)
    needed = 2 * options.clients + 1024
    if raise_open_file_limit(needed) < needed:
        print(f"warning: the open-file limit is below the {needed} this run may need")
    print(f"Soak: {options.clients} clients, heartbeat every {options.heartbeat_s:g} s, a chat "
          f"message every {options.chat_every_s:g} s, {options.minutes:g} minutes")
    with tempfile.TemporaryDirectory(prefix="soak-") as directory:
        routes = write_routes_variant(Path(directory) / "routes.toml",
                                      with_environment(PRESENCE_NOTICES="off"))
        launcher = LocalStackProcess([*STACK_ARGUMENTS, "--routes", str(routes)])
        try:
            stack = launcher.start()
            return asyncio.run(soak(launcher.process.pid, stack.websocket_url, options))
        finally:
            launcher.stop()


if __name__ == "__main__":
    sys.exit(main())
