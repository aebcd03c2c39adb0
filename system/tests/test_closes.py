"""Which close $disconnect reports, and which closes mean the client's input was refused."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from system.local.apigateway.closes import (
    BINARY_REFUSED,
    DELETED,
    DROPPED,
    GOING_AWAY,
    Close,
    bad_input,
    disconnect_status,
)

closes = st.builds(Close, st.integers(1000, 4999), st.text(max_size=20))


@pytest.mark.parametrize("received, sent, reported", [
    (Close(1000, "bye"), Close(1000, "bye"), (1000, "bye")),         # client closed, echoed
    (Close(1005, ""), Close(1005, ""), (1005, "")),                  # client sent no code
    (Close(1001, "Going away"), GOING_AWAY, (1001, "Going away")),   # quota close, echoed
    (DELETED, DELETED, (1000, "")),                                  # DeleteConnection
    (None, GOING_AWAY, (1001, "Going away")),                        # client vanished after
    (None, None, (1006, "Connection dropped without a close frame")),  # no frame either way
])
def test_disconnect_status(received, sent, reported):
    status = disconnect_status(received, sent)
    assert (status.code, status.reason) == reported


@given(st.none() | closes, st.none() | closes)
def test_the_clients_close_wins_then_the_servers_then_1006(received, sent):
    status = disconnect_status(received, sent)
    if received is not None:
        assert status == received
    elif sent is not None:
        assert status == sent
    else:
        assert status == DROPPED and status.code == 1006


@pytest.mark.parametrize("code, what", [
    (1003, "binary frame"),
    (1007, "invalid UTF-8"),
    (1009, "message or frame over the size limit"),
    (1002, "WebSocket protocol error"),
])
def test_refused_input_is_named(code, what):
    assert bad_input(Close(code)) == what


@pytest.mark.parametrize("close", [DELETED, GOING_AWAY, DROPPED, Close(1005)])
def test_ordinary_closes_are_not_bad_input(close):
    assert bad_input(close) is None


def test_binary_frames_are_refused_with_1003():
    assert (BINARY_REFUSED.code, bad_input(BINARY_REFUSED)) == (1003, "binary frame")
