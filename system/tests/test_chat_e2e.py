"""The chat's own handlers on the local stack, through real sockets and boto3."""

from __future__ import annotations

import pytest


def items_from(stack, table_key: str, connection_id: str) -> list[dict]:
    client = stack.file.dynamodb_client()
    table = stack.file.tables[table_key]
    items = client.scan(TableName=table, ConsistentRead=True)["Items"]
    return [i for i in items if i["connection_id"]["S"] == connection_id]


def is_chat(text: str):
    return lambda f: f.get("type") == "chat" and f.get("text") == text


async def test_a_message_reaches_every_connection_and_is_stored_once(chat_stack, clients):
    a = await clients(chat_stack.file.websocket_url)
    b = await clients(chat_stack.file.websocket_url)
    a_id, b_id = await a.whoami(), await b.whoami()
    await a.frame_where(lambda f: f.get("type") == "join" and f["connection_id"] == b_id)
    await a.send({"action": "sendmessage", "message": "hi"})
    for client in (a, b):
        frame = await client.frame_where(is_chat("hi"))
        assert frame["sender"] == a_id
        assert frame["message"].endswith(f" {a_id}  hi\n")  # what the reference client shows
    stored = items_from(chat_stack, "message_history", a_id)
    assert [item["message"]["S"] for item in stored] == ["hi"]
    assert stored[0]["message_id"]["S"] == frame["message_id"]
    assert stored[0]["timestamp"]["S"] == frame["sent_at"]


@pytest.mark.parametrize("message", ["ping", ""])
async def test_heartbeat_and_empty_message_store_and_broadcast_nothing(chat_stack, clients,
                                                                        message):
    a = await clients(chat_stack.file.websocket_url)
    b = await clients(chat_stack.file.websocket_url)
    a_id, _b_id = await a.whoami(), await b.whoami()
    await a.send({"action": "sendmessage", "message": message})
    await a.send({"action": "sendmessage", "message": "after"})
    for client in (a, b):
        await client.frame_where(is_chat("after"))
        assert not [f for f in client.inbox if '"pong"' in f or f'  {message}\n' in f]
    stored = items_from(chat_stack, "message_history", a_id)
    assert [item["message"]["S"] for item in stored] == ["after"]


async def test_default_route_answers_the_sender_only(chat_stack, clients):
    a = await clients(chat_stack.file.websocket_url)
    b = await clients(chat_stack.file.websocket_url)
    await b.whoami()
    for garbage in ("not json", '{"action":"dance"}', '{"action":7}', '{"message":"x"}'):
        await a.send(garbage)
    await a.frames_where(lambda f: f.get("error") == "Invalid request", count=4)
    await b.send({"action": "sendmessage", "message": "b-after-garbage"})
    await b.frame_where(is_chat("b-after-garbage"))
    assert not [f for f in b.inbox if "Invalid request" in f]


async def test_disconnect_closes_the_session_and_tells_the_others(chat_stack, clients):
    a = await clients(chat_stack.file.websocket_url)
    b = await clients(chat_stack.file.websocket_url)
    b_id = await b.whoami()
    await b.close()
    await a.frame_where(lambda f: f.get("type") == "leave" and f["connection_id"] == b_id)
    assert items_from(chat_stack, "active_connections", b_id) == []
    [session] = items_from(chat_stack, "session_history", b_id)
    assert session["source_ip"]["S"] == "127.0.0.1"
    assert session["connected_at"]["S"] <= session["disconnected_at"]["S"]
    assert float(session["duration_seconds"]["N"]) >= 0
