"""Reading (and, for a few contracts, seeding) the chat's tables; waiting on them.

A deployed stack's tables are shared and billed per request unit, so:
- reads go by key (GetItem, BatchGetItem; strongly consistent, a unit or two each)
  wherever a test knows the keys. Only "what else did these senders store?" needs a
  Scan of MessageHistory: strongly consistent on a local stack; on any other,
  eventually consistent (half the read units), filtered on the server to the
  senders, and repeated until the messages the test awaits show in it;
- each row the suite writes itself ("seeds") carries the run's id and an
  ``expires_at`` an hour away (the table's TTL removes it should the run die before
  its end), and ``remove_seeded`` deletes exactly those rows;
- ``remove_chat_rows`` deletes what the chat stored because of a test's connections.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from system.client.polling import eventually, polled
from system.provision import TTL_ATTRIBUTE
from system.stackfile import StackFile

# The attribute naming the run that seeded a row.
RUN_ATTRIBUTE = "contract_run"
SEEDED_ROW_TTL_S = 3600
# DynamoDB's limits per BatchGetItem and per BatchWriteItem.
BATCH_GET_KEYS = 100
BATCH_WRITE_REQUESTS = 25
# The first pause before asking again for what a batch call left unprocessed (AWS
# asks callers to back off exponentially).
UNPROCESSED_BACKOFF_S = 0.05


class Tables:
    """The chat's tables as the contract suite reads them, and the rows it seeds there."""

    def __init__(self, stack: StackFile, run_id: str) -> None:
        self.client = stack.dynamodb_client()
        self.names = stack.tables
        self.run_id = run_id
        self.consistent_scans = stack.kind == "local"
        self._seeded: set[str] = set()

    # -- reading -------------------------------------------------------------------------

    def is_active(self, connection_id: str) -> bool:
        return connection_id in self.active_among({connection_id})

    def active_among(self, connection_ids: Iterable[str]) -> set[str]:
        """Those of ``connection_ids`` that have an ActiveConnections row."""
        rows = self._batch_get(self.names["active_connections"], "connection_id", connection_ids)
        return {row["connection_id"]["S"] for row in rows}

    def session(self, connection_id: str) -> dict | None:
        item = self.client.get_item(TableName=self.names["session_history"],
                                    Key={"connection_id": {"S": connection_id}},
                                    ConsistentRead=True).get("Item")
        return {k: next(iter(v.values())) for k, v in item.items()} if item else None

    def message(self, message_id: str) -> dict | None:
        item = self.client.get_item(TableName=self.names["message_history"],
                                    Key={"message_id": {"S": message_id}},
                                    ConsistentRead=True).get("Item")
        return stored_message(item) if item else None

    def messages_from(self, senders: set[str], awaiting: Iterable[str] = ()) -> list[dict]:
        """Every stored message of ``senders``. Where scans are eventually consistent, the
        scan is repeated (bounded) until the ``awaiting`` message ids are in it, since such
        a read may miss the last second's writes; the caller's assertions judge the rows."""
        if self.consistent_scans:
            return self._scan_messages_from(senders)
        awaited = set(awaiting)
        return polled(lambda: self._scan_messages_from(senders),
                      until=lambda rows: awaited <= {row["message_id"] for row in rows})

    def _scan_messages_from(self, senders: set[str]) -> list[dict]:
        placeholders = {f":sender{n}": {"S": sender} for n, sender in enumerate(senders)}
        kwargs = {"TableName": self.names["message_history"],
                  "ConsistentRead": self.consistent_scans,
                  "FilterExpression": f"connection_id IN ({', '.join(placeholders)})",
                  "ExpressionAttributeValues": placeholders}
        items = []
        while True:
            page = self.client.scan(**kwargs)
            items.extend(page["Items"])
            if "LastEvaluatedKey" not in page:
                return [stored_message(item) for item in items]
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def _batch_get(self, table: str, key: str, values: Iterable[str]) -> list[dict]:
        keys = [{key: {"S": value}} for value in values]
        items = []
        for start in range(0, len(keys), BATCH_GET_KEYS):
            request = {table: {"Keys": keys[start:start + BATCH_GET_KEYS], "ConsistentRead": True}}
            for answer in self._until_processed(self.client.batch_get_item, request,
                                                "UnprocessedKeys"):
                items.extend(answer["Responses"].get(table, []))
        return items

    # -- writing -------------------------------------------------------------------------

    def seed_active(self, connection_id: str, connected_at_ms: int, **text: str) -> None:
        """An ActiveConnections row as $connect writes it, plus ``text`` attributes,
        marked with the run."""
        self._seeded.add(connection_id)
        self.client.put_item(TableName=self.names["active_connections"], Item={
            "connection_id": {"S": connection_id},
            "connected_at_ms": {"N": str(connected_at_ms)},
            TTL_ATTRIBUTE: {"N": str(int(time.time()) + SEEDED_ROW_TTL_S)},
            RUN_ATTRIBUTE: {"S": self.run_id},
            **{name: {"S": value} for name, value in text.items()},
        })

    @property
    def seeded(self) -> set[str]:
        """The connection ids of the rows this run seeded and has not removed."""
        return set(self._seeded)

    def remove_seeded(self, connection_ids: Iterable[str]) -> None:
        """Delete these seeded rows where they still carry the run's mark (the chat may
        have pruned one already; a row written since under the same id is not ours)."""
        for connection_id in set(connection_ids):
            try:
                self.client.delete_item(
                    TableName=self.names["active_connections"],
                    Key={"connection_id": {"S": connection_id}},
                    ConditionExpression=f"{RUN_ATTRIBUTE} = :run",
                    ExpressionAttributeValues={":run": {"S": self.run_id}},
                )
            except self.client.exceptions.ConditionalCheckFailedException:
                pass
            self._seeded.discard(connection_id)

    def remove_chat_rows(self, connection_ids: set[str], message_ids: set[str]) -> None:
        """Delete what the chat stored because of these connections: their SessionHistory
        rows, the MessageHistory rows of ``message_ids``, and the ActiveConnections rows of
        any whose $disconnect never came. A session is deleted once $disconnect has closed
        it, as its UpdateItem would otherwise write the row again; sessions still open
        after the wait are deleted too, and the wait's failure raised."""
        still_open = set(connection_ids)

        def all_closed() -> bool:
            closed = self._batch_get(self.names["session_history"], "connection_id", still_open)
            still_open.difference_update(
                row["connection_id"]["S"] for row in closed if "disconnected_at" in row)
            return not still_open

        try:
            eventually(all_closed, "$disconnect closed the session of every connection of the test")
        finally:
            self._delete(self.names["session_history"], "connection_id", connection_ids)
            self._delete(self.names["message_history"], "message_id", message_ids)
            self._delete(self.names["active_connections"], "connection_id", still_open)

    def _delete(self, table: str, key: str, values: Iterable[str]) -> None:
        requests = [{"DeleteRequest": {"Key": {key: {"S": value}}}} for value in values]
        for start in range(0, len(requests), BATCH_WRITE_REQUESTS):
            self._until_processed(self.client.batch_write_item,
                                  {table: requests[start:start + BATCH_WRITE_REQUESTS]},
                                  "UnprocessedItems")

    @staticmethod
    def _until_processed(call: Callable[..., dict], request: dict,
                         unprocessed: str) -> list[dict]:
        """The answers of a batch ``call``, asked again, with exponential backoff, for
        whatever the last answer left ``unprocessed``."""
        answers, pause = [], UNPROCESSED_BACKOFF_S
        while request:
            answers.append(call(RequestItems=request))
            request = answers[-1].get(unprocessed)
            if request:
                time.sleep(pause)
                pause *= 2
        return answers


def stored_message(item: dict) -> dict:
    return {"sender": item["connection_id"]["S"], "message": item["message"]["S"],
            "message_id": item["message_id"]["S"], "timestamp": item["timestamp"]["S"]}
