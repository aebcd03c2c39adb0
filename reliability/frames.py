"""What API Gateway does with the frames a client sends: a model, written from RFC 6455
and API Gateway's quotas, that the frame fuzzer holds the local stack to.

A data message is one frame or several (a first frame, then continuations). The
stack closes the connection with 1009 when a frame passes the frame limit or the
frames so far pass the message limit (checked as each frame's header arrives), with
1007 when a text message is not UTF-8 (checked frame by frame, as it is decoded),
and with 1003 for a whole binary message; a ping is answered with a pong. Any other
text message is routed: one that selects no route of the chat gets ``$default``'s
error frame, and a message too deeply nested to parse is no exception.
"""

from __future__ import annotations

import codecs
import json
from dataclasses import dataclass

from websockets.frames import Frame, Opcode

from system.local.apigateway.closes import INVALID_DATA, MESSAGE_TOO_BIG, UNSUPPORTED_DATA

CHAT_ACTIONS = ("sendmessage", "whoami")


@dataclass(frozen=True)
class Message:
    """A data message as the fuzzer sends it, or a ping (``opcode`` PING, one fragment)."""

    opcode: Opcode
    fragments: tuple[bytes, ...]

    def __repr__(self) -> str:  # hypothesis prints failing examples: sizes, not megabytes
        sizes = ", ".join(f"{len(d)} B {d[:12]!r}" for d in self.fragments)
        return f"Message({self.opcode.name}, [{sizes}])"

    def wire(self) -> bytes:
        """The frames, masked as a client's must be."""
        last = len(self.fragments) - 1
        return b"".join(
            Frame(self.opcode if i == 0 else Opcode.CONT, data, fin=i == last).serialize(mask=True)
            for i, data in enumerate(self.fragments))


@dataclass(frozen=True)
class Expected:
    close_code: int | None  # None: the connection stays open
    default_route_replies: int  # $default's error frames the client gets before that


def routed_to_default(text: str) -> bool:
    """Whether the chat's route selection ($request.body.action) picks $default: a body
    that is not a JSON object naming one of the chat's actions (or cannot be parsed at
    all, however deep it nests)."""
    try:
        document = json.loads(text)
    except (ValueError, RecursionError):
        return True
    return not (isinstance(document, dict) and document.get("action") in CHAT_ACTIONS)


def expected(messages: list[Message], frame_limit: int, message_limit: int) -> Expected:
    replies = 0
    for message in messages:
        if message.opcode is Opcode.PING:
            continue
        total = 0
        decoder = codecs.getincrementaldecoder("utf-8")()
        text = []
        for number, data in enumerate(message.fragments, start=1):
            total += len(data)
            if len(data) > frame_limit or total > message_limit:
                return Expected(MESSAGE_TOO_BIG, replies)
            if message.opcode is Opcode.TEXT:
                try:
                    text.append(decoder.decode(data, final=number == len(message.fragments)))
                except UnicodeDecodeError:
                    return Expected(INVALID_DATA, replies)
        if message.opcode is Opcode.BINARY:
            return Expected(UNSUPPORTED_DATA, replies)
        replies += routed_to_default("".join(text))
    return Expected(None, replies)
