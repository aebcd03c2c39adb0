"""What DynamoDB should charge for a call, from the Developer Guide's documented rules.

Pure functions, no I/O. Sources (Amazon DynamoDB Developer Guide):

- "DynamoDB item sizes and formats"
  https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/CapacityUnitCalculations.html
- "DynamoDB read and write operations" (capacity unit consumption for reads and writes;
  formerly the "Provisioned capacity mode" page's "Capacity unit consumption" sections)
  https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/read-write-operations.html
- "Amazon DynamoDB Transactions: How it works", section "Capacity management for transactions"
  https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis.html
- "Working with items and attributes", section "Capacity units consumed by conditional writes"
  https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/WorkingWithItems.html
- "Constraints in Amazon DynamoDB": "DynamoDB denotes 1 KB = 1024 bytes".
- API reference, BatchGetItem: "Requests for nonexistent items consume the minimum read
  capacity units according to the type of read."

``modelled_capacity`` returns None where the wire does not show what DynamoDB charges for:
Scan/Query/GetItem/BatchGetItem/TransactGetItems that project attributes (ProjectionExpression,
AttributesToGet, Select=SPECIFIC_ATTRIBUTES or COUNT: "doing so has no impact on the item size
calculations", but the response no longer shows the full items); a Scan/Query page whose filter
dropped items (ScannedCount > Count: "DynamoDB considers the size of the items that are
evaluated, not the size of the items returned"); reads of an index (charged to the index, and an
LSI may fetch table attributes); BatchWriteItem and TransactWriteItems (each item is charged the
larger of the stored item and the new one, and the stored items are not on the wire);
a TransactionCanceledException (what a cancelled transaction consumes is not documented); and
operations not listed here (PartiQL's ExecuteStatement, …).

A read that finds nothing is charged the minimum, one 4 KB unit ("If you perform a read
operation on an item that doesn't exist, DynamoDB will still consume read throughput"); for
Query/Scan the page adds "additional read throughput based on read consistency and the number
of partitions searched", which the wire does not show: an empty page is modelled at the minimum.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

KB = 1024
READ_UNIT_BYTES = 4 * KB
WRITE_UNIT_BYTES = 1 * KB
STORAGE_OVERHEAD_BYTES = 100  # per item, billed as storage (stored_bytes)
# Read capacity units per 4 KB unit of a read ("DynamoDB read and write operations").
READ_UNITS_PER_4KB = {"eventual": 0.5, "strong": 1.0, "transactional": 2.0}
CONDITIONAL_CHECK_FAILED = "ConditionalCheckFailedException"
# The data-plane operations, by the kind of capacity they consume.
SINGLE_ITEM_WRITES = frozenset({"PutItem", "UpdateItem", "DeleteItem"})
WRITE_OPERATIONS = SINGLE_ITEM_WRITES | {"BatchWriteItem", "TransactWriteItems"}
READ_OPERATIONS = frozenset({"GetItem", "BatchGetItem", "Query", "Scan", "TransactGetItems"})
# Operations that consume no read or write capacity units.
CONTROL_PLANE = frozenset({
    "CreateTable", "DeleteTable", "DescribeTable", "ListTables", "UpdateTable",
    "DescribeTimeToLive", "UpdateTimeToLive", "TagResource", "UntagResource",
    "ListTagsOfResource", "DescribeLimits", "DescribeEndpoints", "CreateBackup", "DeleteBackup",
    "DescribeBackup", "ListBackups", "DescribeContinuousBackups", "UpdateContinuousBackups",
    "CreateGlobalTable", "DescribeGlobalTable", "ListGlobalTables", "UpdateGlobalTable",
})


@dataclass(frozen=True)
class TableCapacity:
    table: str
    read: float = 0.0
    write: float = 0.0


def _utf8(text: str) -> int:
    return len(text.encode("utf-8"))


def _binary(value: str | bytes) -> int:
    """Raw byte length: wire JSON carries B as base64, boto3 hands over bytes."""
    return len(value) if isinstance(value, bytes | bytearray) else len(base64.b64decode(value))


def _number(value: str) -> int:
    """(1 byte per two significant digits) + (1 byte); leading and trailing zeroes are trimmed.

    The page says "approximately" and says nothing of a sign, a decimal point or an
    exponent, so none adds a byte here; zero has no significant digit (1 byte).
    """
    digits = "".join(map(str, Decimal(value).as_tuple().digits)).strip("0")
    return math.ceil(len(digits) / 2) + 1


def _value_size(value: dict) -> int:
    """Size of one AttributeValue ({"S": ...}, {"N": ...}, {"L": [...]}, …), name excluded.

    A List or Map is 3 bytes + its nested elements, and "each List or Map element also
    requires 1 byte of overhead"; a Map's nested element includes its name.
    """
    ((kind, v),) = value.items()
    if kind == "S":
        return _utf8(v)
    if kind == "N":
        return _number(v)
    if kind == "B":
        return _binary(v)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(map(_utf8, v))
    if kind == "NS":
        return sum(map(_number, v))
    if kind == "BS":
        return sum(map(_binary, v))
    if kind == "L":
        return 3 + sum(_value_size(element) + 1 for element in v)
    if kind == "M":
        return 3 + sum(_utf8(name) + _value_size(element) + 1 for name, element in v.items())
    raise ValueError(f"not a DynamoDB attribute value type: {kind!r}")


def item_size(item: dict) -> int:
    """Bytes of a DynamoDB JSON item: the sum of its attribute names' UTF-8 bytes and values."""
    return sum(_utf8(name) + _value_size(value) for name, value in item.items())


def stored_bytes(item: dict | None) -> int:
    """What an item takes of its table's billed storage: its size and the 100 bytes of
    overhead "every item in DynamoDB requires ... for indexing" (item sizes and formats,
    CapacityUnitCalculations.html); none for no item."""
    return 0 if item is None else item_size(item) + STORAGE_OVERHEAD_BYTES


def read_units(size_bytes: int, consistency: str = "eventual") -> float:
    """Item size rounded up to the next 4 KB; per 4 KB: strong 1, eventual 0.5,
    transactional 2. A read of an item that does not exist (size 0) still costs one unit."""
    return max(1, math.ceil(size_bytes / READ_UNIT_BYTES)) * READ_UNITS_PER_4KB[consistency]


def write_units(size_bytes: int, transactional: bool = False) -> float:
    """Item size rounded up to the next 1 KB, at least 1 KB; transactional writes cost double."""
    return float(max(1, math.ceil(size_bytes / WRITE_UNIT_BYTES)) * (2 if transactional else 1))


def page_read_units(item_sizes: Iterable[int], consistency: str = "eventual") -> float:
    """One Scan/Query page: "DynamoDB computes the total size of all items and then rounds up
    to the next 4 KB boundary". An empty page costs the minimum read (see module notes)."""
    return read_units(sum(item_sizes), consistency)


def batch_read_units(item_sizes: Iterable[int], consistency: str = "eventual") -> float:
    """BatchGetItem: each item is rounded up to 4 KB on its own, then summed (a missing item is
    size 0 and costs the minimum)."""
    return sum((read_units(size, consistency) for size in item_sizes), 0.0)


def batch_write_units(item_sizes: Iterable[int]) -> float:
    """BatchWriteItem: each item is rounded up to 1 KB on its own, then summed."""
    return sum((write_units(size) for size in item_sizes), 0.0)


def single_write_units(before: int | None, after: int | None) -> float:
    """PutItem/UpdateItem: the larger of the item sizes before and after; DeleteItem
    (after=None): the deleted item's size; nothing stored nor written: 1 WCU.

    A failed conditional write is charged the same way: "The amount consumed is dependent on
    the size of the item (whether it's an existing item in the table or a new one you are
    attempting to create or update)" (300 KB stored, 310 KB new -> 310 KB).
    """
    return write_units(max(before or 0, after or 0))


def _size(item: dict | None) -> int | None:
    return None if item is None else item_size(item)


def _consistency(spec: dict) -> str:
    return "strong" if spec.get("ConsistentRead") else "eventual"


def _hides_sizes(spec: dict) -> bool:
    """True when the items in the response are not the items read: attributes projected
    away, only a count, or entries of an index."""
    return bool(spec.get("ProjectionExpression") or spec.get("AttributesToGet")
                or spec.get("IndexName")
                or spec.get("Select") in ("SPECIFIC_ATTRIBUTES", "COUNT"))


def _per_table(charges: Iterable[tuple[str, float, float]]) -> list[TableCapacity]:
    totals: dict[str, tuple[float, float]] = {}
    for table, read, write in charges:
        r, w = totals.get(table, (0.0, 0.0))
        totals[table] = (r + read, w + write)
    return [TableCapacity(table, r, w) for table, (r, w) in totals.items()]


def _page(request: dict, response: dict) -> list[TableCapacity] | None:
    items = response.get("Items")
    if _hides_sizes(request) or items is None:
        return None
    if response.get("ScannedCount", len(items)) != len(items):  # a filter dropped items
        return None
    units = page_read_units(map(item_size, items), _consistency(request))
    return [TableCapacity(request["TableName"], read=units)]


def _get_item(request: dict, response: dict) -> list[TableCapacity] | None:
    item = response.get("Item")
    if item is not None and _hides_sizes(request):
        return None
    units = read_units(item_size(item or {}), _consistency(request))
    return [TableCapacity(request["TableName"], read=units)]


def _batch_get(request: dict, response: dict) -> list[TableCapacity] | None:
    charges = []
    for table, spec in request["RequestItems"].items():
        items = response.get("Responses", {}).get(table, [])
        unprocessed = response.get("UnprocessedKeys", {}).get(table, {}).get("Keys", [])
        missing = len(spec["Keys"]) - len(unprocessed) - len(items)
        if _hides_sizes(spec) or missing < 0:
            return None
        sizes = [item_size(item) for item in items] + [0] * missing
        if sizes:
            charges.append((table, batch_read_units(sizes, _consistency(spec)), 0.0))
    return _per_table(charges)


def _transact_get(request: dict, response: dict) -> list[TableCapacity] | None:
    gets = [action["Get"] for action in request["TransactItems"]]
    answers = response.get("Responses", [])
    if len(answers) != len(gets) or any(map(_hides_sizes, gets)):
        return None
    return _per_table(
        (get["TableName"], read_units(item_size(answer.get("Item") or {}), "transactional"), 0.0)
        for get, answer in zip(gets, answers)
    )


def _single_write(operation: str, request: dict, before: dict | None,
                  after: dict | None) -> list[TableCapacity]:
    """Put: the request's Item is the new item; Update: ``after``; Delete: none. A failed
    conditional UpdateItem has no ``after`` (the attempted item is not on the wire), so it is
    charged the stored item's size: a lower bound."""
    new = {"PutItem": request.get("Item"), "UpdateItem": after}.get(operation)
    units = single_write_units(_size(before), _size(new))
    return [TableCapacity(request["TableName"], write=units)]


_READS = {"Scan": _page, "Query": _page, "GetItem": _get_item, "BatchGetItem": _batch_get,
          "TransactGetItems": _transact_get}


def modelled_capacity(operation: str, request: dict, response: dict | None, *,
                      before: dict | None = None, after: dict | None = None,
                      error: str | None = None) -> list[TableCapacity] | None:
    """The capacity DynamoDB's rules charge per table for one JSON-protocol call.

    ``operation`` is the X-Amz-Target action ("Scan", "PutItem", …); ``request`` and
    ``response`` the parsed JSON bodies; ``before`` the stored item a single-item write
    addresses (None if absent), ``after`` the stored item after an UpdateItem; ``error`` the
    error type's short name when the call failed. [] means nothing is charged (control-plane
    calls, failed calls other than a conditional check), None that the model cannot know
    (see the module notes).
    """
    if error is not None:
        if error == CONDITIONAL_CHECK_FAILED and operation in SINGLE_ITEM_WRITES:
            return _single_write(operation, request, before, after)
        return None if error == "TransactionCanceledException" else []
    if operation in CONTROL_PLANE:
        return []
    if operation in SINGLE_ITEM_WRITES:
        return _single_write(operation, request, before, after)
    if operation in _READS and response is not None:
        return _READS[operation](request, response)
    return None
