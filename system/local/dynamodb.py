"""The local stack's DynamoDB: dynalite (default), moto (pure Python), or any endpoint URL.

dynalite is a DynamoDB implementation on LevelDB that charges capacity from item
sizes as DynamoDB does; it is installed on first use with the machine's npm into
a cache directory, at a pinned version. moto needs no Node but reports fixed
ConsumedCapacity values, so capacity figures from it are not size-based.

A backend this module starts listens on loopback only, whatever ``--host`` the
stack serves its chat on: only the Lambda workers and local test clients reach it,
as in AWS only the functions reach the tables.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from system.local.npm_cache import NpmInstallError, cache_dir, npm_install
from system.local.processes import LOOPBACK, die_with_parent, free_port

log = logging.getLogger("chat_harness.dynamodb")

DYNALITE_VERSION = "4.0.0"
STARTUP_TIMEOUT_S = 60
# A server's start is tried on this many free ports, if another process takes the port first
# (what node and moto's server print then).
PORT_ATTEMPTS = 3
PORT_TAKEN_MARKERS = (b"EADDRINUSE", b"Address already in use")
OTHER_BACKENDS = ("run with --dynamodb moto (pure Python, fixed capacity figures) "
                  "or --dynamodb URL (a DynamoDB endpoint you run)")
INSTALL_NODE = f"install Node.js 20+ (with npm), or {OTHER_BACKENDS}"


class BackendError(RuntimeError):
    """A backend that cannot start, in one line that says what to do."""


class PortTaken(BackendError):
    """The port found free was taken before the server could listen on it."""


@dataclass(frozen=True)
class BackendInfo:
    kind: str  # "dynalite" | "moto" | "external"
    endpoint_url: str
    capacity_fidelity: str  # "size-based" | "fixed" | "unknown"


def node_executable() -> str:
    """The ``node`` dynalite runs on, from PATH."""
    node = shutil.which("node")
    if node is None:
        raise BackendError(f"dynalite needs Node.js, and no node is on PATH: {INSTALL_NODE}")
    return node


def dynalite_cli() -> Path:
    """The pinned dynalite's cli.js, installed with npm into the cache on first use."""
    home = cache_dir() / f"dynalite-{DYNALITE_VERSION}"
    cli = home / "node_modules" / "dynalite" / "cli.js"
    if cli.exists():
        return cli
    log.info("installing dynalite %s into %s (first use only)", DYNALITE_VERSION, home)
    try:
        npm_install("dynalite", DYNALITE_VERSION, home, install_npm=INSTALL_NODE,
                    otherwise=f", or {OTHER_BACKENDS}")
    except NpmInstallError as error:
        raise BackendError(str(error)) from None
    return cli


class DynamoDB:
    """A started backend; ``stop`` ends the process it started, if any."""

    def __init__(self, spec: str) -> None:
        if spec not in ("dynalite", "moto"):
            url = urlparse(spec)
            if url.scheme not in ("http", "https") or not url.netloc:
                raise BackendError(
                    f"--dynamodb must be dynalite, moto or an http(s):// URL, not {spec!r}"
                )
        self.spec = spec
        self._process: asyncio.subprocess.Process | None = None
        self._drainer: asyncio.Task | None = None
        self.info: BackendInfo | None = None

    async def start(self) -> BackendInfo:
        if self.spec == "dynalite":
            node = node_executable()
            cli = await asyncio.to_thread(dynalite_cli)
            port = await self._launch_on_a_free_port(
                lambda port: [node, str(cli), "--host", LOOPBACK, "--port", str(port),
                              "--createTableMs", "0", "--deleteTableMs", "0",
                              "--updateTableMs", "0"],
                ready_marker=b"Dynalite listening",
            )
            self.info = BackendInfo("dynalite", f"http://{LOOPBACK}:{port}", "size-based")
        elif self.spec == "moto":
            port = await self._launch_on_a_free_port(
                lambda port: [sys.executable, "-m", "moto.server", "-H", LOOPBACK, "-p", str(port)],
                ready_marker=b"Running on",
            )
            self.info = BackendInfo("moto", f"http://{LOOPBACK}:{port}", "fixed")
        else:
            self.info = BackendInfo("external", self.spec, "unknown")
        return self.info

    async def _launch_on_a_free_port(self, command_for, ready_marker: bytes) -> int:
        """A port found free may be taken by another process before the server binds it
        (stacks starting side by side): then the server is started again on another."""
        for _ in range(PORT_ATTEMPTS - 1):
            port = free_port()
            with contextlib.suppress(PortTaken):
                await self._launch(command_for(port), ready_marker)
                return port
        port = free_port()
        await self._launch(command_for(port), ready_marker)
        return port

    async def _launch(self, command: list[str], ready_marker: bytes) -> None:
        """Start the server and wait for the line it prints once it listens."""
        try:
            self._process = await asyncio.create_subprocess_exec(
                *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
                stdin=asyncio.subprocess.DEVNULL, preexec_fn=die_with_parent,
            )
        except OSError as error:
            raise BackendError(f"cannot run {command[0]} ({error.strerror or error}); "
                               f"{OTHER_BACKENDS}") from None
        seen: list[bytes] = []
        try:
            async with asyncio.timeout(STARTUP_TIMEOUT_S):
                while line := await self._process.stdout.readline():
                    seen.append(line)
                    if ready_marker in line:
                        break
                else:
                    last = [seen_line.decode(errors="replace").strip() for seen_line in seen[-5:]]
                    error = PortTaken if any(marker in b"".join(seen)
                                             for marker in PORT_TAKEN_MARKERS) else BackendError
                    raise error(f"{command[0]} exited before listening: "
                                f"{' | '.join(text for text in last if text)}")
        except TimeoutError:
            await self.stop()
            raise BackendError(f"{' '.join(command[:2])} did not start in {STARTUP_TIMEOUT_S} s")
        except BackendError:
            await self.stop()
            raise
        self._drainer = asyncio.create_task(self._drain(self._process))

    @staticmethod
    async def _drain(process: asyncio.subprocess.Process) -> None:
        """Keep reading the server's output so it never blocks on a full pipe."""
        while await process.stdout.readline():
            pass

    async def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 5)
            except TimeoutError:
                process.kill()
                await process.wait()
        if self._drainer is not None:
            await self._drainer
