"""Waiting for state no client sees as a frame (a table row, a file), bounded: for the
contract suite and the emulator's tests alike."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from system.client.core import WAIT_TIMEOUT_S

POLL_INTERVAL_S = 0.05

T = TypeVar("T")


def polled(read: Callable[[], T], until: Callable[[T], bool],
           timeout: float = WAIT_TIMEOUT_S) -> T:
    """``read()`` again until ``until`` holds of what it returns, bounded; the last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = read()
        if until(value) or time.monotonic() > deadline:
            return value
        time.sleep(POLL_INTERVAL_S)


def eventually(check: Callable[[], bool], what: str, timeout: float = WAIT_TIMEOUT_S) -> None:
    """Check until true, bounded; else an AssertionError saying what never happened."""
    if not polled(check, until=bool, timeout=timeout):
        raise AssertionError(f"not within {timeout} s: {what}")
