"""Hypothesis strategies for what clients send."""

from __future__ import annotations

from hypothesis import strategies as st

from system.apigateway_quotas import MESSAGE_BYTES
from system.handlers.frames import HEARTBEAT

# Unicode the chat must carry unchanged: astral-plane emoji, right-to-left
# scripts, combining marks, JSON's special characters, whitespace.
_TRICKY = st.sampled_from([
    "😀", "👩‍👩‍👧", "𝄞", "שלום", "مرحبا", "e\u0301", "\u200f", '"', "\\", "/", "\b", "\f",
    "\n", "\r", "\t", "\u2028", "\u0000", " ", "{}", "[", "</script>",
])
chat_texts = st.lists(_TRICKY | st.text(min_size=1, max_size=20), min_size=1, max_size=8).map(
    "".join).filter(lambda text: text != HEARTBEAT)

extra_fields = st.dictionaries(
    st.text(min_size=1, max_size=8).filter(lambda k: k not in ("action", "message")),
    st.none() | st.booleans() | st.integers() | st.text(max_size=10),
    max_size=3,
)

# $default material: not JSON, unknown actions, non-string actions, no action at all.
garbage = st.one_of(
    st.text(max_size=40).filter(lambda t: not t.lstrip().startswith("{")),
    st.builds(lambda a: {"action": a}, st.text(max_size=12).filter(
        lambda a: a not in ("sendmessage", "whoami"))),
    st.builds(lambda a: {"action": a}, st.integers() | st.booleans() | st.lists(st.integers())),
    st.builds(lambda m: {"message": m}, st.text(max_size=12)),
)


def sized_text(size_bytes: int) -> str:
    """ASCII text whose sendmessage frame is exactly ``size_bytes`` long."""
    envelope = len('{"action": "sendmessage", "message": ""}')
    return "x" * (size_bytes - envelope)


# Frame sizes around API Gateway's 128 KB message limit.
near_limit_sizes = st.integers(min_value=MESSAGE_BYTES - 2048, max_value=MESSAGE_BYTES)
over_limit_sizes = st.integers(min_value=MESSAGE_BYTES + 1, max_value=MESSAGE_BYTES + 4096)
