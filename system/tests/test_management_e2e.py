"""@connections through boto3's own apigatewaymanagementapi client, over HTTPS, signed with
the stack's credentials (what else is refused: test_security_e2e.py)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from botocore.exceptions import ClientError

from system.apigateway_quotas import MANAGEMENT_PAYLOAD_BYTES
from system.local.apigateway.ids import new_connection_id


@pytest.fixture(scope="module")
def management(chat_stack):
    return chat_stack.file.management_client(retries={"max_attempts": 1})


async def test_post_reaches_the_client(chat_stack, clients, management):
    a = await clients(chat_stack.file.websocket_url)
    management.post_to_connection(ConnectionId=await a.whoami(), Data=b'{"probe":1}')
    await a.frame_where(lambda f: f.get("probe") == 1)


def test_unknown_connection_raises_gone_exception(management):
    with pytest.raises(management.exceptions.GoneException):
        management.post_to_connection(ConnectionId=new_connection_id(), Data=b"x")
    with pytest.raises(management.exceptions.GoneException):
        management.get_connection(ConnectionId=new_connection_id())


async def test_closed_connection_raises_gone_exception(chat_stack, clients, management):
    a = await clients(chat_stack.file.websocket_url)
    b = await clients(chat_stack.file.websocket_url)
    b_id = await b.whoami()
    await b.close()
    await a.frame_where(lambda f: f.get("type") == "leave" and f["connection_id"] == b_id)
    with pytest.raises(management.exceptions.GoneException):
        management.post_to_connection(ConnectionId=b_id, Data=b"x")


async def test_get_connection_describes_it(chat_stack, clients, management):
    before = datetime.now(UTC).replace(microsecond=0)
    a = await clients(chat_stack.file.websocket_url, user_agent_header="chat-test/1.0")
    a_id = await a.whoami()
    first = management.get_connection(ConnectionId=a_id)
    assert before <= first["ConnectedAt"] <= first["LastActiveAt"]
    assert first["Identity"] == {"SourceIp": "127.0.0.1", "UserAgent": "chat-test/1.0"}
    await a.whoami()
    second = management.get_connection(ConnectionId=a_id)
    assert second["ConnectedAt"] == first["ConnectedAt"]
    assert second["LastActiveAt"] > first["LastActiveAt"]


async def test_payload_limit_is_128_kib(chat_stack, clients, management):
    a = await clients(chat_stack.file.websocket_url)
    a_id = await a.whoami()
    largest = b'{"big":"' + b"x" * (MANAGEMENT_PAYLOAD_BYTES - 10) + b'"}'
    assert len(largest) == MANAGEMENT_PAYLOAD_BYTES
    management.post_to_connection(ConnectionId=a_id, Data=largest)
    assert len((await a.frame_where(lambda f: "big" in f))["big"]) == MANAGEMENT_PAYLOAD_BYTES - 10
    with pytest.raises(management.exceptions.PayloadTooLargeException):
        management.post_to_connection(ConnectionId=a_id, Data=largest + b" ")


def test_malformed_connection_id_is_400(management):
    with pytest.raises(ClientError) as raised:
        management.post_to_connection(ConnectionId="not-an-id", Data=b"x")
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert raised.value.response["Error"]["Code"] == "BadRequestException"


async def test_delete_closes_with_1000_and_the_id_is_gone(chat_stack, clients, management):
    a = await clients(chat_stack.file.websocket_url)
    a_id = await a.whoami()
    management.delete_connection(ConnectionId=a_id)
    assert (await a.closed())[0] == 1000
    with pytest.raises(management.exceptions.GoneException):
        management.get_connection(ConnectionId=a_id)
