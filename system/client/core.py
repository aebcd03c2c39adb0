"""What a test client does with the frames it receives, with no socket.

A frame is parsed once into a ``Frame`` (its text and the JSON object it holds);
an ``Inbox`` keeps a connection's frames in order, says which match a predicate,
whether a wait for a condition on them is over, and why it failed. The asyncio and
blocking clients beside this module only move frames between a socket and an
``Inbox`` and wait with their own primitive, as websockets' sans-I/O protocol
leaves its asyncio and sync shells only the bytes to move.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from system.apigateway_quotas import FRAME_BYTES

# Long enough for a deployed stack's cold starts; a wait that fails says what it waited for.
WAIT_TIMEOUT_S = 15
# The emulator, like API Gateway, negotiates no compression; messages are limited server-side.
CONNECT_OPTIONS = {"max_size": None, "compression": None, "open_timeout": WAIT_TIMEOUT_S}
WHOAMI_REQUEST = {"action": "whoami"}
EXCERPT_CHARS = 120


@dataclass(frozen=True)
class Frame:
    """One received frame: its text (a binary frame's decoded leniently) and the JSON
    object it holds (None if it holds none)."""

    text: str
    document: dict | None

    @classmethod
    def parse(cls, raw: str | bytes) -> Frame:
        text = raw if isinstance(raw, str) else raw.decode(errors="replace")
        try:
            document = json.loads(text)
        except ValueError:
            document = None
        return cls(text, document if isinstance(document, dict) else None)


Predicate = Callable[[Frame], bool]
Condition = Callable[[list[Frame]], bool]


def on_documents(predicate: Callable[[dict], bool]) -> Predicate:
    """A frame predicate from one on JSON objects; a frame that holds none never matches."""
    return lambda frame: frame.document is not None and predicate(frame.document)


def at_least(count: int, predicate: Predicate) -> Condition:
    return lambda frames: sum(map(predicate, frames)) >= count


def answers_whoami(frame: Frame) -> bool:
    return frame.document is not None and frame.document.get("type") == "whoami"


def encode(message: dict | str) -> str:
    """A message as a client sends it: a string as is, a dict as UTF-8 JSON."""
    return message if isinstance(message, str) else json.dumps(message, ensure_ascii=False)


def fragments(text: str) -> str | Iterator[bytes]:
    """``text`` as frames API Gateway accepts: one frame up to its 32 KB frame limit, beyond
    that 32 KB fragments of one message (whose own limit, 128 KB, the server enforces)."""
    data = text.encode()
    if len(data) <= FRAME_BYTES:
        return text
    return (data[i:i + FRAME_BYTES] for i in range(0, len(data), FRAME_BYTES))


class Inbox:
    """Every frame one connection received, in order, and whether the connection ended.

    Not locked: each client holds its own condition (asyncio or threading) around it.
    """

    def __init__(self) -> None:
        self.frames: list[Frame] = []
        self.ended = False

    def receive(self, frame: Frame) -> None:
        self.frames.append(frame)

    def end(self) -> None:
        self.ended = True

    def where(self, predicate: Predicate) -> list[Frame]:
        return [frame for frame in self.frames if predicate(frame)]

    def wait_is_over(self, condition: Condition) -> bool:
        """No frame comes after the end: waiting longer for ``condition`` is pointless."""
        return self.ended or condition(self.frames)

    def require(self, condition: Condition, what: str, timeout: float) -> None:
        """After a wait: AssertionError, saying why, unless ``condition`` holds."""
        if condition(self.frames):
            return
        why = "the connection closed" if self.ended else f"{timeout} s passed"
        excerpts = [frame.text[:EXCERPT_CHARS] for frame in self.frames]
        raise AssertionError(f"{why} waiting for {what}; inbox: {excerpts}")


def not_closed(timeout: float) -> AssertionError:
    return AssertionError(f"the server did not close the connection within {timeout} s")
