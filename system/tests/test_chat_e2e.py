"""What only the local stack can show of the chat's own handlers; the chat's contracts
(broadcast, storage, heartbeat, $default, join and leave) are in contract_tests/."""

from __future__ import annotations

import json

from system.local.stack_fixtures import stack_fixture
from system.routes import with_environment, write_routes_variant


def items_from(stack, table_key: str, connection_id: str) -> list[dict]:
    client = stack.file.dynamodb_client()
    table = stack.file.tables[table_key]
    items = client.scan(TableName=table, ConsistentRead=True)["Items"]
    return [i for i in items if i["connection_id"]["S"] == connection_id]


async def test_a_broadcast_carries_the_line_the_reference_client_shows(chat_stack, clients):
    """The reference web client shows ``message`` only: `[<sent_at> - UTC]\\n <sender>  <text>\\n`
    (asyncapi.yaml describes it; its schema says only that it is a string)."""
    a = await clients(chat_stack.file.websocket_url)
    b = await clients(chat_stack.file.websocket_url)
    a_id = await a.whoami()
    await a.send({"action": "sendmessage", "message": "hi"})
    for client in (a, b):
        frame = await client.frame_where(lambda f: f.get("type") == "chat"
                                         and f.get("text") == "hi" and f["sender"] == a_id)
        assert frame["message"] == f"[{frame['sent_at']} - UTC]\n {a_id}  hi\n"


async def test_a_session_records_the_clients_address_and_ends_after_it_began(chat_stack,
                                                                            clients):
    """On the local stack the client's address is known: 127.0.0.1 (a contract can only
    ask for some address, its clients' being unknown against AWS)."""
    a = await clients(chat_stack.file.websocket_url)
    b = await clients(chat_stack.file.websocket_url)
    b_id = await b.whoami()
    await b.close()
    await a.frame_where(lambda f: f.get("type") == "leave" and f["connection_id"] == b_id)
    [session] = items_from(chat_stack, "session_history", b_id)
    assert session["source_ip"]["S"] == "127.0.0.1"
    assert session["connected_at"]["S"] <= session["disconnected_at"]["S"]


def quiet_routes(request) -> list[str]:
    """The chat's routes with PRESENCE_NOTICES=off."""
    path = request.getfixturevalue("tmp_path_factory").mktemp("quiet") / "routes.toml"
    return ["--routes", str(write_routes_variant(path, with_environment(PRESENCE_NOTICES="off")))]


quiet_stack = stack_fixture(quiet_routes, scope="module", doc="The chat without presence notices.")


async def test_presence_notices_off_tells_no_one_of_a_join(quiet_stack, clients):
    """A join notice would reach ``a`` before the chat message ``b`` sends once connected."""
    a = await clients(quiet_stack.file.websocket_url)
    b = await clients(quiet_stack.file.websocket_url)
    await b.send({"action": "sendmessage", "message": "quiet"})
    for client in (a, b):
        await client.frame_where(lambda f: f.get("type") == "chat" and f.get("text") == "quiet")
    assert [text for text in a.inbox if json.loads(text).get("type") == "join"] == []
