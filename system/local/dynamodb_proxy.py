"""A proxy in front of DynamoDB, where the local stack answers for the tables and watches them.

The Lambda workers reach DynamoDB through it. It forwards every call unchanged, and:
- answers ``ProvisionedThroughputExceededException`` (HTTP 400, which botocore
  retries) where an armed fault throttles the table, or where the capacity
  governor finds the table's provisioned capacity spent;
- answers ``SerializationException`` (HTTP 400, as DynamoDB answers a body it
  cannot parse) to a request body that is not JSON to it, nesting too deep included,
  without forwarding it: what the proxy cannot read, it cannot account for;
- writes one JSON line per operation to the operations log: the capacity the
  backend reported, the capacity DynamoDB's documented rules give for the same
  items (``system.dynamodb_capacity``), the bytes read or written, and the Lambda
  invocation and route that made the call (headers the local Lambda runtime adds).

For a single-item write the rules need the stored item before it (and after an
UpdateItem): the proxy reads it with a GetItem of its own, which is neither logged
nor governed. Test clients read the tables directly, never throttled.

With the AWS latency model on (``system.local.aws_latency``), each call whose body it can
read first waits a ``dynamodb_read`` delay (``READ_OPERATIONS``) or a ``dynamodb_write`` delay
(any other operation), as the Lambda making it would wait in AWS; the proxy's own
GetItem lookups wait nothing.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

from aiohttp import ClientSession, web

from system.dynamodb_capacity import (
    READ_OPERATIONS,
    SINGLE_ITEM_WRITES,
    item_size,
    modelled_capacity,
    stored_bytes,
)
from system.local.aws_latency import AWS_LATENCY_OFF, AwsLatency
from system.local.capacity import CapacityGovernor
from system.local.faults import Faults
from system.local.lambda_runtime.worker import INVOCATION_HEADER, ROUTE_HEADER
from system.local.processes import LOOPBACK

log = logging.getLogger("chat_harness.dynamodb")

_TARGET_PREFIX = "DynamoDB_20120810."
_HOP_BY_HOP = {"host", "content-length", "transfer-encoding", "connection", "keep-alive"}
_THROTTLED = {
    "__type": "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
    "message": "The level of configured provisioned throughput for the table was exceeded. "
               "Consider increasing your provisioning level with the UpdateTable API.",
}
_UNREADABLE = {"__type": "com.amazon.coral.service#SerializationException"}
# (known, item) for a call that needs no stored item looked up.
_NOTHING_STORED: tuple[bool, dict | None] = (True, None)


def tables_of(request: dict) -> list[str]:
    """The tables a DynamoDB JSON request touches: TableName, or RequestItems' keys."""
    if isinstance(request.get("TableName"), str):
        return [request["TableName"]]
    items = request.get("RequestItems")
    return [name for name in items if isinstance(name, str)] if isinstance(items, dict) else []


def parse_json(body: bytes) -> dict | None:
    """The JSON object in a body ({} for an empty body or a JSON non-object), or None for
    a body that is not JSON, or nests deeper than the parser goes."""
    try:
        document = json.loads(body or b"{}")
    except (ValueError, RecursionError):
        return None
    return document if isinstance(document, dict) else {}


def measured_capacity(operation: str, response: dict) -> dict[str, dict[str, float]]:
    """The response's ConsumedCapacity as {table: {"read": r, "write": w}}."""
    consumed = response.get("ConsumedCapacity") or []
    kind = "read" if operation in READ_OPERATIONS else "write"
    measured: dict[str, dict[str, float]] = {}
    for entry in consumed if isinstance(consumed, list) else [consumed]:
        totals = measured.setdefault(entry["TableName"], {"read": 0.0, "write": 0.0})
        totals[kind] += float(entry.get("CapacityUnits", 0.0))
    return measured


def latency_kind(operation: str) -> str:
    """The AWS latency model's kind for a DynamoDB operation: a read or a write."""
    return "dynamodb_read" if operation in READ_OPERATIONS else "dynamodb_write"


def stored_change(operation: str, document: dict, error: str | None,
                  before: tuple[bool, dict | None], after: tuple[bool, dict | None]) -> int | None:
    """Bytes a single-item write added to its table's billed storage (negative: freed; 0
    for a write that failed); None for any other call, or where the item before or after
    it is not known."""
    (before_known, before_item), (after_known, after_item) = before, after
    if operation not in SINGLE_ITEM_WRITES or not (before_known and after_known):
        return None
    if error is not None:
        return 0
    now = {"PutItem": document.get("Item"), "UpdateItem": after_item,
           "DeleteItem": None}[operation]
    return stored_bytes(now) - stored_bytes(before_item)


def _json_error(document: dict) -> web.Response:
    """A DynamoDB error as its JSON protocol carries it: HTTP 400, the type in ``__type``."""
    return web.Response(status=400, text=json.dumps(document),
                        content_type="application/x-amz-json-1.0")


def items_read(response: dict) -> list[dict]:
    if "Items" in response:
        return response["Items"]
    if "Item" in response:
        return [response["Item"]]
    return [item for items in response.get("Responses", {}).values() if isinstance(items, list)
            for item in items]


class DynamoDBProxy:
    def __init__(self, backend_url: str, faults: Faults, *,
                 key_attributes: dict[str, str] | None = None,
                 governor: CapacityGovernor | None = None, operations_log: Path,
                 latency: AwsLatency = AWS_LATENCY_OFF) -> None:
        self.backend_url = backend_url.rstrip("/")
        self.latency = latency
        self.faults = faults
        self.key_attributes = key_attributes or {}
        self.governor = governor
        self._log = operations_log.open("a", encoding="utf-8")
        self._session: ClientSession | None = None
        app = web.Application(client_max_size=32 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._forward)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)

    async def start(self) -> str:
        """Listen on loopback, for the Lambda workers only; the proxy's URL."""
        self._session = ClientSession(auto_decompress=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, LOOPBACK, 0, backlog=1024)
        await site.start()
        return f"http://{LOOPBACK}:{self._runner.addresses[0][1]}"

    async def _forward(self, request: web.Request) -> web.Response:
        body = await request.read()
        document = parse_json(body)
        if document is None:
            log.info("refused a request body that is not JSON (%d bytes)", len(body))
            return _json_error(_UNREADABLE)
        operation = request.headers.get("X-Amz-Target", "").removeprefix(_TARGET_PREFIX)
        await self.latency.wait(latency_kind(operation))
        tables = tables_of(document)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
        origin = {"invocation": request.headers.get(INVOCATION_HEADER),
                  "route": request.headers.get(ROUTE_HEADER)}

        throttled_by = next(("fault" for t in tables if self.faults.throttle(t)), None)
        if throttled_by is None and self.governor is not None and not self.governor.admits(
                operation, tables, time.monotonic()):
            throttled_by = "provisioned capacity"
        if throttled_by is not None:
            log.info("throttled %s on %s (%s)", operation, tables, throttled_by)
            self._record({"op": operation, **origin, "tables": tables, "throttled": throttled_by})
            return _json_error(_THROTTLED)

        before = (await self._stored_item(document, headers)
                  if operation in SINGLE_ITEM_WRITES else _NOTHING_STORED)
        async with self._session.request(request.method, self.backend_url + request.path_qs,
                                         headers=headers, data=body) as answer:
            payload = await answer.read()
            reply_headers = {k: v for k, v in answer.headers.items()
                             if k.lower() not in _HOP_BY_HOP}
            status = answer.status
        if tables:
            await self._observe(operation, document, status, parse_json(payload) or {}, before,
                                headers, origin)
        return web.Response(status=status, body=payload, headers=reply_headers)

    async def _observe(self, operation: str, document: dict, status: int, response: dict,
                       before: tuple[bool, dict | None], headers: dict, origin: dict) -> None:
        """Charge the governor with what the call consumed; log measured against modelled."""
        error = response.get("__type", "").rpartition("#")[2] if status != 200 else None
        after = (await self._stored_item(document, headers)
                 if operation == "UpdateItem" and error is None else _NOTHING_STORED)
        (before_known, before_item), (after_known, after_item) = before, after
        modelled = modelled_capacity(
            operation, document, response if error is None else None,
            before=before_item, after=after_item, error=error,
        ) if before_known and after_known else None
        measured = measured_capacity(operation, response)
        if self.governor is not None:
            now = time.monotonic()
            charged = {t: dict(v) for t, v in measured.items()}
            for entry in modelled or []:  # a call the backend did not report on (a failed write)
                charged.setdefault(entry.table, {"read": entry.read, "write": entry.write})
            for table, units in charged.items():
                self.governor.charge(table, units["read"], units["write"], now)
        if operation in READ_OPERATIONS:
            sizes = [item_size(item) for item in items_read(response)]
        else:
            written = document.get("Item") if operation == "PutItem" else after_item
            sizes = [item_size(written)] if written else []
        self._record({
            "op": operation, **origin, "tables": tables_of(document), "error": error,
            "measured": measured,
            "modelled": None if modelled is None else {
                e.table: {"read": e.read, "write": e.write} for e in modelled},
            "items": len(sizes), "bytes": sum(sizes),
            "stored_bytes": stored_change(operation, document, error, before, after),
        })

    async def _stored_item(self, document: dict, headers: dict) -> tuple[bool, dict | None]:
        """(known, item): the item a single-item write addresses, as stored now."""
        table = document.get("TableName")
        key = document.get("Key")
        if key is None and table in self.key_attributes:
            attribute = self.key_attributes[table]
            key = {attribute: document.get("Item", {}).get(attribute)}
        if not isinstance(key, dict) or None in key.values():
            return False, None
        request = {"TableName": table, "Key": key, "ConsistentRead": True}
        async with self._session.post(
                self.backend_url + "/", data=json.dumps(request).encode(),
                headers={**headers, "X-Amz-Target": _TARGET_PREFIX + "GetItem"}) as answer:
            if answer.status != 200:
                return False, None
            return True, (parse_json(await answer.read()) or {}).get("Item")

    def _record(self, entry: dict) -> None:
        self._log.write(json.dumps({"t": round(time.time(), 4), **entry}) + "\n")
        self._log.flush()

    async def stop(self) -> None:
        await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()
        self._log.close()
