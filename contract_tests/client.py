"""The contract suite's chat client: system's blocking client, with every frame it
receives classified against the AsyncAPI document as it arrives.

Blocking rather than asyncio, because hypothesis rules and invariants are plain functions.
"""

from __future__ import annotations

from dataclasses import dataclass

from contract_tests.protocol import ProtocolError, classify
from system.client import BlockingChatClient
from system.client import Frame as ReceivedFrame


@dataclass(frozen=True)
class Frame(ReceivedFrame):
    """A received frame and the protocol message it is (``"invalid"`` if none)."""

    kind: str = "invalid"


class ChatClient(BlockingChatClient):
    """Each frame outside the protocol is recorded in ``violations`` (the ``clients``
    fixture fails a test whose clients have any)."""

    def __init__(self, url: str, **options) -> None:
        self.violations: list[str] = []  # before the reader thread starts
        super().__init__(url, **options)

    def parse(self, raw: str | bytes) -> Frame:
        received = super().parse(raw)
        try:
            kind = classify(raw)
        except ProtocolError as error:
            self.violations.append(str(error))
            kind = "invalid"
        return Frame(received.text, received.document, kind)
