"""The asyncio chat client, for tests that drive the emulator from pytest-asyncio:
a reader task fills an ``Inbox``; waits are coroutines on an ``asyncio.Condition``."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import websockets
from websockets.asyncio.client import ClientConnection

from system.client.core import (
    CONNECT_OPTIONS,
    WAIT_TIMEOUT_S,
    WHOAMI_REQUEST,
    Condition,
    Frame,
    Inbox,
    answers_whoami,
    at_least,
    encode,
    fragments,
    not_closed,
    on_documents,
)


class AsyncChatClient:
    """``await AsyncChatClient.connect(url)``; predicates match frames' JSON objects."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.connection_id: str | None = None
        self._inbox = Inbox()
        self._arrived = asyncio.Condition()
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def connect(cls, url: str, **options) -> AsyncChatClient:
        return cls(await websockets.connect(url, **{**CONNECT_OPTIONS, **options}))

    async def _read(self) -> None:
        try:
            async for raw in self.ws:
                frame = Frame.parse(raw)
                async with self._arrived:
                    self._inbox.receive(frame)
                    self._arrived.notify_all()
        except websockets.ConnectionClosed:
            pass
        async with self._arrived:
            self._inbox.end()
            self._arrived.notify_all()

    @property
    def inbox(self) -> list[str]:
        """The text of every frame received so far, in order."""
        return [frame.text for frame in self._inbox.frames]

    async def send(self, message: dict | str) -> None:
        """Send a message, in 32 KB fragments if longer; ConnectionClosed if the server
        closed the connection."""
        await self.ws.send(fragments(encode(message)), text=True)

    async def wait_until(self, condition: Condition, what: str,
                         timeout: float = WAIT_TIMEOUT_S) -> None:
        """Wait until ``condition(frames)`` holds. AssertionError on timeout or close."""
        try:
            async with asyncio.timeout(timeout), self._arrived:
                await self._arrived.wait_for(lambda: self._inbox.wait_is_over(condition))
        except TimeoutError:
            pass
        self._inbox.require(condition, what, timeout)

    async def frames_where(self, predicate: Callable[[dict], bool], count: int,
                           timeout: float = WAIT_TIMEOUT_S) -> list[dict]:
        """The first ``count`` JSON objects (received or still to come) matching ``predicate``."""
        matching = on_documents(predicate)
        await self.wait_until(at_least(count, matching), f"{count} matching frame(s)", timeout)
        return [frame.document for frame in self._inbox.where(matching)[:count]]

    async def frame_where(self, predicate: Callable[[dict], bool],
                          timeout: float = WAIT_TIMEOUT_S) -> dict:
        return (await self.frames_where(predicate, 1, timeout))[0]

    async def whoami(self) -> str:
        """Ask the connection's id, and wait for this request's own answer."""
        answered = len(self._inbox.where(answers_whoami))
        await self.send(WHOAMI_REQUEST)
        await self.wait_until(at_least(answered + 1, answers_whoami), "the answer to whoami")
        self.connection_id = self._inbox.where(answers_whoami)[answered].document["connection_id"]
        return self.connection_id

    async def closed(self, timeout: float = WAIT_TIMEOUT_S) -> tuple[int | None, str]:
        """Wait for the server to close the connection: (close code, reason)."""
        try:
            async with asyncio.timeout(timeout):
                await self.ws.wait_closed()
        except TimeoutError:
            raise not_closed(timeout) from None
        return self.ws.close_code, self.ws.close_reason or ""

    async def close(self) -> None:
        await self.ws.close()
        await self._reader

    def drop(self) -> None:
        """Go away without a close frame, as a client whose network vanishes."""
        self.ws.transport.abort()
