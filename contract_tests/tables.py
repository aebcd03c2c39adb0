"""Reading (and, for a few contracts, seeding) the chat's tables; waiting on them."""

from __future__ import annotations

import time
from collections.abc import Callable

from system.client import WAIT_TIMEOUT_S
from system.stackfile import StackFile


class Tables:
    """Reads of the chat's tables, strongly consistent, filtered to what a test made."""

    def __init__(self, stack: StackFile) -> None:
        self.client = stack.dynamodb_client()
        self.names = stack.tables

    def _scan(self, table: str) -> list[dict]:
        items, kwargs = [], {"TableName": table, "ConsistentRead": True}
        while True:
            page = self.client.scan(**kwargs)
            items.extend(page["Items"])
            if "LastEvaluatedKey" not in page:
                return items
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def active_ids(self) -> set[str]:
        return {i["connection_id"]["S"] for i in self._scan(self.names["active_connections"])}

    def messages_from(self, senders: set[str]) -> list[dict]:
        return [
            {"sender": i["connection_id"]["S"], "message": i["message"]["S"],
             "message_id": i["message_id"]["S"], "timestamp": i["timestamp"]["S"]}
            for i in self._scan(self.names["message_history"])
            if i["connection_id"]["S"] in senders
        ]

    def session(self, connection_id: str) -> dict | None:
        item = self.client.get_item(TableName=self.names["session_history"],
                                    Key={"connection_id": {"S": connection_id}},
                                    ConsistentRead=True).get("Item")
        return {k: next(iter(v.values())) for k, v in item.items()} if item else None

    def put_active(self, item: dict) -> None:
        self.client.put_item(TableName=self.names["active_connections"], Item=item)

    def delete_active(self, connection_id: str) -> None:
        self.client.delete_item(TableName=self.names["active_connections"],
                                Key={"connection_id": {"S": connection_id}})


def eventually(check: Callable[[], bool], what: str, timeout: float = WAIT_TIMEOUT_S) -> None:
    """For table state no client can observe as an event: check until true, bounded."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        time.sleep(0.05)
