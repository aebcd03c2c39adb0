"""Contracts under faults, on targets that can inject them (the local stack)."""

from __future__ import annotations

import threading
import time
import uuid

from contract_tests.test_messages import barrier, chat_with_text, message_ids_of
from system.client.polling import eventually


def test_a_crash_in_sendmessage_tells_the_sender_and_stores_nothing(clients, tables, faults):
    sender, other = clients(), clients()
    faults.arm(handler_errors={"sendmessage": 1})
    text = f"crash-{uuid.uuid4()}"
    sender.chat(text)
    error = sender.wait_for(lambda f: f.kind == "InternalServerError").document
    assert error["connectionId"] == sender.connection_id
    sender.chat(text)  # the retry a user would make
    for client in (sender, other):
        client.wait_for(chat_with_text(text))
    barrier(sender, [sender, other])
    assert [len(c.frames(chat_with_text(text))) for c in (sender, other)] == [1, 1]
    stored = tables.messages_from({sender.connection_id},
                                  awaiting=message_ids_of(sender, chat_with_text(text)))
    assert [m["message"] for m in stored].count(text) == 1


def test_throttled_writes_are_retried_and_stored_once(clients, tables, faults, stack):
    sender, other = clients(), clients()
    faults.arm(throttle={stack.tables["message_history"]: 2})
    text = f"throttled-{uuid.uuid4()}"
    sender.chat(text)
    for client in (sender, other):
        client.wait_for(chat_with_text(text))
    assert faults.state()["injected"]["throttle"] == 2
    stored = tables.messages_from({sender.connection_id},
                                  awaiting=message_ids_of(sender, chat_with_text(text)))
    assert [m["message"] for m in stored].count(text) == 1


def test_posts_answered_429_are_retried_or_counted_never_silently_lost(clients, faults,
                                                                       emf_metrics):
    everyone = [clients() for _ in range(4)]
    armed_at = time.time() * 1000
    faults.arm(post_failure={"status": 429, "fraction": 0.6}, seed=3)
    text = f"limited-{uuid.uuid4()}"
    everyone[0].chat(text)
    [line] = emf_metrics.matching(lambda m: m.get("Route") == "sendmessage" and "Recipients" in m
                                  and m["_aws"]["Timestamp"] >= armed_at)
    faults.clear()
    barrier(everyone[1], everyone)
    receivers = sum(1 for client in everyone if client.frames(chat_with_text(text)))
    assert line["Recipients"] == len(everyone)
    assert line["Delivered"] == receivers
    assert line["Delivered"] + line["Failed"] + line["Gone"] == line["Recipients"]
    # each failed delivery was tried POST_ATTEMPTS (5) times (system/handlers/chat.py)
    assert faults.state()["injected"]["post_failure"] >= line["Failed"] * 5


def test_a_stale_row_from_a_lost_disconnect_is_pruned_at_the_next_broadcast(clients, tables,
                                                                           faults):
    sender, other, lost = clients(), clients(), clients()
    faults.arm(suppress_disconnect=True)
    lost.drop()
    assert tables.is_active(lost.connection_id)  # no $disconnect: the row stays
    # Older than the handlers' grace for connections still in $connect.
    tables.seed_active(lost.connection_id, connected_at_ms=int(time.time() * 1000) - 3_600_000)
    text = f"after-drop-{uuid.uuid4()}"
    sender.chat(text)
    for client in (sender, other):
        client.wait_for(chat_with_text(text))
    eventually(lambda: not tables.is_active(lost.connection_id), "the stale row is pruned")


# Longer than the 5 s the handlers once kept a row that answered 410: a row older than
# that, of a connection still in its handshake, was pruned, and its client never heard
# from the chat again.
HANDSHAKE_HOLD_S = 6
JOINERS = 3


def test_connections_joining_while_others_chat_are_never_pruned(clients, tables, faults):
    """Concurrent joins whose handshakes are held after $connect returned (their rows
    written, @connections still answering 410) while broadcasts go out: each broadcast
    meets their 410s, and still every one of them gets every later message."""
    talker, listener = clients(), clients()
    faults.arm(connect_hold={"seconds": HANDSHAKE_HOLD_S, "count": JOINERS})
    joined = []
    threads = [threading.Thread(target=lambda: joined.append(clients())) for _ in range(JOINERS)]
    for thread in threads:
        thread.start()
    sent = 0
    while joining := [thread for thread in threads if thread.is_alive()]:
        talker.chat(f"while-joining-{sent}-{uuid.uuid4()}")
        sent += 1
        joining[0].join(timeout=0.5)  # a broadcast every half second until all have joined
    assert len(joined) == JOINERS and sent >= HANDSHAKE_HOLD_S
    assert faults.state()["injected"]["connect_hold"] == JOINERS
    text = f"after-joining-{uuid.uuid4()}"
    talker.chat(text)
    for client in [listener, *joined]:
        client.wait_for(chat_with_text(text))
    assert all(tables.is_active(client.connection_id) for client in joined)
