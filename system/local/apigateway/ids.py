"""The identifiers API Gateway hands out, and the shapes that tell them apart.

AWS connection ids look like ``L0SM9cOFvHcCIhw=``: 11 random bytes in base64,
16 characters ending in ``=`` (messageId has the same shape); requestId
(= extendedRequestId) is shorter and also ends in ``=``; an apiId is 10
lower-case letters and digits. The URL-safe alphabet keeps ids usable in an
``@connections/{id}`` path without escaping.

Nothing here imports another part of the emulator: connections, events and
the servers all take their ids from this module.
"""

from __future__ import annotations

import base64
import os
import re
import uuid

CONNECTION_ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{15}=")
MESSAGE_ID_PATTERN = CONNECTION_ID_PATTERN
REQUEST_ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{11}=")
API_ID_PATTERN = re.compile(r"[a-z0-9]{10}")


def _base64_id(random_bytes: int) -> str:
    return base64.urlsafe_b64encode(os.urandom(random_bytes)).decode()


def new_connection_id() -> str:
    return _base64_id(11)


def is_connection_id(text: str) -> bool:
    return CONNECTION_ID_PATTERN.fullmatch(text) is not None


def new_request_id() -> str:
    """Like AWS's extendedRequestId: short, base64-ish, ends in '='."""
    return _base64_id(8)[:11] + "="


def new_message_id() -> str:
    return _base64_id(11)


def new_api_id() -> str:
    return uuid.uuid4().hex[:10]
