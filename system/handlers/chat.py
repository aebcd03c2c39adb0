"""What every chat handler shares: the tables, the management client, broadcast, metrics.

Real Lambda code: configuration comes from the environment only, clients are
created once per warm container, and nothing here knows whether it runs in AWS
or on the local stack (the local stack points boto3 elsewhere through
``AWS_ENDPOINT_URL_DYNAMODB`` and ``AWS_CA_BUNDLE``, exactly as a user could).

Fixes over the reference app's handlers:
- Scan follows ``LastEvaluatedKey``: one Scan page stops at 1 MB (~30k ids).
- A recipient answering 410 GoneException is deleted from ActiveConnections.
- Fan-out is concurrent and bounded (``FANOUT_CONCURRENCY`` threads): sequential
  ``post_to_connection`` cannot reach 1,000 recipients within a 3 s timeout.
- Every DynamoDB call asks ``ReturnConsumedCapacity=TOTAL`` and each invocation
  prints CloudWatch Embedded Metric Format lines, so the same telemetry reaches
  CloudWatch in AWS and the capacity report locally.
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from system.apigateway_quotas import INTEGRATION_TIMEOUT_SECONDS, MAX_DURATION_SECONDS
from system.dynamodb_capacity import WRITE_OPERATIONS

ACTIVE_CONNECTIONS_TABLE = os.environ.get("ACTIVE_CONNECTIONS_TABLE", "ActiveConnections")
SESSION_HISTORY_TABLE = os.environ.get("SESSION_HISTORY_TABLE", "SessionHistory")
MESSAGE_HISTORY_TABLE = os.environ.get("MESSAGE_HISTORY_TABLE", "MessageHistory")
FANOUT_CONCURRENCY = int(os.environ.get("FANOUT_CONCURRENCY", "32"))
METRICS_NAMESPACE = os.environ.get("METRICS_NAMESPACE", "ChatHarness")
# Join and leave notices ("on", the reference app's behaviour, or "off"): each is a
# broadcast to everyone, so N users connecting cost N(N-1)/2 posts.
PRESENCE_NOTICES = os.environ.get("PRESENCE_NOTICES", "on") != "off"
# API Gateway's maximum connection duration is 2 hours: a row older than that
# belongs to a connection whose $disconnect was lost, and TTL removes it.
CONNECTION_TTL_SECONDS = MAX_DURATION_SECONDS + 300
# A connection's row is written during $connect, but API Gateway answers 410 for it
# until $connect returns, which may take up to the 29 s integration timeout, however
# busy the chat is. A row is stamped with API Gateway's connectedAt (the handshake's
# start), and one younger than this is kept on GoneException: after it, $connect has
# returned (410 means gone) or timed out (the connection never opened).
PRUNE_GRACE_SECONDS = INTEGRATION_TIMEOUT_SECONDS + 1

# A 429 (LimitExceededException) is a burst of throttling: tried again after pauses of
# 25-50, 50-100, 100-200 and 200-400 ms (exponential backoff with jitter, at most 0.75 s
# in all, inside a 3 s Lambda timeout).
POST_ATTEMPTS = 5
RETRY_PAUSE_S = 0.025


class CapacityMeter:
    """Sums DynamoDB ConsumedCapacity per table, read and write, for one invocation.

    Hooked into botocore's event system so that every call on the shared client
    asks ``ReturnConsumedCapacity=TOTAL`` and is counted, whoever makes it.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.read: dict[str, float] = defaultdict(float)
            self.write: dict[str, float] = defaultdict(float)

    def ask_for_capacity(self, params: dict, model, **_) -> None:
        if "ReturnConsumedCapacity" in model.input_shape.members:
            params.setdefault("ReturnConsumedCapacity", "TOTAL")

    def record(self, parsed: dict, model, **_) -> None:
        consumed = parsed.get("ConsumedCapacity")
        if consumed is None:
            return
        totals = self.write if model.name in WRITE_OPERATIONS else self.read
        with self._lock:
            for entry in consumed if isinstance(consumed, list) else [consumed]:
                totals[entry["TableName"]] += float(entry.get("CapacityUnits", 0.0))

    def attach(self, client) -> None:
        client.meta.events.register("provide-client-params.dynamodb.*", self.ask_for_capacity)
        client.meta.events.register("after-call.dynamodb.*", self.record)


capacity = CapacityMeter()
dynamodb = boto3.client(
    "dynamodb", config=Config(max_pool_connections=FANOUT_CONCURRENCY, retries={"mode": "standard"})
)
capacity.attach(dynamodb)
_fanout_pool = ThreadPoolExecutor(max_workers=FANOUT_CONCURRENCY, thread_name_prefix="fanout")
_management_clients: dict[str, object] = {}


def utc_now() -> str:
    """ISO 8601 UTC with milliseconds, e.g. 2026-11-26T10:00:00.123Z."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def connection_id(event: dict) -> str:
    return event["requestContext"]["connectionId"]


def management_client(event: dict):
    """The @connections client for the API that sent ``event``: https://{domainName}/{stage}."""
    context = event["requestContext"]
    endpoint = f"https://{context['domainName']}/{context['stage']}"
    client = _management_clients.get(endpoint)
    if client is None:
        client = boto3.client(
            "apigatewaymanagementapi",
            endpoint_url=endpoint,
            config=Config(
                max_pool_connections=FANOUT_CONCURRENCY,
                retries={"mode": "standard", "max_attempts": 1},  # post() retries 429s
            ),
        )
        _management_clients[endpoint] = client
    return client


def active_connections() -> list[dict]:
    """Every ActiveConnections row, following LastEvaluatedKey across 1 MB pages."""
    rows: list[dict] = []
    kwargs: dict = {"TableName": ACTIVE_CONNECTIONS_TABLE}
    while True:
        page = dynamodb.scan(**kwargs)
        rows.extend(page.get("Items", []))
        if "LastEvaluatedKey" not in page:
            return rows
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


@dataclass
class Fanout:
    """What one broadcast did, for the invocation's metrics."""

    recipients: int = 0
    delivered: int = 0
    gone: int = 0
    failed: int = 0
    duration_ms: float = 0.0
    errors: list[str] = field(default_factory=list)


def post(client, recipient: str, data: bytes) -> str:
    """Send ``data`` to one connection: 'delivered', 'gone' or an error text.

    A 429 (LimitExceededException) is retried here with short pauses, not by botocore,
    whose backoff (up to 1 s, then 2 s) would carry a fan-out past a 3 s Lambda timeout
    and lose the invocation's metrics with it.
    """
    for attempt in range(1, POST_ATTEMPTS + 1):
        try:
            client.post_to_connection(ConnectionId=recipient, Data=data)
            return "delivered"
        except client.exceptions.GoneException:
            return "gone"
        except client.exceptions.LimitExceededException:
            if attempt < POST_ATTEMPTS:
                pause = RETRY_PAUSE_S * 2**attempt
                time.sleep(random.uniform(pause / 2, pause))
        except ClientError as error:
            return f"{recipient}: {error.response['Error'].get('Code')}"
    return f"{recipient}: LimitExceededException after {POST_ATTEMPTS} attempts"


def prune(row: dict) -> None:
    """Delete a connection that answered GoneException, unless it may still be in $connect."""
    cutoff = int((time.time() - PRUNE_GRACE_SECONDS) * 1000)
    try:
        dynamodb.delete_item(
            TableName=ACTIVE_CONNECTIONS_TABLE,
            Key={"connection_id": row["connection_id"]},
            ConditionExpression="attribute_not_exists(connected_at_ms) OR connected_at_ms < :cutoff",
            ExpressionAttributeValues={":cutoff": {"N": str(cutoff)}},
        )
    except dynamodb.exceptions.ConditionalCheckFailedException:
        pass


def encode(payload: dict) -> bytes:
    return json.dumps(payload, ensure_ascii=False).encode()


def broadcast(event: dict, payload: dict | bytes, *, exclude: str | None = None) -> Fanout:
    """Post ``payload`` to every active connection but ``exclude``, concurrently."""
    started = time.perf_counter()
    rows = [r for r in active_connections() if r["connection_id"]["S"] != exclude]
    client = management_client(event)
    data = payload if isinstance(payload, bytes) else encode(payload)
    outcomes = list(
        _fanout_pool.map(lambda row: post(client, row["connection_id"]["S"], data), rows)
    )
    fanout = Fanout(recipients=len(rows))
    for row, outcome in zip(rows, outcomes):
        if outcome == "delivered":
            fanout.delivered += 1
        elif outcome == "gone":
            fanout.gone += 1
            prune(row)
        else:
            fanout.failed += 1
            fanout.errors.append(outcome)
    fanout.duration_ms = (time.perf_counter() - started) * 1000
    if fanout.errors:
        print(f"fan-out failures ({fanout.failed}): {'; '.join(fanout.errors[:10])}")
    return fanout


def reply(event: dict, payload: dict) -> None:
    """Post ``payload`` to the connection that sent ``event`` only."""
    management_client(event).post_to_connection(ConnectionId=connection_id(event),
                                                 Data=encode(payload))


def emit_metrics(event: dict, fanout: Fanout | None = None) -> None:
    """Print this invocation's metrics as CloudWatch Embedded Metric Format lines.

    One line per table (ConsumedRCU/ConsumedWCU, dimensions Route and Table) and
    one for the fan-out (Recipients, Delivered, Gone, Failed, FanoutDuration).
    Written by hand rather than with aws-embedded-metrics so the function zip
    needs nothing beyond the Lambda runtime's boto3.
    """
    route = event["requestContext"]["routeKey"]
    timestamp = int(time.time() * 1000)

    def line(dimensions: dict, metrics: dict[str, tuple[float, str]]) -> str:
        document = {
            "_aws": {
                "Timestamp": timestamp,
                "CloudWatchMetrics": [
                    {
                        "Namespace": METRICS_NAMESPACE,
                        "Dimensions": [list(dimensions)],
                        "Metrics": [{"Name": n, "Unit": u} for n, (_, u) in metrics.items()],
                    }
                ],
            },
            **dimensions,
            **{name: value for name, (value, _) in metrics.items()},
            "requestId": event["requestContext"].get("requestId"),
        }
        return json.dumps(document)

    for table in sorted(set(capacity.read) | set(capacity.write)):
        print(
            line(
                {"Route": route, "Table": table},
                {
                    "ConsumedRCU": (capacity.read.get(table, 0.0), "Count"),
                    "ConsumedWCU": (capacity.write.get(table, 0.0), "Count"),
                },
            )
        )
    if fanout is not None:
        print(
            line(
                {"Route": route},
                {
                    "Recipients": (fanout.recipients, "Count"),
                    "Delivered": (fanout.delivered, "Count"),
                    "Gone": (fanout.gone, "Count"),
                    "Failed": (fanout.failed, "Count"),
                    "FanoutDuration": (round(fanout.duration_ms, 3), "Milliseconds"),
                },
            )
        )
    capacity.reset()


def metered(handler):
    """Wrap a route handler so every invocation ends with its EMF lines.

    The handler returns ``(response, fanout_or_None)``; the wrapper returns the
    response to API Gateway.
    """

    def lambda_handler(event: dict, context) -> dict:
        capacity.reset()
        fanout = None
        try:
            response, fanout = handler(event, context)
            return response
        finally:
            emit_metrics(event, fanout)

    lambda_handler.__doc__ = handler.__doc__
    return lambda_handler
