"""Fixtures: real local stacks (child processes) and asyncio chat clients with an inbox."""

from __future__ import annotations

from pathlib import Path

import pytest

from system.client import AsyncChatClient
from system.local.stack_fixtures import stack_fixture

BEHAVIOUR_ROUTES = Path(__file__).parent / "handlers" / "routes.toml"

chat_stack = stack_fixture(doc="The chat's own handlers on dynalite, AWS's default limits.")
behaviour_stack = stack_fixture(
    ["--routes", str(BEHAVIOUR_ROUTES)],
    doc="Test handlers (handlers/routes.toml) that make each API Gateway behaviour visible.")


@pytest.fixture
async def clients():
    """``await clients(url)`` opens an AsyncChatClient; all are closed after the test."""
    opened: list[AsyncChatClient] = []

    async def open_client(url: str, **options) -> AsyncChatClient:
        client = await AsyncChatClient.connect(url, **options)
        opened.append(client)
        return client

    yield open_client
    for client in opened:
        await client.close()
