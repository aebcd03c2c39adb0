"""The AsyncAPI document is well formed, and protocol.py tells its messages apart."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest
from jsonschema import Draft7Validator

from contract_tests.protocol import (
    CLIENT_MESSAGES,
    DOCUMENT,
    SERVER_MESSAGES,
    ProtocolError,
    classify,
    validate_client_message,
)
from system.handlers.frames import presence_frame

CHAT_BROADCAST = {
    "message": "[2026-11-26T10:00:45.079Z - UTC]\n 0cGAU3aHadLjdBo=  hi\n",
    "type": "chat",
    "message_id": "ada96c6c-66a3-447a-89f9-d0e71a6684d0",
    "sender": "0cGAU3aHadLjdBo=",
    "sent_at": "2026-11-26T10:00:45.079Z",
    "text": "hi",
}
SERVER_VARIABLE = re.compile(r"\{([^{}]+)\}")


def references(node: object) -> Iterator[str]:
    """Every ``$ref`` value anywhere in ``node``."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from references(value)
    elif isinstance(node, list):
        for item in node:
            yield from references(item)


def pointed_at(reference: str) -> object:
    """What a document-local reference ('#/a/b') points at, by JSON Pointer (RFC 6901)."""
    assert reference.startswith("#/"), f"{reference} is not local to the document"
    node: object = DOCUMENT
    for token in reference[2:].split("/"):
        token = token.replace("~1", "/").replace("~0", "~")
        assert isinstance(node, dict) and token in node, f"{reference} does not resolve"
        node = node[token]
    return node


def test_the_document_is_asyncapi_3():
    assert DOCUMENT["asyncapi"] == "3.0.0"
    assert {"title", "version"} <= DOCUMENT["info"].keys()
    assert set(DOCUMENT) <= {
        "asyncapi", "id", "info", "servers", "defaultContentType", "channels", "operations",
        "components",
    }
    assert DOCUMENT["channels"]["chat"]["address"] == "/"


def test_servers_are_local_and_aws():
    local, aws = DOCUMENT["servers"]["local"], DOCUMENT["servers"]["aws"]
    assert (local["host"], local["pathname"], local["protocol"]) == (
        "127.0.0.1:8765", "/local", "ws"
    )
    assert (aws["host"], aws["pathname"], aws["protocol"]) == (
        "{apiId}.execute-api.{region}.amazonaws.com", "/{stage}", "wss"
    )
    for server in DOCUMENT["servers"].values():
        used = set(SERVER_VARIABLE.findall(server["host"] + server.get("pathname", "")))
        assert used == set(server.get("variables", {}))


def test_every_reference_resolves_within_the_document():
    found = list(references(DOCUMENT))
    assert found
    for reference in found:
        pointed_at(reference)


def test_operations_use_their_channels_messages():
    for name, operation in DOCUMENT["operations"].items():
        assert operation["action"] in {"send", "receive"}, name
        parts = [operation, *([operation["reply"]] if "reply" in operation else [])]
        for part in parts:
            channel = part["channel"]["$ref"]
            for message in part["messages"]:
                assert message["$ref"].startswith(f"{channel}/messages/"), (name, message)


def test_message_names_match_their_keys_and_schemas_are_draft_7():
    for key, message in DOCUMENT["components"]["messages"].items():
        assert message["name"] == key
        assert message["description"]
    for schema in DOCUMENT["components"]["schemas"].values():
        Draft7Validator.check_schema(schema)


def test_every_message_has_one_sender():
    assert set(SERVER_MESSAGES) == {
        "ChatBroadcast", "JoinNotice", "LeaveNotice", "PresenceNotice", "WhoAmI",
        "InvalidRequest", "Pong",
        "SendMessageAccepted", "SendMessageRefused", "InternalServerError", "Forbidden",
    }
    assert set(CLIENT_MESSAGES) == {"SendMessage", "WhoAmIRequest", "UnroutedRequest"}


def examples(names: tuple[str, ...]) -> list[tuple[str, object]]:
    return [
        (name, example["payload"])
        for name in names
        for example in DOCUMENT["components"]["messages"][name].get("examples", [])
    ]


@pytest.mark.parametrize(("name", "payload"), examples(SERVER_MESSAGES))
def test_the_documents_server_examples_classify_as_their_message(name, payload):
    frame = payload if isinstance(payload, str) else json.dumps(payload)
    assert classify(frame) == name


@pytest.mark.parametrize(("name", "payload"), examples(CLIENT_MESSAGES))
def test_the_documents_client_examples_validate_as_their_message(name, payload):
    assert validate_client_message(payload) == name


@pytest.mark.parametrize(
    ("frame", "name"),
    [
        (json.dumps(CHAT_BROADCAST), "ChatBroadcast"),
        (json.dumps({key: v for key, v in CHAT_BROADCAST.items() if key != "text"}),
         "ChatBroadcast"),
        (('{"message": "A new user has joined the chat - 3zfphLlnoq_CC50=", "type": "join", '
          '"connection_id": "3zfphLlnoq_CC50="}'), "JoinNotice"),
        (('{"message": "A user has left the chat - 3zfphLlnoq_CC50=", "type": "leave", '
          '"connection_id": "3zfphLlnoq_CC50="}'), "LeaveNotice"),
        (json.dumps(presence_frame(["3zfphLlnoq_CC50=", "0cGAU3aHadLjdBo="], [])),
         "PresenceNotice"),
        (json.dumps(presence_frame([], ["3zfphLlnoq_CC50="])), "PresenceNotice"),
        (('{"message": "Your connection id is 0cGAU3aHadLjdBo=", "type": "whoami", '
          '"connection_id": "0cGAU3aHadLjdBo="}'), "WhoAmI"),
        ('{"error": "Invalid request", "message": "The requested action is not recognized."}',
         "InvalidRequest"),
        (('{"message":"Internal server error","connectionId":"0cGAU3aHadLjdBo=",'
          '"requestId":"xsMiSqUJRhw="}'), "InternalServerError"),
        ('{"message":"Forbidden","connectionId":"L0SM9cOFvHc+Ihw=","requestId":"xsMiSqUJRhw="}',
         "Forbidden"),
        (('{"status": "sent", "message_id": "ada96c6c-66a3-447a-89f9-d0e71a6684d0", '
          '"recipients": 0}'), "SendMessageAccepted"),
        ("Message cannot be empty", "SendMessageRefused"),
        ("Message must be a string", "SendMessageRefused"),
        ("Message too long (131073 bytes, at most 131072)", "SendMessageRefused"),
        ('{"message":"pong"}', "Pong"),
    ],
)
def test_frames_classify_as_their_message(frame, name):
    assert classify(frame) == name


@pytest.mark.parametrize(
    "frame",
    [
        json.dumps({**CHAT_BROADCAST, "room": "lobby"}),
        json.dumps({**CHAT_BROADCAST, "type": "message"}),
        json.dumps({key: v for key, v in CHAT_BROADCAST.items() if key != "sender"}),
        json.dumps({**CHAT_BROADCAST, "sender": "not a connection id"}),
        json.dumps({**CHAT_BROADCAST, "sent_at": "2026-11-26T10:00:45Z"}),
        json.dumps(CHAT_BROADCAST).encode(),
        '{"message": "hi"}',
        '"Message cannot be empty"',
        ('{"status": "sent", "message_id": "ada96c6c-66a3-447a-89f9-d0e71a6684d0", '
         '"recipients": -1}'),
        "Message cannot be empty, please",
        "random text",
        "",
    ],
)
def test_malformed_frames_are_protocol_errors(frame):
    with pytest.raises(ProtocolError) as raised:
        classify(frame)
    reason = str(raised.value)
    assert "\n" not in reason


def test_a_protocol_error_quotes_the_frame_cut_short():
    frame = json.dumps({**CHAT_BROADCAST, "text": "x" * 1000, "extra": True})
    with pytest.raises(ProtocolError, match="nearest is ChatBroadcast") as raised:
        classify(frame)
    assert repr(frame[:200]) in str(raised.value)
    assert frame[:201] not in str(raised.value)


@pytest.mark.parametrize(
    ("document", "name"),
    [
        ({"action": "sendmessage", "message": "hi", "client_time": 1}, "SendMessage"),
        ({"action": "sendmessage", "message": ""}, "SendMessage"),
        ({"action": "whoami"}, "WhoAmIRequest"),
        ({"action": "dance"}, "UnroutedRequest"),
        ({"message": "hi"}, "UnroutedRequest"),
        ({"action": "$connect"}, "UnroutedRequest"),
    ],
)
def test_client_messages_validate_as_their_message(document, name):
    assert validate_client_message(document) == name


@pytest.mark.parametrize(
    "document", [{"action": "sendmessage"}, {"action": "sendmessage", "message": 42}]
)
def test_malformed_client_messages_are_protocol_errors(document):
    with pytest.raises(ProtocolError):
        validate_client_message(document)
