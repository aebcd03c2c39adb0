"""Fixtures: real local stacks (child processes) and WebSocket clients with an inbox."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path

import pytest
import websockets

from system.local.launcher import LocalStackProcess

BEHAVIOUR_ROUTES = Path(__file__).parent / "handlers" / "routes.toml"
FRAME_TIMEOUT_S = 10


class ChatClient:
    """A WebSocket client that collects every frame it receives, in order."""

    def __init__(self, ws) -> None:
        self.ws = ws
        self.inbox: list[str | bytes] = []
        self._arrived = asyncio.Condition()
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def connect(cls, url: str, **kwargs) -> ChatClient:
        return cls(await websockets.connect(url, max_size=None, **kwargs))

    async def _read(self) -> None:
        try:
            async for frame in self.ws:
                async with self._arrived:
                    self.inbox.append(frame)
                    self._arrived.notify_all()
        except websockets.ConnectionClosed:
            pass
        async with self._arrived:
            self._arrived.notify_all()

    async def send(self, document: dict | str) -> None:
        await self.ws.send(document if isinstance(document, str) else json.dumps(document))

    def _matching(self, predicate: Callable[[dict], bool]) -> list[dict]:
        found = []
        for frame in self.inbox:
            try:
                document = json.loads(frame)
            except ValueError:
                continue
            if isinstance(document, dict) and predicate(document):
                found.append(document)
        return found

    async def frames_where(self, predicate: Callable[[dict], bool], count: int,
                           timeout: float = FRAME_TIMEOUT_S) -> list[dict]:
        """The first ``count`` JSON frames (received or still to come) matching ``predicate``."""
        async with asyncio.timeout(timeout), self._arrived:
            await self._arrived.wait_for(
                lambda: len(self._matching(predicate)) >= count or self._reader.done()
            )
        found = self._matching(predicate)
        if len(found) < count:
            raise AssertionError(f"connection closed before {count} matching frames; "
                                 f"got {self.inbox}")
        return found[:count]

    async def frame_where(self, predicate: Callable[[dict], bool],
                          timeout: float = FRAME_TIMEOUT_S) -> dict:
        return (await self.frames_where(predicate, 1, timeout))[0]

    async def whoami(self) -> str:
        await self.send({"action": "whoami"})
        return (await self.frame_where(lambda f: f.get("type") == "whoami"))["connection_id"]

    async def closed(self, timeout: float = FRAME_TIMEOUT_S) -> tuple[int | None, str]:
        """Wait for the server to close the connection: (close code, reason)."""
        async with asyncio.timeout(timeout):
            await self.ws.wait_closed()
        return self.ws.close_code, self.ws.close_reason or ""

    async def close(self) -> None:
        await self.ws.close()
        await self._reader


@pytest.fixture
async def clients(request):
    """``await clients(url)`` opens a ChatClient; all are closed after the test."""
    opened: list[ChatClient] = []

    async def open_client(url: str, **kwargs) -> ChatClient:
        client = await ChatClient.connect(url, **kwargs)
        opened.append(client)
        return client

    yield open_client
    for client in opened:
        await client.close()


@pytest.fixture(scope="session")
def chat_stack():
    """The chat's own handlers on dynalite, AWS's default limits."""
    stack = LocalStackProcess()
    stack.start()
    yield stack
    stack.stop()


@pytest.fixture(scope="session")
def behaviour_stack():
    """Test handlers (handlers/routes.toml) that make each API Gateway behaviour visible."""
    stack = LocalStackProcess(["--routes", str(BEHAVIOUR_ROUTES)])
    stack.start()
    yield stack
    stack.stop()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """On a failure, show what the stacks the test used printed last."""
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        for name in ("chat_stack", "behaviour_stack", "short_lived_stack"):
            stack = item.funcargs.get(name)
            if stack is not None:
                report.sections.append((f"{name} output", "".join(stack.output[-40:])))
