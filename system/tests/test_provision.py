"""Table provisioning: the same boto3 code on dynalite and on moto, idempotent both ways."""

from __future__ import annotations

import boto3
import pytest

from system.local.dynamodb import BackendError, DynamoDB
from system.provision import Capacity, TableNames, create_tables, delete_tables

NAMES = TableNames("T_Active", "T_Sessions", "T_Messages")
# Local DynamoDB backends take any credentials.
CREDENTIALS = {"aws_access_key_id": "TESTKEY", "aws_secret_access_key": "test-secret"}


@pytest.mark.parametrize("backend", ["dynalite", "moto"])
async def test_create_is_idempotent_and_delete_removes_all(backend):
    dynamodb = DynamoDB(backend)
    info = await dynamodb.start()
    try:
        client = boto3.client("dynamodb", endpoint_url=info.endpoint_url, region_name="us-east-1",
                              **CREDENTIALS)
        capacity = {NAMES.message_history: Capacity(read=25, write=10)}
        create_tables(client, NAMES, capacity)
        create_tables(client, NAMES, capacity)
        assert set(client.list_tables()["TableNames"]) == set(NAMES.as_dict().values())
        active = client.describe_table(TableName=NAMES.active_connections)["Table"]
        assert active["KeySchema"] == [{"AttributeName": "connection_id", "KeyType": "HASH"}]
        assert active["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
        messages = client.describe_table(TableName=NAMES.message_history)["Table"]
        assert messages["KeySchema"] == [{"AttributeName": "message_id", "KeyType": "HASH"}]
        throughput = messages["ProvisionedThroughput"]
        assert (throughput["ReadCapacityUnits"], throughput["WriteCapacityUnits"]) == (25, 10)
        if backend == "moto":  # dynalite has no TTL API
            ttl = client.describe_time_to_live(TableName=NAMES.active_connections)
            assert ttl["TimeToLiveDescription"]["AttributeName"] == "expires_at"
        delete_tables(client, NAMES)
        delete_tables(client, NAMES)
        assert client.list_tables()["TableNames"] == []
    finally:
        await dynamodb.stop()


@pytest.mark.parametrize("text", ["25", "a/b", "0/5", "5/-1", ""])
def test_capacity_text_must_be_rcu_slash_wcu(text):
    with pytest.raises(ValueError, match="capacity must be"):
        Capacity.parse(text)


def test_capacity_parses():
    assert Capacity.parse("25/10") == Capacity(25, 10)


def test_unknown_backend_is_a_clear_error():
    with pytest.raises(BackendError, match="dynalite, moto or an http"):
        DynamoDB("postgres")
