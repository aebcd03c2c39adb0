"""Hypothesis sends the stack frames a hostile or broken client might: text, binary and
ping frames, fragmented messages, invalid UTF-8, frames and messages over the limits,
deep nesting. Each connection ends as the model (``frames.py``) says API Gateway ends
it, or stays open and answers; after every example the canary still chats."""

from __future__ import annotations

import itertools
import json

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from websockets.frames import Opcode

from reliability.frames import Message, expected
from system.apigateway_quotas import FRAME_BYTES, MESSAGE_BYTES
from system.client import BlockingChatClient
from system.client.core import at_least, on_documents

INVALID_UTF8 = [b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xe2\x82"]  # \xe2\x82: cut short
NEAR_LIMITS = [FRAME_BYTES - 1, FRAME_BYTES, FRAME_BYTES + 1, MESSAGE_BYTES, MESSAGE_BYTES + 1]


@st.composite
def payloads(draw) -> bytes:
    kind = draw(st.sampled_from(["text", "json", "nested", "sized", "invalid"]))
    if kind == "text":
        return draw(st.text(max_size=200)).encode()
    if kind == "json":
        action = draw(st.sampled_from(["sendmessage", "whoami", "nope", None]))
        body = draw(st.fixed_dictionaries({}, optional={
            "action": st.just(action), "message": st.one_of(st.text(max_size=50), st.integers(),
                                                            st.none(), st.lists(st.integers()))}))
        return json.dumps(body).encode()
    if kind == "nested":
        depth = draw(st.integers(1, 30_000))
        return (b"[" * depth)[:FRAME_BYTES] if draw(st.booleans()) else (
            b'{"action":' * min(depth, 3000))[:FRAME_BYTES]
    if kind == "sized":
        return b"x" * draw(st.sampled_from(NEAR_LIMITS))
    text = draw(st.text(max_size=20)).encode()
    at = draw(st.integers(0, len(text)))
    return text[:at] + draw(st.sampled_from(INVALID_UTF8)) + text[at:]


@st.composite
def messages(draw) -> Message:
    kind = draw(st.sampled_from([Opcode.TEXT, Opcode.TEXT, Opcode.BINARY, Opcode.PING]))
    if kind is Opcode.PING:
        return Message(Opcode.PING, (draw(st.binary(max_size=125)),))
    data = draw(payloads())
    cuts = sorted(draw(st.lists(st.integers(0, len(data)), max_size=3)))
    bounds = [0, *cuts, len(data)]
    return Message(kind, tuple(data[a:b] for a, b in itertools.pairwise(bounds)))


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                 HealthCheck.function_scoped_fixture])
@given(sent=st.lists(messages(), min_size=1, max_size=3))
@example(sent=[Message(Opcode.TEXT, (b"[" * 30_000,))])  # under the frame limit, too deep to parse
@example(sent=[Message(Opcode.TEXT, (b"\xe2\x82", b"\xac"))])  # one character over two frames
def test_frames_end_as_api_gateway_ends_them(chat_stack, canary, sent):
    # Up to the first message that ends the connection: after it, which of two broken
    # messages the stack reads first is its own business.
    for count in range(1, len(sent) + 1):
        model = expected(sent[:count], FRAME_BYTES, MESSAGE_BYTES)
        if model.close_code is not None:
            break
    client = BlockingChatClient(chat_stack.file.websocket_url)
    try:
        for message in sent[:count]:
            client.ws.socket.sendall(message.wire())
        if model.close_code is not None:
            assert client.closed() == model.close_code
        else:
            client.whoami()  # still open, still routed
            client.wait_until(at_least(model.default_route_replies, on_documents(
                lambda d: d.get("error") == "Invalid request")), "$default's error frames")
    finally:
        client.close()
    canary.check()
