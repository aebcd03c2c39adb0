"""The chat protocol of ``asyncapi.yaml``, as a validator for the frames that cross the socket.

The contract suite validates every frame it receives against the AsyncAPI document:
``classify`` names the one server→client message a frame is, and raises ProtocolError
for anything else (no match, an ambiguous match, a binary frame). ``validate_client_message``
does the same for a request a client is about to send.

Which party sends a message is read from the document's operations, written from the
client's side: messages of ``send`` operations and replies to ``receive`` operations are the
client's; messages of ``receive`` operations and replies to ``send`` operations are the
server's. A message whose ``contentType`` is ``application/json`` (the document's default) is
validated against the parsed JSON of a frame; any other against the frame's raw text.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import yaml
from jsonschema import Draft7Validator
from jsonschema.exceptions import best_match
from referencing import Registry
from referencing.jsonschema import DRAFT7

DOCUMENT_PATH = Path(__file__).with_name("asyncapi.yaml")
DOCUMENT_URI = "urn:chat-harness:asyncapi"
JSON_CONTENT_TYPE = "application/json"
EXCERPT_CHARS = 200

DOCUMENT: dict = yaml.safe_load(DOCUMENT_PATH.read_text(encoding="utf-8"))
_REGISTRY = Registry().with_resource(DOCUMENT_URI, DRAFT7.create_resource(DOCUMENT))
_RESOLVER = _REGISTRY.resolver(base_uri=DOCUMENT_URI)


class ProtocolError(ValueError):
    """A frame or request that is not exactly one message of the protocol."""


@dataclass(frozen=True)
class MessageSchema:
    """One message of the document: how its frames are read and what they must look like."""

    is_json: bool
    validator: Draft7Validator


def _resolve(node: dict) -> dict:
    """The object a chain of document-local ``$ref``s ends at (``node`` itself if none)."""
    while "$ref" in node:
        node = _RESOLVER.lookup(node["$ref"]).contents
    return node


def _message_names(references: list[dict]) -> set[str]:
    return {_resolve(reference)["name"] for reference in references}


def _names_by_sender() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(client's messages, server's messages), each in the document's components order."""
    sent_by_client: set[str] = set()
    sent_by_server: set[str] = set()
    for operation in DOCUMENT["operations"].values():
        if operation["action"] == "send":
            requests, replies = sent_by_client, sent_by_server
        else:
            requests, replies = sent_by_server, sent_by_client
        requests |= _message_names(operation["messages"])
        replies |= _message_names(operation.get("reply", {}).get("messages", []))
    in_document_order = [message["name"] for message in DOCUMENT["components"]["messages"].values()]
    return (
        tuple(name for name in in_document_order if name in sent_by_client),
        tuple(name for name in in_document_order if name in sent_by_server),
    )


def _message_schemas() -> dict[str, MessageSchema]:
    default_content_type = DOCUMENT.get("defaultContentType", JSON_CONTENT_TYPE)
    schemas = {}
    for key, message in DOCUMENT["components"]["messages"].items():
        payload = {"$ref": f"{DOCUMENT_URI}#/components/messages/{key}/payload"}
        schemas[message["name"]] = MessageSchema(
            is_json=message.get("contentType", default_content_type) == JSON_CONTENT_TYPE,
            validator=Draft7Validator(payload, registry=_REGISTRY),
        )
    return schemas


CLIENT_MESSAGES, SERVER_MESSAGES = _names_by_sender()
_SCHEMAS = _message_schemas()


def _excerpt(text: str | bytes) -> str:
    """``text`` as a one-line literal, cut at EXCERPT_CHARS."""
    suffix = "..." if len(text) > EXCERPT_CHARS else ""
    return f"{text[:EXCERPT_CHARS]!r}{suffix}"


def _nearest_miss(payload: object, candidates: list[str]) -> str:
    """The candidate that fails ``payload`` with the fewest errors, and its most telling error."""
    errors_by_name = {
        name: list(_SCHEMAS[name].validator.iter_errors(payload)) for name in candidates
    }
    nearest = min(errors_by_name, key=lambda name: len(errors_by_name[name]))
    error = best_match(errors_by_name[nearest])
    return f"nearest is {nearest}, at {error.json_path}: {error.message[:EXCERPT_CHARS]}"


def _match(payload: object, names: tuple[str, ...], shown: str, *, is_json: bool) -> str:
    """The one message of ``names`` that ``payload`` is; ``shown`` is what error reasons quote."""
    candidates = [name for name in names if _SCHEMAS[name].is_json == is_json]
    matches = [name for name in candidates if _SCHEMAS[name].validator.is_valid(payload)]
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise ProtocolError(f"matches {' and '.join(matches)} at once: {_excerpt(shown)}")
    raise ProtocolError(
        f"matches no message ({_nearest_miss(payload, candidates)}): {_excerpt(shown)}"
    )


def classify(frame: str | bytes) -> str:
    """The name of the one server→client message ``frame`` is; ProtocolError otherwise."""
    if isinstance(frame, bytes):
        raise ProtocolError(f"binary frame, the chat sends text frames only: {_excerpt(frame)}")
    try:
        document = json.loads(frame)
    except json.JSONDecodeError:
        return _match(frame, SERVER_MESSAGES, frame, is_json=False)
    return _match(document, SERVER_MESSAGES, frame, is_json=True)


def validate_client_message(document: dict) -> str:
    """The name of the one client→server message ``document`` is; ProtocolError otherwise."""
    shown = json.dumps(document, ensure_ascii=False)
    return _match(document, CLIENT_MESSAGES, shown, is_json=True)
