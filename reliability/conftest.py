"""The reliability suite's stacks and the canary: two clients that must still chat after
whatever the suite did to the stack."""

from __future__ import annotations

import uuid

import pytest

from system.client import BlockingChatClient
from system.client.core import on_documents
from system.local.stack_fixtures import stack_fixture

chat_stack = stack_fixture(doc="The chat's own handlers on dynalite, AWS's default limits.")


class Canary:
    """Two clients that chat through the stack; ``check`` fails unless a message from one
    still reaches both."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.pair = [BlockingChatClient(url), BlockingChatClient(url)]

    def check(self) -> None:
        text = f"canary-{uuid.uuid4()}"
        self.pair[0].chat(text)
        for client in self.pair:
            client.wait_for(on_documents(lambda d: d.get("type") == "chat"
                                         and d.get("text") == text))

    def close(self) -> None:
        for client in self.pair:
            client.close()


@pytest.fixture(scope="module")
def canary(chat_stack):
    canary = Canary(chat_stack.file.websocket_url)
    yield canary
    canary.close()
