"""The chat's DynamoDB tables: their names, their definition, and creating and deleting
them with boto3, idempotently.

The local stack creates its tables here; ``chat-harness deploy`` (system/aws/deploy.py)
builds AWS's from the same ``table_definition``. Tables follow the reference app's
schema (all keys strings).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from botocore.exceptions import ClientError

log = logging.getLogger("chat_harness.provision")

TTL_ATTRIBUTE = "expires_at"


@dataclass(frozen=True)
class TableNames:
    active_connections: str = "ActiveConnections"
    session_history: str = "SessionHistory"
    message_history: str = "MessageHistory"

    def as_dict(self) -> dict[str, str]:
        return {
            "active_connections": self.active_connections,
            "session_history": self.session_history,
            "message_history": self.message_history,
        }

    def handler_environment(self) -> dict[str, str]:
        """The environment variables the handlers read their table names from."""
        return {
            "ACTIVE_CONNECTIONS_TABLE": self.active_connections,
            "SESSION_HISTORY_TABLE": self.session_history,
            "MESSAGE_HISTORY_TABLE": self.message_history,
        }

    def key_attributes(self) -> dict[str, str]:
        return {
            self.active_connections: "connection_id",
            self.session_history: "connection_id",
            self.message_history: "message_id",
        }


@dataclass(frozen=True)
class Capacity:
    """Provisioned RCU/WCU for a table; ``None`` means on-demand (PAY_PER_REQUEST)."""

    read: int
    write: int

    @classmethod
    def parse(cls, text: str) -> Capacity:
        """'25/10' -> Capacity(read=25, write=10)."""
        try:
            read, write = (int(part) for part in text.split("/"))
        except ValueError:
            raise ValueError(f"capacity must be RCU/WCU, e.g. 25/10, not {text!r}") from None
        if read < 1 or write < 1:
            raise ValueError(f"capacity must be at least 1/1, not {text!r}")
        return cls(read, write)


def table_definition(table: str, key: str, capacity: Capacity | None) -> dict:
    """The CreateTable request for one of the chat's tables: a string hash key, on-demand
    unless ``capacity`` is given."""
    request: dict = {
        "TableName": table,
        "AttributeDefinitions": [{"AttributeName": key, "AttributeType": "S"}],
        "KeySchema": [{"AttributeName": key, "KeyType": "HASH"}],
        "BillingMode": "PAY_PER_REQUEST",
    }
    if capacity is not None:
        request["BillingMode"] = "PROVISIONED"
        request["ProvisionedThroughput"] = {"ReadCapacityUnits": capacity.read,
                                            "WriteCapacityUnits": capacity.write}
    return request


def create_tables(
    dynamodb, names: TableNames, capacity: dict[str, Capacity] | None = None
) -> None:
    """Create any missing table, wait until all are ACTIVE, enable TTL where supported.

    ``capacity`` maps a table name to provisioned RCU/WCU; tables not named are
    on-demand.
    """
    capacity = capacity or {}
    for table, key in names.key_attributes().items():
        try:
            dynamodb.create_table(**table_definition(table, key, capacity.get(table)))
            log.debug("created table %s", table)
        except dynamodb.exceptions.ResourceInUseException:
            log.debug("table %s exists", table)
    waiter = dynamodb.get_waiter("table_exists")
    for table in names.key_attributes():
        waiter.wait(TableName=table, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    enable_ttl(dynamodb, names.active_connections)


def enable_ttl(dynamodb, table: str) -> bool:
    """Expire ActiveConnections rows whose $disconnect was lost; False if the backend
    has no TTL (dynalite answers UnknownOperationException)."""
    try:
        dynamodb.update_time_to_live(
            TableName=table,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": TTL_ATTRIBUTE},
        )
        return True
    except ClientError as error:
        code = error.response["Error"]["Code"]
        if code == "ValidationException" and "already enabled" in str(error):
            return True
        if code == "UnknownOperationException":
            log.info("this DynamoDB backend has no TTL; %s rows will not expire", table)
            return False
        raise


def delete_tables(dynamodb, names: TableNames) -> None:
    """Delete the tables that exist and wait until they are gone."""
    for table in names.key_attributes():
        try:
            dynamodb.delete_table(TableName=table)
            log.debug("deleted table %s", table)
        except dynamodb.exceptions.ResourceNotFoundException:
            pass
    waiter = dynamodb.get_waiter("table_not_exists")
    for table in names.key_attributes():
        waiter.wait(TableName=table, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
