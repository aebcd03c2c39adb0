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
