"""What only the local stack can show of the chat's own handlers; the chat's contracts
(broadcast, storage, heartbeat, $default, join and leave) are in contract_tests/."""

from __future__ import annotations

import json
import time
from pathlib import Path

from system.client.polling import eventually
from system.control import control_call
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


async def test_the_control_api_counts_the_posts_that_went_out_to_a_connection(chat_stack,
                                                                             clients):
    """How a benchmark tells a frame never sent from one sent and not read."""
    a = await clients(chat_stack.file.websocket_url)
    a_id = await a.whoami()  # the whoami reply is one post
    assert control_call(chat_stack.file, "GET", f"connections/{a_id}") == (
        200, {"state": "OPEN", "posts_delivered": 1})
    await a.send({"action": "sendmessage", "message": "counted"})
    await a.frame_where(lambda f: f.get("text") == "counted")
    assert control_call(chat_stack.file, "GET", f"connections/{a_id}")[1][
        "posts_delivered"] == 2
    await a.close()
    eventually(lambda: control_call(chat_stack.file, "GET", f"connections/{a_id}")[0] == 404,
               "the closed connection forgotten")


async def test_the_control_api_counts_a_connection_until_its_disconnect_has_run(chat_stack,
                                                                               clients):
    """What a load run waits for before it reads the stack's logs: the connections made
    since a time, each from its handshake until its $disconnect has run, and the
    invocations running or waiting."""
    stack = chat_stack.file
    since_ms = int(time.time() * 1000)
    activity = f"activity?connected_since_ms={since_ms}"
    a = await clients(stack.websocket_url)
    a_id = await a.whoami()
    assert control_call(stack, "GET", activity)[1]["connections"] == 1
    later = f"activity?connected_since_ms={since_ms + 3_600_000}"
    assert control_call(stack, "GET", later)[1]["connections"] == 0
    await a.close()
    eventually(lambda: control_call(stack, "GET", activity) == (
        200, {"connections": 0, "invocations": 0}), "the connection's work done")
    [session] = items_from(chat_stack, "session_history", a_id)
    assert "disconnected_at" in session  # its $disconnect had run
    status, answer = control_call(stack, "GET", "activity?connected_since_ms=yesterday")
    assert status == 400 and "connected_since_ms must be an integer" in answer["message"]


def small_batches_routes(request) -> list[str]:
    """The chat, batched, two recipients a batch, without presence notices."""
    path = request.getfixturevalue("tmp_path_factory").mktemp("batched") / "routes.toml"
    return ["--routes", str(write_routes_variant(path, with_environment(
        FANOUT_STRATEGY="batched", FANOUT_BATCH_SIZE="2", PRESENCE_NOTICES="off")))]


batched_stack = stack_fixture(small_batches_routes, scope="module",
                              doc="The chat fanning out in batches of two.")


def metrics_lines(stack, predicate) -> list[dict]:
    lines = Path(stack.file.metrics_file).read_text().splitlines()
    return [document for document in map(json.loads, lines) if predicate(document)]


async def test_a_batched_broadcast_reaches_each_recipient_once_through_its_batches(
        batched_stack, clients):
    """Five recipients in batches of two: three asynchronous invocations of the fan-out
    function, whose metrics lines name the broadcast and together deliver to all five."""
    everyone = [await clients(batched_stack.file.websocket_url) for _ in range(5)]
    await everyone[0].send({"action": "sendmessage", "message": "in batches"})
    for client in everyone:
        await client.frame_where(lambda f: f.get("text") == "in batches")
    [dispatch] = metrics_lines(batched_stack, lambda d: d.get("Route") == "sendmessage"
                               and "Batches" in d)
    assert (dispatch["FanoutStrategy"], dispatch["Recipients"], dispatch["Batches"]) == (
        "batched", 5, 3)

    def batches() -> list[dict]:
        return metrics_lines(batched_stack, lambda d: d.get("BroadcastId") == dispatch[
            "requestId"])

    eventually(lambda: len(batches()) == 3, "the three batches' metrics lines")
    assert sorted(b["BatchRecipients"] for b in batches()) == [1, 2, 2]
    assert sum(b["Delivered"] for b in batches()) == 5
    assert all(b["Route"] == "sendmessage" and b["BatchDelay"] >= 0 for b in batches())
    for client in everyone:  # every batch has ended: nothing more is coming
        assert [json.loads(text).get("text") for text in client.inbox].count("in batches") == 1


def coalesced_routes(request) -> list[str]:
    """The chat with coalesced presence notices, an hour's window, and no fan-out function
    to tell a window's changes at its end."""
    def edit(document: dict) -> None:
        with_environment(PRESENCE_NOTICES="coalesced", PRESENCE_WINDOW_S="3600")(document)
        for spec in document["functions"].values():
            spec.pop("invokes", None)
    path = request.getfixturevalue("tmp_path_factory").mktemp("coalesced") / "routes.toml"
    return ["--routes", str(write_routes_variant(path, edit))]


coalesced_stack = stack_fixture(coalesced_routes, scope="module",
                                doc="The chat telling joins and leaves at most once an hour.")


def flushed_routes(request) -> list[str]:
    """The chat with coalesced presence notices, a 5 s window, and a fan-out function that
    may wait that long for a window's end."""
    def edit(document: dict) -> None:
        with_environment(PRESENCE_NOTICES="coalesced", PRESENCE_WINDOW_S="5")(document)
        document["functions"]["FanoutHandler"]["timeout"] = 10
    path = request.getfixturevalue("tmp_path_factory").mktemp("flushed") / "routes.toml"
    return ["--routes", str(write_routes_variant(path, edit))]


flushed_stack = stack_fixture(flushed_routes, scope="module",
                              doc="The chat telling each window's joins and leaves at its end.")


def presence_item(file) -> dict:
    return file.dynamodb_client().get_item(
        TableName=file.tables["session_history"], Key={"connection_id": {"S": "#presence"}},
        ConsistentRead=True)["Item"]


async def test_a_join_inside_the_window_is_told_at_its_end_with_no_event_after_it(
        flushed_stack, clients):
    """Lambda has no timer: the $connect that notes a change inside the window invokes the
    fan-out function, which waits for the window's end and tells everyone, the joiner too
    (a notice from $connect itself leaves its own connection out)."""
    url, file = flushed_stack.file.websocket_url, flushed_stack.file
    a = await clients(url)
    file.dynamodb_client().update_item(  # a notice has just gone out: a window begins
        TableName=file.tables["session_history"], Key={"connection_id": {"S": "#presence"}},
        UpdateExpression="SET told_at_ms = :now",
        ExpressionAttributeValues={":now": {"N": str(int(time.time() * 1000))}})
    b = await clients(url)
    b_id = await b.whoami()
    for client in (a, b):
        notice = await client.frame_where(lambda f: f.get("type") == "presence")
        assert (notice["joined"], notice["left"]) == ([b_id], [])
    item = presence_item(file)
    assert "flush_pending" not in item and "joined" not in item  # taken, and none on its way

    def flushes() -> list[dict]:  # the fan-out function's line, written as it returns
        return metrics_lines(flushed_stack, lambda d: d.get("Route") == "$connect"
                             and d.get("Recipients") == 2)

    eventually(lambda: len(flushes()) == 1, "the fan-out function's metrics line")
    assert flushes()[0]["Delivered"] == 2


async def test_coalesced_notices_hold_the_joins_of_a_window_and_tell_them_at_once(
        coalesced_stack, clients):
    """The first join of a window is told at once (here, to no one); later ones wait in
    the presence item (no fan-out function tells them at the window's end); the first
    join after the window tells them all, itself included."""
    url, file = coalesced_stack.file.websocket_url, coalesced_stack.file
    a = await clients(url)
    b, c = await clients(url), await clients(url)
    b_id, c_id = await b.whoami(), await c.whoami()
    await c.send({"action": "sendmessage", "message": "barrier"})
    await a.frame_where(lambda f: f.get("text") == "barrier")
    # A connection's frames come in order: a notice of b's or c's join, sent before their
    # $connect returned, would be in a's inbox before the barrier.
    assert [json.loads(text)["type"] for text in a.inbox] == ["chat"]
    assert sorted(presence_item(file)["joined"]["SS"]) == sorted([b_id, c_id])

    file.dynamodb_client().update_item(  # the window has passed
        TableName=file.tables["session_history"], Key={"connection_id": {"S": "#presence"}},
        UpdateExpression="SET told_at_ms = :long_ago",
        ExpressionAttributeValues={":long_ago": {"N": "0"}})
    d = await clients(url)
    d_id = await d.whoami()
    for client in (a, b, c):
        notice = await client.frame_where(lambda f: f.get("type") == "presence")
        assert (notice["joined"], notice["left"]) == (sorted([b_id, c_id, d_id]), [])
