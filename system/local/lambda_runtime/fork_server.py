"""Execution environments forked from a fork server (``worker.py --fork-server``), where
Linux allows it: a third of a worker's start is the worker's own import of boto3, made
once in the server instead of in every environment (on 2 cores, 0.3 s of CPU an
environment becomes 0.1 s).

The server is started with the environment Python starts with (``startup_environment``:
the PYTHON* variables, the locale, PATH), so one serves the functions that share it,
and their handlers import exactly what an exec'd worker would import. Each environment
it forks is a ``ForkedProcess``: the part of ``asyncio.subprocess.Process`` the pool uses
(pid, stdin, stdout, stderr, returncode, wait), its pipes made here and handed over with
the request, its exit status reported by the server. A server that cannot start, or
has ended, spawns nothing: the pool then starts workers as processes of their own.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
import sys
from pathlib import Path

from system.local.processes import die_with_parent

log = logging.getLogger("chat_harness.lambda")

# What Python reads from the environment as it starts, before any handler code runs.
STARTUP_VARIABLES = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ")
FORKS_POSSIBLE = sys.platform.startswith("linux") and hasattr(socket, "send_fds")


def startup_environment(environment: dict[str, str]) -> dict[str, str]:
    """The part of a function's environment that a Python process reads as it starts."""
    return {name: value for name, value in environment.items()
            if name.startswith("PYTHON") or name in STARTUP_VARIABLES}


class ForkServerGone(Exception):
    """The fork server has ended, or never started: start workers as processes instead."""


class ForkedProcess:
    """One environment forked by the server, seen as ``asyncio.subprocess.Process``."""

    def __init__(self, pid: int, stdin: asyncio.StreamWriter, stdout: asyncio.StreamReader,
                 stderr: asyncio.StreamReader, ended: asyncio.Future) -> None:
        self.pid = pid
        self.stdin = stdin
        self.stdout = stdout
        self.stderr = stderr
        self._ended = ended

    @property
    def returncode(self) -> int | None:
        return self._ended.result() if self._ended.done() else None

    async def wait(self) -> int:
        return await asyncio.shield(self._ended)


class ForkServer:
    """One ``worker.py --fork-server`` process and the environments it forked."""

    def __init__(self, worker_script: Path, environment: dict[str, str],
                 line_limit: int) -> None:
        self.worker_script = worker_script
        self.environment = environment
        self.line_limit = line_limit
        self._process: asyncio.subprocess.Process | None = None
        self._control: socket.socket | None = None
        self._reader: asyncio.Task | None = None
        self._gone = False
        self._lock = asyncio.Lock()  # one request at a time: the next pid answers it
        self._forked: asyncio.Future | None = None  # (pid, its end) for the request
        self._ended: dict[int, asyncio.Future] = {}  # pid -> its exit status, until known

    async def _start(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            self._process = await asyncio.create_subprocess_exec(
                sys.executable, "-P", str(self.worker_script), "--fork-server",
                str(theirs.fileno()), pass_fds=(theirs.fileno(),),
                stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
                env=self.environment, start_new_session=True, preexec_fn=die_with_parent)
        finally:
            theirs.close()
        ours.setblocking(False)
        self._control = ours
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while message := await loop.sock_recv(self._control, 4096):
                report = json.loads(message)
                if "pid" in report:
                    ended = self._ended[report["pid"]] = loop.create_future()
                    # A caller gone meanwhile closed the child's stdin: it ends by itself.
                    if not self._forked.done():
                        self._forked.set_result((report["pid"], ended))
                else:
                    self._ended.pop(report["ended"]).set_result(report["returncode"])
        except OSError as error:
            log.warning("the Lambda fork server's socket failed: %s", error)
        finally:
            self._end()

    def _end(self) -> None:
        """The server has ended: whoever waits for it hears so; its environments, ended
        with it (SIGTERM), are reported ended."""
        self._gone = True
        if self._forked is not None and not self._forked.done():
            self._forked.set_exception(ForkServerGone())
        for ended in self._ended.values():
            ended.set_result(-signal.SIGTERM)
        self._ended.clear()

    async def spawn(self, handler: str, environment: dict[str, str]) -> ForkedProcess:
        """A new environment for ``handler`` with ``environment``; ForkServerGone if the
        server cannot give one."""
        stdin_read, stdin_write = os.pipe()
        stdout_read, stdout_write = os.pipe()
        stderr_read, stderr_write = os.pipe()
        theirs = [stdin_read, stdout_write, stderr_write]
        try:
            async with self._lock:
                if self._process is None and not self._gone:
                    try:
                        await self._start()
                    except OSError as error:
                        log.warning("no Lambda fork server (%s): workers start on their own",
                                    error)
                        self._gone = True
                if self._gone:
                    raise ForkServerGone()
                self._forked = asyncio.get_running_loop().create_future()
                request = json.dumps({"handler": handler, "environment": environment})
                try:
                    socket.send_fds(self._control, [request.encode()], theirs)
                except OSError as error:
                    raise ForkServerGone() from error
                pid, ended = await self._forked
        except BaseException:
            for fd in (stdin_write, stdout_read, stderr_read):
                os.close(fd)
            raise
        finally:
            for fd in theirs:
                os.close(fd)
        return ForkedProcess(pid, await self._writer(stdin_write),
                             await self._reader_of(stdout_read),
                             await self._reader_of(stderr_read), ended)

    async def _reader_of(self, fd: int) -> asyncio.StreamReader:
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=self.line_limit)
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader),
                                     os.fdopen(fd, "rb", 0))
        return reader

    async def _writer(self, fd: int) -> asyncio.StreamWriter:
        loop = asyncio.get_running_loop()
        protocol = asyncio.StreamReaderProtocol(asyncio.StreamReader())
        transport, _ = await loop.connect_write_pipe(lambda: protocol, os.fdopen(fd, "wb", 0))
        return asyncio.StreamWriter(transport, protocol, None, loop)

    async def stop(self) -> None:
        """Close the control socket, which ends the server (its environments are the
        pool's to stop, before this)."""
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        if self._control is not None:
            self._control.close()
        if self._process is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._process.wait(), 2)
            if self._process.returncode is None:
                self._process.kill()
                await self._process.wait()
