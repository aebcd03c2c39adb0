"""The chat's frames, written once: what a client sends, and what the chat sends back.

The wire format is the reference app's: a client shows ``message``; the other fields
are machine-readable extras that ride along (``type`` says which frame it is). Pure
code with no AWS client, so that tools outside the functions (benchmarks, load tests,
test clients) build the same frames.
"""

from __future__ import annotations

HEARTBEAT = "ping"


def sendmessage_request(text: str) -> dict:
    """A client's chat message (``HEARTBEAT`` as its text is a heartbeat)."""
    return {"action": "sendmessage", "message": text}


def chat_frame(message_id: str, sender: str, sent_at: str, text: str,
               sender_name: str | None = None) -> dict:
    """A chat message broadcast to every connection; ``sent_at`` is ISO 8601 UTC.
    ``sender_name`` (the authorizer's principal, where there is one) names the sender
    in the line people read; ``sender`` stays its connection id."""
    frame = {"message": f"[{sent_at} - UTC]\n {sender_name or sender}  {text}\n",
             "type": "chat", "message_id": message_id, "sender": sender}
    if sender_name:
        frame["sender_name"] = sender_name
    return {**frame, "sent_at": sent_at, "text": text}


def join_frame(connection_id: str) -> dict:
    return {"message": f"A new user has joined the chat - {connection_id}", "type": "join",
            "connection_id": connection_id}


def leave_frame(connection_id: str) -> dict:
    return {"message": f"A user has left the chat - {connection_id}", "type": "leave",
            "connection_id": connection_id}


def presence_frame(joined: list[str], left: list[str]) -> dict:
    """Coalesced join and leave notices (PRESENCE_NOTICES=coalesced): who came and went
    since the last one."""
    def told(ids: list[str], verb: str) -> str:
        users = "1 user has" if len(ids) == 1 else f"{len(ids)} users have"
        return f"{users} {verb} the chat - {', '.join(ids)}"

    parts = [told(ids, verb) for ids, verb in ((joined, "joined"), (left, "left")) if ids]
    return {"message": "; ".join(parts), "type": "presence", "joined": joined, "left": left}


def whoami_frame(connection_id: str) -> dict:
    return {"message": f"Your connection id is {connection_id}", "type": "whoami",
            "connection_id": connection_id}


INVALID_REQUEST_FRAME = {
    "error": "Invalid request",
    "message": "The requested action is not recognized. "
               'Send {"action":"sendmessage","message":"..."} or {"action":"whoami"}.',
}
