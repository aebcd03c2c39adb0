"""Random sequences of connect / send / ping / garbage / close / drop, checked against a model.

The model says what must be true after each step: which connections are active,
which messages are stored, and what each client's inbox holds (chat messages,
join and leave notices about the connections this machine made, $default
errors). Steps settle by waiting for the frames the model expects; an
observer client stays connected throughout, so every close and drop can be
awaited through the leave notice it causes.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import pytest
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    initialize,
    invariant,
    precondition,
    rule,
)

from contract_tests.client import ChatClient, Frame
from contract_tests.strategies import chat_texts, garbage
from system.handlers.frames import HEARTBEAT

# The contracts a fan-out strategy can break: run on each strategy (contract_tests/conftest.py),
# half a minute and more, so collected first (conftest.py).
pytestmark = [pytest.mark.every_fanout_strategy, pytest.mark.long_file]

MAX_OPEN = 4


@dataclass
class ExpectedInbox:
    chats: Counter = field(default_factory=Counter)  # (sender, text)
    joins: Counter = field(default_factory=Counter)  # connection id
    leaves: Counter = field(default_factory=Counter)
    errors: int = 0


@dataclass
class ChatModel:
    """What the chat must have done, for the connections this run made."""

    open: dict[str, ExpectedInbox] = field(default_factory=dict)
    closed: set[str] = field(default_factory=set)
    stored: Counter = field(default_factory=Counter)  # (sender, text)

    @property
    def known(self) -> set[str]:
        return set(self.open) | self.closed

    def connect(self, connection_id: str) -> None:
        for inbox in self.open.values():
            inbox.joins[connection_id] += 1
        self.open[connection_id] = ExpectedInbox()

    def send(self, sender: str, text: str) -> None:
        self.stored[(sender, text)] += 1
        for inbox in self.open.values():
            inbox.chats[(sender, text)] += 1

    def garbage(self, sender: str) -> None:
        self.open[sender].errors += 1

    def leave(self, connection_id: str) -> None:
        del self.open[connection_id]
        self.closed.add(connection_id)
        for inbox in self.open.values():
            inbox.leaves[connection_id] += 1


def actual_inbox(frames: list[Frame], known: set[str]) -> ExpectedInbox:
    """An inbox in the model's terms; notices about other runs' clients ignored."""
    inbox = ExpectedInbox()
    for frame in frames:
        doc = frame.document or {}
        if frame.kind == "ChatBroadcast" and doc["sender"] in known:
            inbox.chats[(doc["sender"], doc.get("text"))] += 1
        elif frame.kind == "JoinNotice" and doc["connection_id"] in known:
            inbox.joins[doc["connection_id"]] += 1
        elif frame.kind == "LeaveNotice" and doc["connection_id"] in known:
            inbox.leaves[doc["connection_id"]] += 1
        elif frame.kind == "InvalidRequest":
            inbox.errors += 1
    return inbox


def covers(actual: ExpectedInbox, expected: ExpectedInbox) -> bool:
    return (not (expected.chats - actual.chats) and not (expected.joins - actual.joins)
            and not (expected.leaves - actual.leaves) and actual.errors >= expected.errors)


def difference(expected: ExpectedInbox, actual: ExpectedInbox) -> str:
    lines = []
    for name in ("chats", "joins", "leaves"):
        missing = getattr(expected, name) - getattr(actual, name)
        extra = getattr(actual, name) - getattr(expected, name)
        if missing:
            lines.append(f"  {name} missing: {dict(missing)}")
        if extra:
            lines.append(f"  {name} unexpected: {dict(extra)}")
    if expected.errors != actual.errors:
        lines.append(f"  $default errors: expected {expected.errors}, got {actual.errors}")
    return "\n".join(lines)


class ChatMachine(RuleBasedStateMachine):
    stack = None  # set by the test below
    tables = None
    opened_clients = None

    clients = Bundle("clients")

    def __init__(self) -> None:
        super().__init__()
        self.model = ChatModel()
        self.sockets: dict[str, ChatClient] = {}
        self.observer: ChatClient | None = None

    def _open_client(self) -> ChatClient:
        client = ChatClient(self.stack.websocket_url)
        self.opened_clients.append(client)
        self.model.connect(client.whoami())
        self.sockets[client.connection_id] = client
        return client

    @initialize()
    def start_observer(self) -> None:
        self.observer = self._open_client()

    @precondition(lambda self: len(self.model.open) < MAX_OPEN)
    @rule(target=clients)
    def connect(self) -> str:
        return self._open_client().connection_id

    @rule(sender=clients, text=chat_texts)
    def send(self, sender: str, text: str) -> None:
        self.sockets[sender].chat(text)
        self.model.send(sender, text)

    @rule(sender=clients)
    def ping(self, sender: str) -> None:
        self.sockets[sender].chat(HEARTBEAT)
        self._barrier(sender)

    def _barrier(self, sender: str) -> None:
        """A ping causes no frame to wait for; a chat message after it, once everyone has
        it, leaves the ping's invocation time to finish, so that its effects (if a broken
        handler has any) show at this step and a failing run replays the same."""
        marker = f"barrier-{len(self.model.stored)}"
        self.send(sender, marker)
        self._settle()

    @rule(sender=clients, junk=garbage)
    def send_garbage(self, sender: str, junk) -> None:
        self.sockets[sender].send(junk)
        self.model.garbage(sender)

    @rule(leaver=consumes(clients), abruptly=st.booleans())
    def leave(self, leaver: str, abruptly: bool) -> None:
        client = self.sockets[leaver]
        client.drop() if abruptly else client.close()
        self.model.leave(leaver)
        # The leave notice is sent after the row is deleted and the session closed.
        self.observer.wait_for(lambda f: f.kind == "LeaveNotice"
                               and f.document["connection_id"] == leaver)

    def _settle(self) -> None:
        """Wait until every open client holds at least what the model expects."""
        for connection_id, expected in self.model.open.items():
            self.sockets[connection_id].wait_until(
                lambda inbox, expected=expected: covers(actual_inbox(inbox, self.model.known),
                                                        expected),
                f"the frames the model expects for {connection_id}")

    @invariant()
    def inboxes_match_the_model(self) -> None:
        if self.observer is None:
            return
        self._settle()
        for connection_id, expected in self.model.open.items():
            actual = actual_inbox(self.sockets[connection_id].inbox, self.model.known)
            diff = difference(expected, actual)
            assert not diff, f"inbox of {connection_id} differs from the model:\n{diff}"

    @invariant()
    def tables_match_the_model(self) -> None:
        if self.observer is None:
            return
        active = self.tables.active_among(self.model.known)
        assert active == set(self.model.open), (
            f"ActiveConnections: missing {set(self.model.open) - active}, "
            f"unexpected {active - set(self.model.open)}")
        broadcast = {f.document["message_id"] for f in self.observer.frames(
            lambda f: f.kind == "ChatBroadcast" and f.document["sender"] in self.model.known)}
        stored = Counter((m["sender"], m["message"])
                         for m in self.tables.messages_from(self.model.known, awaiting=broadcast))
        assert stored == self.model.stored, (
            f"MessageHistory: missing {dict(self.model.stored - stored)}, "
            f"unexpected {dict(stored - self.model.stored)}")
        for connection_id in self.model.closed:
            assert "disconnected_at" in self.tables.session(connection_id), (
                f"SessionHistory of {connection_id} was not closed")

    def teardown(self) -> None:
        violations = [v for client in self.sockets.values() for v in client.violations]
        for connection_id in list(self.model.open):
            self.sockets[connection_id].close()
        assert not violations, "frames outside the protocol:\n" + "\n".join(violations)


def test_chat_follows_the_model(stack, tables, opened_clients):
    ChatMachine.stack, ChatMachine.tables = stack, tables
    ChatMachine.opened_clients = opened_clients
    ChatMachine.TestCase().runTest()

