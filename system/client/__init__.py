"""The chat's test client: one core (``core``: frames, inboxes, waits) and two shells,
asyncio (``async_client``) for the emulator's tests and blocking (``blocking_client``)
for the contract suite."""

from system.client.async_client import AsyncChatClient
from system.client.blocking_client import BlockingChatClient
from system.client.core import WAIT_TIMEOUT_S, Frame, Inbox

__all__ = ["WAIT_TIMEOUT_S", "AsyncChatClient", "BlockingChatClient", "Frame", "Inbox"]
