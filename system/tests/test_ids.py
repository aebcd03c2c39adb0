"""The ids API Gateway hands out have AWS's shapes, and are not reused."""

import pytest

from system.local.apigateway.ids import (
    API_ID_PATTERN,
    CONNECTION_ID_PATTERN,
    MESSAGE_ID_PATTERN,
    REQUEST_ID_PATTERN,
    is_connection_id,
    new_api_id,
    new_connection_id,
    new_message_id,
    new_request_id,
)


@pytest.mark.parametrize("new_id, pattern, length", [
    (new_connection_id, CONNECTION_ID_PATTERN, 16),
    (new_message_id, MESSAGE_ID_PATTERN, 16),
    (new_request_id, REQUEST_ID_PATTERN, 12),
    (new_api_id, API_ID_PATTERN, 10),
])
def test_ids_have_aws_shapes_and_differ(new_id, pattern, length):
    ids = [new_id() for _ in range(1000)]
    assert len(set(ids)) == 1000
    assert [i for i in ids if not (pattern.fullmatch(i) and len(i) == length)] == []


@pytest.mark.parametrize("text, expected", [
    ("L0SM9cOFvHcCIhw=", True),
    ("L0SM9cOFvHcCIhw", False),        # no padding
    ("L0SM9cOFvHcCIhwA=", False),      # too long
    ("L0SM9cOFvH/CIhw=", False),       # '/' would split an @connections path
    ("L0SM9cOFvH+CIhw=", False),       # standard, not URL-safe, alphabet
    ("", False),
])
def test_what_counts_as_a_connection_id(text, expected):
    assert is_connection_id(text) is expected
