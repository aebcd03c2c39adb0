"""Contracts of sendmessage, the heartbeat, empty messages and $default."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from contract_tests.client import ChatClient
from contract_tests.strategies import (
    chat_texts,
    extra_fields,
    garbage,
    near_limit_sizes,
    over_limit_sizes,
    sized_text,
)
from system.apigateway_quotas import MANAGEMENT_PAYLOAD_BYTES, MESSAGE_BYTES
from system.handlers.frames import HEARTBEAT
from system.local.stack_fixtures import stack_fixture
from system.routes import with_route_response, write_routes_variant

# The contracts a fan-out strategy can break: run on each strategy (contract_tests/conftest.py),
# half a minute and more, so collected first (conftest.py).
pytestmark = [pytest.mark.every_fanout_strategy, pytest.mark.long_file]


def chat_with_text(text: str):
    return lambda f: f.kind == "ChatBroadcast" and f.document.get("text") == text


def broadcasts_of(message_id: str):
    return lambda f: f.kind == "ChatBroadcast" and f.document["message_id"] == message_id


def sent_by(client: ChatClient):
    """Broadcasts of the client's own messages (a shared stack carries others' too)."""
    return lambda f: f.kind == "ChatBroadcast" and f.document["sender"] == client.connection_id


def message_ids_of(client: ChatClient, predicate) -> set[str]:
    """The message ids of the broadcasts ``client`` received that match ``predicate``."""
    return {frame.document["message_id"] for frame in client.frames(predicate)}


def barrier(sender, everyone) -> str:
    """Once every client has this broadcast, whatever the sender sent before has settled.
    Its message id: the row a read of the sender's messages waits for."""
    marker = f"barrier-{uuid.uuid4()}"
    sender.chat(marker)
    for client in everyone:
        frame = client.wait_for(chat_with_text(marker))
    return frame.document["message_id"]


def test_every_connection_gets_each_message_once_and_it_is_stored_once(clients, tables):
    everyone = [clients() for _ in range(3)]
    sender = everyone[0]

    @given(text=chat_texts, extra=extra_fields)
    def send(text, extra):
        sender.send({"action": "sendmessage", "message": text, **extra})
        frame = sender.wait_for(chat_with_text(text)).document
        assert frame["sender"] == sender.connection_id
        for client in everyone:
            client.wait_for(broadcasts_of(frame["message_id"]))
        stored = tables.message(frame["message_id"])
        assert stored is not None, f"message {frame['message_id']} was broadcast, not stored"
        assert (stored["sender"], stored["message"], stored["timestamp"]) == (
            sender.connection_id, text, frame["sent_at"])

    send()
    barrier(sender, everyone)
    for client in everyone:
        ids = [f.document["message_id"] for f in client.frames(lambda f: f.kind == "ChatBroadcast")]
        assert len(ids) == len(set(ids)), "a broadcast arrived twice"
    broadcast = message_ids_of(sender, sent_by(sender))
    stored = tables.messages_from({sender.connection_id}, awaiting=broadcast)
    assert sorted(m["message_id"] for m in stored) == sorted(broadcast)


def test_each_message_of_a_burst_arrives_once_in_no_promised_order(clients):
    """The guarantee: exactly once per recipient. Not order: API Gateway invokes the
    route concurrently and the fan-out is concurrent, so recipients may see a burst
    from one sender in another order (as in AWS, where ordering needs e.g. SQS FIFO)."""
    everyone = [clients() for _ in range(3)]
    burst = [f"burst-{uuid.uuid4()}-{n}" for n in range(10)]
    for text in burst:
        everyone[0].chat(text)
    for client in everyone:
        for text in burst:
            client.wait_for(chat_with_text(text))
    barrier(everyone[1], everyone)
    for client in everyone:
        received = [f.document["text"] for f in client.frames(lambda f: f.kind == "ChatBroadcast")
                    if f.document.get("text", "").startswith("burst-")]
        assert sorted(received) == sorted(burst)


def test_heartbeat_is_stored_nowhere_and_broadcast_to_no_one(clients, tables):
    everyone = [clients() for _ in range(2)]
    everyone[0].chat(HEARTBEAT)
    settled = barrier(everyone[0], everyone)
    for client in everyone:
        assert client.frames(chat_with_text(HEARTBEAT)) == []
        assert client.frames(lambda f: f.kind == "Pong") == []  # no route response by default
    stored = tables.messages_from({everyone[0].connection_id}, awaiting={settled})
    assert HEARTBEAT not in [m["message"] for m in stored]


def test_empty_or_non_text_messages_are_refused(clients, tables):
    sender, other = clients(), clients()

    @given(message=st.sampled_from(["", None, 0, [], {}, True]))
    def send(message):
        sender.send({"action": "sendmessage", "message": message})
        barrier(sender, [sender, other])

    send()
    barriers = message_ids_of(sender, sent_by(sender))
    assert message_ids_of(other, sent_by(sender)) == barriers
    stored = tables.messages_from({sender.connection_id}, awaiting=barriers)
    assert {m["message_id"] for m in stored} == barriers  # barriers only


def test_default_answers_the_sender_only_and_stores_nothing(clients, tables):
    sender, bystander = clients(), clients()

    @given(junk=garbage)
    @example(junk="not json")  # one of each kind, whatever else hypothesis draws
    @example(junk={"action": "dance"})
    @example(junk={"action": 7})
    @example(junk={"message": "x"})
    def send(junk):
        before = len(sender.frames(lambda f: f.kind == "InvalidRequest"))
        sender.send(junk)
        sender.wait_for(lambda f: f.kind == "InvalidRequest", count=before + 1)

    send()
    settled = barrier(sender, [sender, bystander])
    assert bystander.frames(lambda f: f.kind == "InvalidRequest") == []
    stored = tables.messages_from({sender.connection_id}, awaiting={settled})
    assert [m["message_id"] for m in stored] == [settled]


def test_near_the_limit_a_message_is_delivered_whole_or_refused_whole(clients, tables):
    """The guarantee near 128 KB: stored and delivered to everyone, or neither; the
    broadcast (the text plus its formatting) must itself fit API Gateway's limit. Its
    formatting is of a fixed size for one sender (ids, a timestamp), measured on a message
    well under the limit: so each size is known to fit or not, and the test waits for the
    copies, or for a later message (a refusal on a one-way route sends nothing)."""
    sender, other = clients(), clients()

    def carries(text: str):
        return lambda f: f.kind == "ChatBroadcast" and text in f.document["message"]

    measured = sized_text(MESSAGE_BYTES - 4096) + uuid.uuid4().hex
    sender.chat(measured)
    formatting = len(sender.wait_for(carries(measured)).text.encode()) - len(measured)

    @given(size=near_limit_sizes)
    @example(size=MESSAGE_BYTES)  # refused, whatever else hypothesis draws
    def send(size):
        text = sized_text(size - 32) + uuid.uuid4().hex
        sender.chat(text)
        if len(text) + formatting > MANAGEMENT_PAYLOAD_BYTES:
            settled = barrier(sender, [sender, other])
            assert other.frames(carries(text)) == [] and sender.frames(carries(text)) == []
            assert [m for m in tables.messages_from({sender.connection_id}, awaiting={settled})
                    if m["message"] == text] == []
            return
        own_copy = sender.wait_for(carries(text))
        other.wait_for(carries(text))
        stored = [m for m in tables.messages_from({sender.connection_id},
                                                  awaiting={own_copy.document["message_id"]})
                  if m["message"] == text]
        assert len(stored) == 1

    send()


def test_over_the_limit_the_connection_closes_1009_and_nothing_is_stored(clients, tables):
    other = clients()

    @given(size=over_limit_sizes)
    def send(size):
        sender = clients()
        sender.chat(sized_text(size))
        assert sender.closed() == 1009
        settled = barrier(other, [other])
        stored = tables.messages_from({sender.connection_id, other.connection_id},
                                      awaiting={settled})
        assert [m for m in stored if m["sender"] == sender.connection_id] == []

    send()


def two_way_routes(request: pytest.FixtureRequest) -> list[str]:
    """The chat's routes with a route response on sendmessage."""
    if request.config.getoption("--stack-file") is not None:
        pytest.skip("needs a local stack whose routes the suite can set")
    routes = request.getfixturevalue("tmp_path_factory").mktemp("two-way") / "routes.toml"
    return ["--routes", str(write_routes_variant(routes, with_route_response("sendmessage")))]


two_way_stack = stack_fixture(two_way_routes, scope="module",
                              doc="The chat whose sendmessage return bodies reach the sender.")


def test_with_a_route_response_the_sender_alone_gets_pong_and_refusals(two_way_stack):
    url = two_way_stack.file.websocket_url
    sender, other = ChatClient(url), ChatClient(url)
    try:
        sender.chat(HEARTBEAT)
        sender.wait_for(lambda f: f.kind == "Pong")
        sender.chat("")
        sender.wait_for(lambda f: f.kind == "SendMessageRefused")
        sender.chat("two-way")
        accepted = sender.wait_for(lambda f: f.kind == "SendMessageAccepted").document
        assert accepted["recipients"] == 2
        other.wait_for(chat_with_text("two-way"))
        assert other.frames(lambda f: f.kind in ("Pong", "SendMessageRefused",
                                                 "SendMessageAccepted")) == []
        assert sender.violations == other.violations == []
    finally:
        sender.close()
        other.close()
