"""Contracts under faults, on targets that can inject them (the local stack)."""

from __future__ import annotations

import time
import uuid

from contract_tests.tables import eventually
from contract_tests.test_messages import barrier, chat_with_text, message_ids_of


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
    assert faults.state()["injected"]["post_failure"] >= line["Failed"] * 3  # 3 attempts each


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
