"""The DynamoDB proxy in front of a real dynalite: a request body it cannot read is
answered as DynamoDB answers one, and the proxy keeps serving."""

from __future__ import annotations

import asyncio
import json

import boto3
import pytest
from aiohttp import ClientSession

from system.local.dynamodb import DynamoDB
from system.local.dynamodb_proxy import DynamoDBProxy
from system.local.faults import Faults
from system.local.lambda_runtime.logs import OPERATIONS_LOG

# Local DynamoDB backends take any credentials.
CREDENTIALS = {"aws_access_key_id": "TESTKEY", "aws_secret_access_key": "test-secret"}
SERIALIZATION_EXCEPTION = "com.amazon.coral.service#SerializationException"


@pytest.fixture
async def backend_and_proxy(tmp_path):
    """(dynalite's URL, the proxy's URL in front of it)."""
    backend = DynamoDB("dynalite")
    info = await backend.start()
    proxy = DynamoDBProxy(info.endpoint_url, Faults(), operations_log=tmp_path / OPERATIONS_LOG)
    try:
        yield info.endpoint_url, await proxy.start()
    finally:
        await proxy.stop()
        await backend.stop()


async def answer_to(session: ClientSession, url: str, body: bytes) -> tuple[int, str]:
    async with session.post(url, data=body, headers={
            "Content-Type": "application/x-amz-json-1.0",
            "X-Amz-Target": "DynamoDB_20120810.ListTables"}) as answer:
        return answer.status, json.loads(await answer.read())["__type"]


async def test_a_body_nested_too_deep_gets_400_serialization_exception(backend_and_proxy):
    """DynamoDB answers 400 SerializationException to a body it cannot parse (dynalite
    does the same); 30,000 × '[' is one the proxy's parser cannot take either."""
    backend_url, proxy_url = backend_and_proxy
    async with ClientSession() as session:
        backend_answer = await answer_to(session, backend_url, b"not json")
        deep_answer = await answer_to(session, proxy_url, b"[" * 30_000)
        garbage_answer = await answer_to(session, proxy_url, b"not json")
    assert deep_answer == garbage_answer == backend_answer == (400, SERIALIZATION_EXCEPTION)
    client = boto3.client("dynamodb", endpoint_url=proxy_url, region_name="us-east-1",
                          **CREDENTIALS)
    assert (await asyncio.to_thread(client.list_tables))["TableNames"] == []


async def test_each_single_item_write_logs_the_storage_it_adds_or_frees(tmp_path):
    """Billed storage is each item's size and 100 bytes: a put adds it, an update adds
    what the item grew by, a delete frees it, a failed write changes nothing; the log
    says so for each write, as the capacity report sums them."""
    backend = DynamoDB("dynalite")
    info = await backend.start()
    log = tmp_path / OPERATIONS_LOG
    proxy = DynamoDBProxy(info.endpoint_url, Faults(), operations_log=log,
                          key_attributes={"Notes": "id"})
    try:
        client = boto3.client("dynamodb", endpoint_url=await proxy.start(),
                              region_name="us-east-1", **CREDENTIALS)

        def writes() -> None:
            client.create_table(TableName="Notes", BillingMode="PAY_PER_REQUEST",
                                KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                                AttributeDefinitions=[{"AttributeName": "id",
                                                       "AttributeType": "S"}])
            key = {"id": {"S": "n1"}}  # 2 + 2 bytes
            client.put_item(TableName="Notes", Item={**key, "text": {"S": "hello"}})  # +9
            client.update_item(TableName="Notes", Key=key, UpdateExpression="SET more = :m",
                               ExpressionAttributeValues={":m": {"S": "abc"}})  # +7
            with pytest.raises(client.exceptions.ConditionalCheckFailedException):
                client.put_item(TableName="Notes", Item={**key, "text": {"S": "x" * 50}},
                                ConditionExpression="attribute_not_exists(id)")
            client.put_item(TableName="Notes", Item={**key, "text": {"S": "hi"}})  # replaces
            client.delete_item(TableName="Notes", Key=key)
            client.get_item(TableName="Notes", Key=key)

        await asyncio.to_thread(writes)
    finally:
        await proxy.stop()
        await backend.stop()
    logged = [json.loads(line) for line in log.read_text().splitlines()]
    assert [(entry["op"], entry["stored_bytes"]) for entry in logged
            if entry["op"] != "CreateTable"] == [
        ("PutItem", 4 + 9 + 100), ("UpdateItem", 7), ("PutItem", 0),
        ("PutItem", (4 + 6) - (4 + 9 + 7)), ("DeleteItem", -(4 + 6 + 100)), ("GetItem", None)]
