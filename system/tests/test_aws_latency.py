"""The AWS latency model: its table (dated, every kind sourced), its draws (median p50,
~95% under p95, never above the cap, nothing when off), the one-line errors a bad table
gets, and where the servers wait: once per @connections call, once per DynamoDB call."""

from __future__ import annotations

import asyncio
import random
import statistics
from collections import Counter
from pathlib import Path

import boto3
import pytest
from aiohttp import ClientSession
from websockets.protocol import State as SocketState

from system.local.apigateway.events import Api
from system.local.apigateway.limits import ApiLimits
from system.local.apigateway.management_server import ManagementServer
from system.local.apigateway.websocket_server import WebSocketApi
from system.local.aws_latency import (
    CAP_FACTOR,
    DEFAULT_LATENCY_TABLE,
    KINDS,
    AwsLatency,
    LatencyEntry,
    LatencyTable,
    LatencyTableError,
    load_latency_table,
)
from system.local.dynamodb import DynamoDB
from system.local.dynamodb_proxy import DynamoDBProxy
from system.local.faults import Faults
from system.local.lambda_runtime.logs import OPERATIONS_LOG
from system.local.processes import LOOPBACK
from system.tests.test_websocket_api import StandInSocket, connected

CREDENTIALS = {"aws_access_key_id": "TESTKEY", "aws_secret_access_key": "test-secret"}
CONTROL_TOKEN = "test-control-token"
DRAWS = 20_000


class ClosableStandIn(StandInSocket):
    """A stand-in socket that DELETE @connections can close."""

    async def close(self, code: int, reason: str) -> None:
        self.state = SocketState.CLOSED


class RecordingLatency(AwsLatency):
    """The model off, counting the kinds the servers wait on."""

    def __init__(self) -> None:
        super().__init__(None)
        self.waited: Counter[str] = Counter()

    async def wait(self, kind: str) -> None:
        self.waited[kind] += 1
        await super().wait(kind)


# -- the table ------------------------------------------------------------------------------


def test_the_bundled_table_is_dated_and_sources_every_kind():
    table = load_latency_table()
    assert table.date == "2026-12-01"
    assert set(table.entries) == set(KINDS)
    for kind, entry in table.entries.items():
        assert 0 < entry.p50_ms <= entry.p95_ms, kind
        assert entry.source.strip(), kind
    assert 15 <= table.entries["post_to_connection"].p50_ms <= 40


def test_describe_names_the_date_and_each_median():
    line = AwsLatency(load_latency_table()).describe()
    assert line.startswith("AWS latency model of 2026-12-01: post_to_connection p50 25 ms")
    assert all(kind in line for kind in KINDS) and "\n" not in line
    assert AwsLatency.off().describe() == "AWS latency model: off"


# -- the draws ------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_draws_have_median_p50_and_about_95_percent_below_p95(kind):
    entry = load_latency_table().entries[kind]
    latency = AwsLatency(load_latency_table(), random.Random(20261201))
    draws = [latency.seconds(kind) * 1000 for _ in range(DRAWS)]
    assert statistics.median(draws) == pytest.approx(entry.p50_ms, rel=0.05)
    below_p95 = sum(d <= entry.p95_ms for d in draws) / DRAWS
    assert 0.94 <= below_p95 <= 0.96
    assert max(draws) <= entry.cap_ms == CAP_FACTOR * entry.p95_ms


def test_no_draw_exceeds_the_cap_even_from_a_wide_distribution():
    wide = LatencyEntry(p50_ms=1, p95_ms=1000, source="test")
    table = LatencyTable("2026-12-01", {kind: wide for kind in KINDS})
    latency = AwsLatency(table, random.Random(7))
    draws = [latency.seconds("lambda_cold_start") for _ in range(DRAWS)]
    assert max(draws) == wide.cap_ms / 1000  # the cap binds here, and holds
    assert min(draws) > 0


async def test_off_waits_nothing_and_an_unknown_kind_is_a_key_error():
    off = AwsLatency.off()
    assert not off.enabled and AwsLatency(load_latency_table()).enabled
    assert {off.seconds(kind) for kind in KINDS} == {0.0}
    await off.wait("post_to_connection")
    for latency in (off, AwsLatency(load_latency_table())):
        with pytest.raises(KeyError, match="unknown AWS latency kind 'dynamodb_scan'"):
            latency.seconds("dynamodb_scan")


# -- bad tables -----------------------------------------------------------------------------


def edited_table(tmp_path: Path, old: str, new: str) -> Path:
    """The bundled table with ``old`` (which must occur) replaced by ``new``."""
    text = DEFAULT_LATENCY_TABLE.read_text(encoding="utf-8")
    assert old in text
    path = tmp_path / "aws_latency.toml"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return path


@pytest.mark.parametrize(("old", "new", "message"), [
    ("[dynamodb_write]", "[dynamodb_writes]", "unknown kinds ['dynamodb_writes']"),
    ("p50_ms = 25\np95_ms = 60", "p50_ms = 25\np95_ms = 10",
     "[post_to_connection] p95_ms 10 is below p50_ms 25; make p95_ms at least p50_ms"),
    ("p50_ms = 6", 'p50_ms = "6"', "[dynamodb_read] needs p50_ms and p95_ms as milliseconds"),
    ("p50_ms = 350", "p50_ms = 0", "[lambda_cold_start] p50_ms is 0 but p95_ms is 800"),
    ('date = "2026-12-01"', 'date = "December 2026"', 'needs a top-level date = "YYYY-MM-DD"'),
    ("[lambda_async_delay]", "[lambda_async_delay", "not TOML ("),
])
def test_a_bad_table_gets_one_line_naming_the_file_and_the_fix(tmp_path, old, new, message):
    path = edited_table(tmp_path, old, new)
    with pytest.raises(LatencyTableError) as raised:
        load_latency_table(path)
    assert str(raised.value).startswith(f"{path}: ")
    assert message in str(raised.value) and "\n" not in str(raised.value)


def test_a_table_without_a_kind_is_refused(tmp_path):
    text = DEFAULT_LATENCY_TABLE.read_text(encoding="utf-8")
    path = tmp_path / "aws_latency.toml"
    path.write_text(text.partition("[lambda_invoke_api]")[0], encoding="utf-8")
    with pytest.raises(LatencyTableError, match=r"no \[lambda_invoke_api\] table; add one"):
        load_latency_table(path)


def test_a_table_without_a_source_is_refused(tmp_path):
    path = tmp_path / "aws_latency.toml"
    path.write_text('date = "2026-12-01"\n' + "".join(
        f'[{kind}]\np50_ms = 1\np95_ms = 2\nsource = "{"" if kind == "dynamodb_read" else "x"}"\n'
        for kind in KINDS), encoding="utf-8")
    with pytest.raises(LatencyTableError, match=r"\[dynamodb_read\] needs a source"):
        load_latency_table(path)


@pytest.mark.parametrize("name", ["missing.toml", "."])
def test_an_unreadable_table_is_refused_in_one_line(tmp_path, name):
    path = tmp_path / name
    with pytest.raises(LatencyTableError, match="cannot read the AWS latency table") as raised:
        load_latency_table(path)
    assert "\n" not in str(raised.value)


# -- where the servers wait -----------------------------------------------------------------


@pytest.fixture
async def management():
    """(the WebSocketApi, the ManagementServer's plain-HTTP URL, its recording latency)."""
    api = WebSocketApi(Api("abc123defg", "local", "127.0.0.1:1"), routes=None, runtime=None,
                       limits=ApiLimits(), faults=Faults())
    latency = RecordingLatency()
    server = ManagementServer(api, None, {CREDENTIALS["aws_access_key_id"]:
                                          CREDENTIALS["aws_secret_access_key"]},
                              CONTROL_TOKEN, latency=latency)
    port = await server.start([LOOPBACK], 0)
    try:
        yield api, f"http://{LOOPBACK}:{port}", latency
    finally:
        await server.stop()


async def test_each_connections_call_waits_one_post_to_connection(management):
    api, url, latency = management
    socket = ClosableStandIn()
    connection_id = connected(api, socket)
    client = boto3.client("apigatewaymanagementapi", endpoint_url=f"{url}/local",
                          region_name="us-east-1", **CREDENTIALS)
    await asyncio.to_thread(client.post_to_connection, ConnectionId=connection_id, Data=b"hi")
    assert socket.sent == ["hi"]
    assert latency.waited == {"post_to_connection": 1}
    await asyncio.to_thread(client.get_connection, ConnectionId=connection_id)
    await asyncio.to_thread(client.delete_connection, ConnectionId=connection_id)
    assert latency.waited == {"post_to_connection": 3}


async def test_unsigned_and_control_requests_wait_nothing(management):
    _, url, latency = management
    async with ClientSession() as session:
        async with session.post(f"{url}/local/@connections/abc=") as unsigned:
            assert unsigned.status == 403
        async with session.get(f"{url}/@harness/faults", headers={
                "Authorization": f"Bearer {CONTROL_TOKEN}"}) as control:
            assert control.status == 200
    assert latency.waited == {}


@pytest.fixture
async def dynamodb_proxy(tmp_path):
    """(a dynalite client, a client through the proxy, the proxy's recording latency)."""
    backend = DynamoDB("dynalite")
    info = await backend.start()
    latency = RecordingLatency()
    proxy = DynamoDBProxy(info.endpoint_url, Faults(), key_attributes={"Rooms": "room"},
                          operations_log=tmp_path / OPERATIONS_LOG, latency=latency)
    try:
        proxy_url = await proxy.start()
        yield tuple(boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1",
                                 **CREDENTIALS) for endpoint in (info.endpoint_url, proxy_url)
                    ) + (latency,)
    finally:
        await proxy.stop()
        await backend.stop()


async def test_each_dynamodb_call_waits_once_as_a_read_or_a_write(dynamodb_proxy):
    direct, proxied, latency = dynamodb_proxy
    await asyncio.to_thread(
        direct.create_table, TableName="Rooms", BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "room", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "room", "AttributeType": "S"}])
    # The proxy looks the stored item up with a GetItem of its own: that waits nothing.
    await asyncio.to_thread(proxied.put_item, TableName="Rooms", Item={"room": {"S": "lobby"}})
    assert latency.waited == {"dynamodb_write": 1}
    scanned = await asyncio.to_thread(proxied.scan, TableName="Rooms")
    assert scanned["Items"] == [{"room": {"S": "lobby"}}]
    assert latency.waited == {"dynamodb_write": 1, "dynamodb_read": 1}
