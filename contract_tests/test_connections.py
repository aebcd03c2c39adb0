"""Contracts of $connect and $disconnect: table state and notices to the others."""

from __future__ import annotations

import base64
import os
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from system.client.polling import eventually

# The contracts a fan-out strategy can break: run on each strategy (contract_tests/conftest.py),
# half a minute and more, so collected first (conftest.py).
pytestmark = [pytest.mark.every_fanout_strategy, pytest.mark.long_file]

# Rows of ~380 KB push live connections past the first 1 MB scan page.
BULKY_ROWS = 12
BULKY_ROW_PADDING_BYTES = 380_000


def joins_of(connection_id: str):
    return lambda f: f.kind == "JoinNotice" and f.document["connection_id"] == connection_id


def leaves_of(connection_id: str):
    return lambda f: f.kind == "LeaveNotice" and f.document["connection_id"] == connection_id


def parse_utc(text: str) -> datetime:
    assert text.endswith("Z"), f"not UTC: {text}"
    return datetime.fromisoformat(text)


def test_connect_registers_and_tells_every_other_client_once(clients, tables):
    before = datetime.now(UTC) - timedelta(seconds=5)
    others = [clients(), clients()]
    newcomer = clients()
    me = newcomer.connection_id
    assert tables.is_active(me)
    session = tables.session(me)
    assert before <= parse_utc(session["connected_at"]) <= datetime.now(UTC) + timedelta(seconds=5)
    assert session["source_ip"]
    for other in others:
        other.wait_for(joins_of(me))
    newcomer.chat("barrier")  # every notice of the join went out before this broadcast
    for client in [*others, newcomer]:
        client.wait_for(lambda f: f.kind == "ChatBroadcast" and f.document.get("text") == "barrier")
    assert [len(o.frames(joins_of(me))) for o in others] == [1, 1]
    assert newcomer.frames(joins_of(me)) == []


def test_disconnect_unregisters_closes_the_session_and_tells_the_others(clients, tables):
    stays, also_stays, leaves = clients(), clients(), clients()
    gone = leaves.connection_id
    leaves.close()
    for client in (stays, also_stays):
        client.wait_for(leaves_of(gone))  # sent after the row is deleted and the session closed
    assert not tables.is_active(gone)
    session = tables.session(gone)
    connected, disconnected = parse_utc(session["connected_at"]), parse_utc(
        session["disconnected_at"])
    duration = float(session["duration_seconds"])
    assert duration >= 0
    assert abs((disconnected - connected).total_seconds() - duration) < 2
    stays.chat("after-leave")
    for client in (stays, also_stays):
        client.wait_for(lambda f: f.document and f.document.get("text") == "after-leave")
        assert len(client.frames(leaves_of(gone))) == 1


def test_abrupt_drop_still_runs_disconnect(clients, tables):
    observer, dropped = clients(), clients()
    gone = dropped.connection_id
    dropped.drop()
    observer.wait_for(leaves_of(gone))
    assert not tables.is_active(gone)
    assert "disconnected_at" in tables.session(gone)


def a_connection_id_that_never_connected() -> str:
    return base64.urlsafe_b64encode(os.urandom(11)).decode()


def test_a_row_whose_connection_is_gone_is_pruned_at_the_next_broadcast(clients, tables):
    """A row left by a lost $disconnect: the fan-out meets GoneException and deletes it."""
    sender, other = clients(), clients()
    stale = a_connection_id_that_never_connected()
    tables.seed_active(stale, connected_at_ms=int(time.time() * 1000) - 3_600_000)
    text = f"prune-{uuid.uuid4()}"
    sender.chat(text)
    for client in (sender, other):
        client.wait_for(lambda f: f.kind == "ChatBroadcast" and f.document.get("text") == text)
    eventually(lambda: not tables.is_active(stale), "the stale row is pruned")


@pytest.mark.heavy_writes(rows=BULKY_ROWS, table="ActiveConnections",
                          megabytes=BULKY_ROWS * BULKY_ROW_PADDING_BYTES / 1e6)
def test_a_broadcast_reaches_connections_past_the_first_scan_page(clients, tables):
    """Scan returns at most 1 MB a page. Bulky rows (young, so never pruned) push live
    connections onto later pages; a handler that reads one page misses them. Every
    broadcast on the stack scans them while they stay: they go at the test's end."""
    padding = "p" * BULKY_ROW_PADDING_BYTES
    future_ms = int(time.time() * 1000) + 3_600_000
    bulky = [a_connection_id_that_never_connected() for _ in range(BULKY_ROWS)]
    try:
        for connection_id in bulky:
            tables.seed_active(connection_id, connected_at_ms=future_ms, padding=padding)
        everyone = [clients() for _ in range(6)]
        text = f"paged-{uuid.uuid4()}"
        everyone[0].chat(text)
        for client in everyone:
            client.wait_for(lambda f: f.kind == "ChatBroadcast" and f.document.get("text") == text)
    finally:
        tables.remove_seeded(bulky)
