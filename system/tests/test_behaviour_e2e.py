"""Each API Gateway behaviour of the README's table ("Behaviours reproduced from AWS"),
end to end, on test handlers (handlers/routes.toml) run by the emulator's Lambda workers."""

from __future__ import annotations

import json
from urllib.parse import urlparse

import pytest
import websockets
from websockets.exceptions import InvalidStatus

from system.apigateway_quotas import FRAME_BYTES, MESSAGE_BYTES
from system.local.lambda_runtime.pool import LINE_LIMIT


def url(stack, query: str = "") -> str:
    return stack.file.websocket_url + (f"?{query}" if query else "")


@pytest.mark.parametrize("status", [401, 403, 429, 500])
async def test_connect_refusal_carries_the_handlers_status(behaviour_stack, status):
    with pytest.raises(InvalidStatus) as refused:
        await websockets.connect(url(behaviour_stack, f"status={status}"))
    assert refused.value.response.status_code == status


async def test_connect_crash_is_502(behaviour_stack):
    with pytest.raises(InvalidStatus) as refused:
        await websockets.connect(url(behaviour_stack, "crash=1"))
    assert refused.value.response.status_code == 502


async def test_post_to_a_connecting_id_is_gone(behaviour_stack, clients):
    """The handler accepts only if posting to itself during $connect raised GoneException."""
    await clients(url(behaviour_stack, "post_self=1"))


async def test_a_client_that_leaves_during_connect_still_gets_disconnect(behaviour_stack,
                                                                         clients):
    observer = await clients(url(behaviour_stack))
    with pytest.raises(TimeoutError):
        await websockets.connect(url(behaviour_stack, "hold=1"), open_timeout=0.2)
    await observer.frame_where(  # earlier tests' clients may leave meanwhile, with 1000
        lambda f: f.get("disconnect_event", {}).get("requestContext", {}).get(
            "disconnectStatusCode") == 1006)


async def test_message_event_shape_and_context(behaviour_stack, clients):
    client = await clients(url(behaviour_stack), user_agent_header="shape-test")
    await client.send({"action": "echo", "n": 1})
    await client.send({"action": "echo", "n": 2})
    echoes = await client.frames_where(lambda f: "event" in f, count=2)
    first, second = (e["event"] for e in echoes)
    context = first["requestContext"]
    assert (context["routeKey"], context["eventType"]) == ("echo", "MESSAGE")
    assert context["domainName"] == urlparse(behaviour_stack.file.management_endpoint).netloc
    assert context["stage"] == "local" and context["messageDirection"] == "IN"
    assert context["identity"] == {"sourceIp": "127.0.0.1", "userAgent": "shape-test"}
    assert context["connectionId"].endswith("=") and len(context["connectionId"]) == 16
    assert isinstance(first["body"], str) and first["isBase64Encoded"] is False
    assert {json.loads(first["body"])["n"], json.loads(second["body"])["n"]} == {1, 2}
    assert context["connectedAt"] == second["requestContext"]["connectedAt"]
    assert context["requestId"] != second["requestContext"]["requestId"]
    assert context["messageId"] != second["requestContext"]["messageId"]
    lambda_context = echoes[0]["context"]
    assert lambda_context["function_name"] == "Echo"
    assert lambda_context["invoked_function_arn"].endswith(":function:Echo")
    assert lambda_context["log_group_name"] == "/aws/lambda/Echo"
    assert 0 < lambda_context["remaining_ms"] <= 3000


@pytest.mark.parametrize("how, code", [("close", 1000), ("drop", 1006)])
async def test_disconnect_runs_after_close_and_after_abrupt_drop(behaviour_stack, clients, how,
                                                                  code):
    observer = await clients(url(behaviour_stack))
    subject = await clients(url(behaviour_stack))
    await subject.send({"action": "echo"})
    subject_id = (await subject.frame_where(lambda f: "event" in f))["event"]["requestContext"][
        "connectionId"]
    if how == "close":
        await subject.close()
    else:
        subject.drop()
    event = (await observer.frame_where(
        lambda f: f.get("disconnect_event", {}).get("requestContext", {}).get("connectionId")
        == subject_id))["disconnect_event"]
    context = event["requestContext"]
    assert (context["routeKey"], context["eventType"]) == ("$disconnect", "DISCONNECT")
    assert context["disconnectStatusCode"] == code
    assert "messageId" not in context


async def test_no_route_and_no_default_is_forbidden(behaviour_stack, clients):
    client = await clients(url(behaviour_stack))
    await client.send("not json")
    frame = await client.frame_where(lambda f: f.get("message") == "Forbidden")
    assert set(frame) == {"message", "connectionId", "requestId"}


@pytest.mark.parametrize("action", ["crash", "sleep"])
async def test_handler_error_or_timeout_is_internal_server_error(behaviour_stack, clients,
                                                                 action):
    client = await clients(url(behaviour_stack))
    await client.send({"action": action})
    frame = await client.frame_where(lambda f: f.get("message") == "Internal server error")
    assert set(frame) == {"message", "connectionId", "requestId"}


async def test_an_oversize_answer_is_internal_server_error_and_the_function_recovers(
        behaviour_stack, clients):
    """The environment that answered past the line limit is discarded; a fresh one serves."""
    client = await clients(url(behaviour_stack))
    await client.send({"action": "sized", "bytes": LINE_LIMIT + 1})
    await client.frame_where(lambda f: f.get("message") == "Internal server error")
    await client.send({"action": "sized", "bytes": 1})
    assert (await client.frame_where(lambda f: "size" in f)) == {"size": 1, "padding": "x"}


async def test_only_routes_with_a_route_response_answer(behaviour_stack, clients):
    client = await clients(url(behaviour_stack))
    await client.send({"action": "oneway", "n": 1})
    await client.send({"action": "twoway", "n": 2})
    await client.frame_where(lambda f: f.get("echo", {}).get("n") == 2)
    await client.send({"action": "echo"})
    await client.frame_where(lambda f: "event" in f)
    assert not [f for f in client.inbox if '"n": 1' in f]


@pytest.mark.parametrize("payload, what", [
    ("x" * (MESSAGE_BYTES + 1), "message over 128 KB"),
    (["x" * (FRAME_BYTES + 1)], "frame over 32 KB"),
])
async def test_oversize_closes_1009_and_others_keep_being_served(behaviour_stack, clients,
                                                                 payload, what):
    bystander = await clients(url(behaviour_stack))
    offender = await clients(url(behaviour_stack))
    if isinstance(payload, list):
        await offender.ws.send(payload[0])  # one frame: over the frame limit only
    else:
        await offender.ws.send(iter([payload[: len(payload) // 8]] * 8 + ["x"]))  # fragments
    assert (await offender.closed())[0] == 1009, what
    await bystander.send({"action": "echo"})
    await bystander.frame_where(lambda f: "event" in f)
    behaviour_stack.wait_for_output("with 1009")


async def test_binary_frame_closes_1003(behaviour_stack, clients):
    client = await clients(url(behaviour_stack))
    await client.ws.send(b'{"action":"echo"}')
    assert (await client.closed())[0] == 1003
    behaviour_stack.wait_for_output("with 1003")


async def test_invalid_utf8_closes_1007(behaviour_stack, clients):
    client = await clients(url(behaviour_stack))
    await client.ws.send(b'{"action":"\xff"}', text=True)
    assert (await client.closed())[0] == 1007
    behaviour_stack.wait_for_output("with 1007")
