"""system.dynamodb_capacity against the DynamoDB Developer Guide's own numbers, and its properties.

Pages quoted below (Amazon DynamoDB Developer Guide):
- SIZES: "DynamoDB item sizes and formats" (CapacityUnitCalculations.html). The page gives the
  formulas but no worked numbers; the item-size vectors apply its formulas by hand.
- RW: "DynamoDB read and write operations" (read-write-operations.html), and the same
  sections as they stood on "Managing settings on DynamoDB provisioned capacity tables"
  (ProvisionedThroughput.html, "Capacity unit consumption for reads/writes").
- TX: "Amazon DynamoDB Transactions: How it works", "Capacity management for transactions".
- COND: "Working with items and attributes", "Capacity units consumed by conditional writes".
"""

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from system.dynamodb_capacity import (
    TableCapacity,
    batch_read_units,
    batch_write_units,
    item_size,
    modelled_capacity,
    page_read_units,
    read_units,
    single_write_units,
    write_units,
)

KB = 1024
CONSISTENCIES = ("eventual", "strong", "transactional")


def item_of(size: int, name: str = "p") -> dict:
    """An item of exactly ``size`` bytes: one string attribute."""
    return {name: {"S": "x" * (size - len(name))}}


@pytest.mark.parametrize("item, size", [
    # SIZES: string = UTF-8 bytes of the name + UTF-8 bytes of the value
    ({"connection_id": {"S": "abc"}}, 13 + 3),
    ({"é": {"S": "é"}}, 2 + 2),
    # SIZES: number = name + (1 byte per two significant digits) + (1 byte),
    # "Leading and trailing zeroes are trimmed"
    ({"n": {"N": "12"}}, 1 + 1 + 1),
    ({"n": {"N": "123"}}, 1 + 2 + 1),
    ({"n": {"N": "00123.4500"}}, 1 + 3 + 1),  # 12345: five significant digits
    ({"n": {"N": "-1.5"}}, 1 + 1 + 1),
    ({"n": {"N": "0"}}, 1 + 0 + 1),
    # SIZES: binary = name + raw bytes ("must be encoded in base64 … but the value's raw
    # byte length is used")
    ({"b": {"B": "AAEC"}}, 1 + 3),
    ({"b": {"B": b"\x00\x01\x02"}}, 1 + 3),
    # SIZES: null or Boolean = name + 1 byte
    ({"ok": {"BOOL": False}}, 2 + 1),
    ({"z": {"NULL": True}}, 1 + 1),
    # SIZES: empty List or Map = name + 3 bytes; "Each List or Map element also requires
    # 1 byte of overhead"
    ({"l": {"L": []}}, 1 + 3),
    ({"m": {"M": {}}}, 1 + 3),
    ({"l": {"L": [{"S": "a"}, {"N": "1"}]}}, 1 + 3 + (1 + 1) + (2 + 1)),
    ({"m": {"M": {"a": {"S": "b"}}}}, 1 + 3 + (1 + 1 + 1)),
    # sets: the sum of their elements' sizes
    ({"ss": {"SS": ["a", "bc"]}}, 2 + 3),
    ({"ns": {"NS": ["1", "22"]}}, 2 + 2 + 2),
    ({"bs": {"BS": ["AA==", "AAE="]}}, 2 + 1 + 2),
])
def test_item_size_vectors(item, size):
    assert item_size(item) == size


@pytest.mark.parametrize("size, consistency, units", [
    # RW: "reading a 3,500-byte item consumes the same throughput as reading a 4 KB item"
    (3500, "strong", 1.0),
    (3500, "eventual", 0.5),
    # RW, GetItem: "if you read an item that is 3.5 KB, DynamoDB rounds the item size to 4 KB"
    (int(3.5 * KB), "strong", 1.0),
    (int(3.5 * KB), "eventual", 0.5),
    # RW: "If you read an item of 10 KB, DynamoDB rounds the item size to 12 KB"
    (10 * KB, "strong", 3.0),
    # RW: "if your item size is 8 KB, you require 2 read units to sustain one strongly consistent
    # read. You'll require 1 read unit if you choose eventually consistent reads or 4 read units
    # for a transactional read request"
    (8 * KB, "strong", 2.0),
    (8 * KB, "eventual", 1.0),
    (8 * KB, "transactional", 4.0),
    # ProvisionedThroughput, initial settings: "3 KB / 4 KB = 0.75, or 1 read capacity unit"
    (3 * KB, "strong", 1.0),
    # RW: an item that does not exist: "A strongly consistent read request consumes one read
    # capacity unit, while an eventually consistent read request consumes 0.5"
    (0, "strong", 1.0),
    (0, "eventual", 0.5),
    # the rule applied: a 7 KB item rounds to 8 KB
    (7 * KB, "strong", 2.0),
])
def test_read_unit_vectors(size, consistency, units):
    assert read_units(size, consistency) == units


@pytest.mark.parametrize("size, transactional, units", [
    # RW: "writing a 500-byte item consumes the same throughput as writing a 1 KB item"
    (500, False, 1.0),
    # ProvisionedThroughput, initial settings: "512 bytes / 1 KB = 0.5, or 1"
    (512, False, 1.0),
    # RW: "if you put or delete an item of 1.6 KB, DynamoDB rounds the item size up to 2 KB"
    (int(1.6 * KB), False, 2.0),
    # RW, BatchWriteItem example: a 3.5 KB item counts as 4 KB
    (int(3.5 * KB), False, 4.0),
    # TX: "each transaction writes three 500-byte items … Each item requires two write
    # capacity units (WCUs): one to prepare the transaction and one to commit"
    (500, True, 2.0),
])
def test_write_unit_vectors(size, transactional, units):
    assert write_units(size, transactional) == units


@pytest.mark.parametrize("sizes, consistency, units", [
    # RW, Query: "your query returns 10 items whose combined size is 40.8 KB. DynamoDB rounds
    # the item size for the operation to 44 KB"
    ([4178] * 10, "strong", 11.0),
    # RW, Query: "If a query returns 1500 items of 64 bytes each, the cumulative size is 96 KB"
    ([64] * 1500, "strong", 24.0),
    # RW: "For an eventually consistent read, if the total item size is 80 KB, the operation
    # consumes only 10 capacity units"
    ([40 * KB, 40 * KB], "eventual", 10.0),
    # RW: a read that finds nothing still costs the minimum (1 strong, 0.5 eventual)
    ([], "strong", 1.0),
    ([], "eventual", 0.5),
    # RW, BatchGetItem contrast: 1.5 KB + 6.5 KB summed is 8 KB
    ([int(1.5 * KB), int(6.5 * KB)], "strong", 2.0),
])
def test_page_vectors(sizes, consistency, units):
    assert page_read_units(sizes, consistency) == units


def test_batch_vectors():
    # RW, BatchGetItem: "reads a 1.5 KB item and a 6.5 KB item, DynamoDB calculates the size as
    # 12 KB (4 KB + 8 KB), not 8 KB (1.5 KB + 6.5 KB)"
    assert batch_read_units([int(1.5 * KB), int(6.5 * KB)], "strong") == 3.0
    # RW, BatchWriteItem: "writes a 500-byte item and a 3.5 KB item, DynamoDB calculates the
    # size as 5 KB (1 KB + 4 KB), not 4 KB (500 bytes + 3.5 KB)"
    assert batch_write_units([500, int(3.5 * KB)]) == 5.0


@pytest.mark.parametrize("before, after, units", [
    # COND: "a failed conditional write of a 1 KB item would consume one write capacity unit.
    # If the item were twice that size, the failed conditional write would consume two"
    (1 * KB, None, 1.0),
    (2 * KB, None, 2.0),
    # COND (current wording): "if an existing item is 300kb and the new item you are trying to
    # create or update is 310kb, the write capacity units consumed will be the 310kb item"
    (300 * KB, 310 * KB, 310.0),
    # RW, PutItem/UpdateItem: "the larger of the two" item sizes
    (310 * KB, 300 * KB, 310.0),
    # COND: "If the item does not currently exist in the table, DynamoDB consumes one write
    # capacity unit" (a delete of a missing item)
    (None, None, 1.0),
])
def test_single_write_vectors(before, after, units):
    assert single_write_units(before, after) == units


def test_failed_conditional_put_is_charged_the_larger_item():
    # COND: 300 KB stored, 310 KB attempted -> 310 WCU; no response body on the wire
    request = {"TableName": "T", "Item": item_of(310 * KB), "ConditionExpression": "x"}
    charged = modelled_capacity("PutItem", request, None, before=item_of(300 * KB),
                                error="ConditionalCheckFailedException")
    assert charged == [TableCapacity("T", write=310.0)]


def test_failed_conditional_delete_of_a_missing_item_costs_one_unit():
    request = {"TableName": "T", "Key": {"p": {"S": "k"}}}
    charged = modelled_capacity("DeleteItem", request, None,
                                error="ConditionalCheckFailedException")
    assert charged == [TableCapacity("T", write=1.0)]


def test_transaction_vectors():
    # TX: "each transaction reads three 500-byte items … you would need to provision six read
    # capacity units (RCUs)"
    request = {"TransactItems": [{"Get": {"TableName": "T", "Key": {"p": {"S": str(i)}}}}
                                 for i in range(3)]}
    response = {"Responses": [{"Item": item_of(500)}] * 3}
    assert modelled_capacity("TransactGetItems", request, response) == [TableCapacity("T", 6.0)]
    # TX: three 500-byte items written -> "you would need to provision six WCUs"
    assert sum(write_units(500, transactional=True) for _ in range(3)) == 6.0


def test_transactional_get_of_a_missing_item_costs_the_minimum():
    request = {"TransactItems": [{"Get": {"TableName": "T", "Key": {"p": {"S": "k"}}}}]}
    assert modelled_capacity("TransactGetItems", request, {"Responses": [{}]}) == [
        TableCapacity("T", read=2.0)]


def test_get_item():
    request = {"TableName": "T", "Key": {"p": {"S": "k"}}, "ConsistentRead": True}
    assert modelled_capacity("GetItem", request, {"Item": item_of(10 * KB)}) == [
        TableCapacity("T", read=3.0)]
    assert modelled_capacity("GetItem", request, {}) == [TableCapacity("T", read=1.0)]
    projected = {**request, "ProjectionExpression": "p"}
    assert modelled_capacity("GetItem", projected, {"Item": {"p": {"S": "k"}}}) is None
    assert modelled_capacity("GetItem", projected, {}) == [TableCapacity("T", read=1.0)]


def test_scan_page_is_summed_then_rounded():
    items = [item_of(4178) for _ in range(10)]
    response = {"Items": items, "Count": 10, "ScannedCount": 10}
    assert modelled_capacity("Scan", {"TableName": "T"}, response) == [TableCapacity("T", 5.5)]
    assert modelled_capacity("Query", {"TableName": "T", "ConsistentRead": True},
                             {"Items": [], "Count": 0, "ScannedCount": 0}) == [
        TableCapacity("T", read=1.0)]


@pytest.mark.parametrize("extra, response", [
    # RW: "DynamoDB considers the size of the items that are evaluated, not the size of the
    # items returned by the scan": a filter that dropped items hides their sizes
    ({"FilterExpression": "a = :a"}, {"Items": [], "Count": 0, "ScannedCount": 3}),
    # RW: a subset of attributes or a count "has no impact on the item size calculations"
    ({"ProjectionExpression": "p"}, {"Items": [{"p": {"S": "k"}}], "Count": 1, "ScannedCount": 1}),
    ({"Select": "COUNT"}, {"Count": 4, "ScannedCount": 4}),
    ({"IndexName": "byTime"}, {"Items": [], "Count": 0, "ScannedCount": 0}),
])
def test_pages_whose_sizes_the_wire_hides_are_not_modelled(extra, response):
    assert modelled_capacity("Scan", {"TableName": "T", **extra}, response) is None


def test_batch_get_rounds_each_item_and_charges_missing_ones():
    request = {"RequestItems": {
        "A": {"Keys": [{"p": {"S": "1"}}, {"p": {"S": "2"}}, {"p": {"S": "3"}}],
              "ConsistentRead": True},
        "B": {"Keys": [{"p": {"S": "1"}}]},
    }}
    response = {"Responses": {"A": [item_of(int(1.5 * KB)), item_of(int(6.5 * KB))]},
                "UnprocessedKeys": {"B": {"Keys": [{"p": {"S": "1"}}]}}}
    # A: 4 KB + 8 KB strong = 3, plus one missing item at the strong minimum; B: unprocessed
    assert modelled_capacity("BatchGetItem", request, response) == [TableCapacity("A", 4.0)]


def test_single_item_writes():
    small, large = item_of(500), item_of(int(1.6 * KB))
    put = {"TableName": "T", "Item": small}
    assert modelled_capacity("PutItem", put, {}, before=large) == [TableCapacity("T", write=2.0)]
    update = {"TableName": "T", "Key": {"p": {"S": "k"}}}
    assert modelled_capacity("UpdateItem", update, {}, before=small, after=large) == [
        TableCapacity("T", write=2.0)]
    assert modelled_capacity("DeleteItem", update, {}, before=large) == [
        TableCapacity("T", write=2.0)]
    assert modelled_capacity("DeleteItem", update, {}) == [TableCapacity("T", write=1.0)]


@pytest.mark.parametrize("operation, error, expected", [
    ("DescribeTable", None, []),
    ("ListTables", None, []),
    ("PutItem", "ProvisionedThroughputExceededException", []),
    ("Scan", "ValidationException", []),
    ("TransactWriteItems", "TransactionCanceledException", None),
    ("TransactWriteItems", None, None),
    ("BatchWriteItem", None, None),
    ("ExecuteStatement", None, None),
])
def test_unmodelled_and_free_calls(operation, error, expected):
    request = {"TableName": "T", "Item": item_of(500), "TransactItems": [], "RequestItems": {}}
    assert modelled_capacity(operation, request, None if error else {}, error=error) == expected


def test_non_ascii_counts_utf8_bytes():
    item = {"t": {"S": "é" * 600}}
    assert item_size(item) == 1201
    assert write_units(item_size(item)) == 2.0


names = st.text(min_size=1, max_size=6)
numbers = st.one_of(st.integers(), st.decimals(allow_nan=False, allow_infinity=False, places=3))
scalars = st.one_of(
    st.text(max_size=12).map(lambda s: {"S": s}),
    numbers.map(lambda n: {"N": str(n)}),
    st.binary(max_size=12).map(lambda b: {"B": base64.b64encode(b).decode()}),
    st.booleans().map(lambda b: {"BOOL": b}),
    st.just({"NULL": True}),
    st.sets(st.text(max_size=6), min_size=1, max_size=3).map(lambda s: {"SS": sorted(s)}),
)
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3).map(lambda v: {"L": v}),
    st.dictionaries(names, inner, max_size=3).map(lambda v: {"M": v}),
), max_leaves=8)
items = st.dictionaries(names, values, max_size=5)
sizes = st.integers(min_value=0, max_value=400 * KB)
consistencies = st.sampled_from(CONSISTENCIES)


@given(sizes, sizes, consistencies, st.booleans())
def test_units_are_monotonic_in_size(a, b, consistency, transactional):
    low, high = sorted((a, b))
    assert read_units(low, consistency) <= read_units(high, consistency)
    assert write_units(low, transactional) <= write_units(high, transactional)


@given(sizes)
def test_eventual_is_half_strong_is_half_transactional(size):
    assert read_units(size, "eventual") == read_units(size, "strong") / 2
    assert read_units(size, "strong") == read_units(size, "transactional") / 2


@given(st.lists(sizes, min_size=1, max_size=30), consistencies)
def test_page_is_between_its_largest_item_and_per_item_rounding(page, consistency):
    units = page_read_units(page, consistency)
    assert read_units(max(page), consistency) <= units <= batch_read_units(page, consistency)


@given(sizes, st.booleans())
def test_write_units_are_whole_and_at_least_one(size, transactional):
    units = write_units(size, transactional)
    assert units.is_integer() and units >= 1


@given(st.none() | sizes, st.none() | sizes)
def test_single_write_is_the_larger_item(before, after):
    units = single_write_units(before, after)
    assert units == single_write_units(after, before) == write_units(max(before or 0, after or 0))


@given(items)
def test_item_size_is_additive_over_attributes(item):
    assert item_size(item) == sum(item_size({name: value}) for name, value in item.items())


@given(items)
def test_map_costs_three_bytes_and_one_per_element(item):
    assert item_size({"m": {"M": item}}) == 1 + 3 + item_size(item) + len(item)


@given(names, st.text())
def test_strings_count_utf8_bytes(name, text):
    assert item_size({name: {"S": text}}) == len(name.encode()) + len(text.encode())


@given(st.binary())
def test_binary_counts_raw_bytes_from_base64_or_bytes(raw):
    wire = base64.b64encode(raw).decode()
    assert item_size({"b": {"B": wire}}) == item_size({"b": {"B": raw}}) == 1 + len(raw)


@given(st.integers(min_value=1))
def test_number_zeroes_are_trimmed(n):
    size = item_size({"n": {"N": str(n)}})
    assert item_size({"n": {"N": f"00{n}"}}) == item_size({"n": {"N": f"{n}.000"}}) == size


@given(items)
def test_put_of_a_new_item_is_its_write_units(item):
    request = {"TableName": "T", "Item": item}
    assert modelled_capacity("PutItem", request, {}) == [
        TableCapacity("T", write=write_units(item_size(item)))]


@given(st.lists(items, max_size=10), st.booleans())
def test_scan_page_is_page_read_units(page, consistent):
    request = {"TableName": "T", "ConsistentRead": consistent}
    response = {"Items": page, "Count": len(page), "ScannedCount": len(page)}
    consistency = "strong" if consistent else "eventual"
    assert modelled_capacity("Scan", request, response) == [
        TableCapacity("T", read=page_read_units(map(item_size, page), consistency))]
