"""What every chat handler shares: the tables, the management client, broadcast, metrics.

Real Lambda code: configuration comes from the environment only, clients are
created once per warm container, and nothing here knows whether it runs in AWS
or on the local stack (the local stack points boto3 elsewhere through
``AWS_ENDPOINT_URL_DYNAMODB`` and ``AWS_CA_BUNDLE``, exactly as a user could).

Fixes over the reference app's handlers:
- Scan follows ``LastEvaluatedKey``: one Scan page stops at 1 MB (~30k ids).
- A recipient answering 410 GoneException is deleted from ActiveConnections.
- Fan-out has a strategy (``FANOUT_STRATEGY``): ``threads`` (the default: bounded
  concurrency, ``FANOUT_CONCURRENCY`` threads), ``sequential`` (the reference app's:
  it cannot reach 1,000 recipients within a 3 s timeout in AWS) or ``batched``
  (recipients split into ``FANOUT_BATCH_SIZE`` batches, each posted by the fan-out
  function ``FANOUT_FUNCTION``, invoked asynchronously: AWS's way past one
  invocation's reach).
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
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from system.apigateway_quotas import INTEGRATION_TIMEOUT_SECONDS, MAX_DURATION_SECONDS
from system.dynamodb_capacity import WRITE_OPERATIONS
from system.fanout_strategies import (
    DEFAULT_FANOUT_BATCH_SIZE,
    DEFAULT_FANOUT_CONCURRENCY,
    DEFAULT_FANOUT_STRATEGY,
    FANOUT_STRATEGIES,
)
from system.handlers.frames import presence_frame

ACTIVE_CONNECTIONS_TABLE = os.environ.get("ACTIVE_CONNECTIONS_TABLE", "ActiveConnections")
SESSION_HISTORY_TABLE = os.environ.get("SESSION_HISTORY_TABLE", "SessionHistory")
MESSAGE_HISTORY_TABLE = os.environ.get("MESSAGE_HISTORY_TABLE", "MessageHistory")
FANOUT_CONCURRENCY = int(os.environ.get("FANOUT_CONCURRENCY", DEFAULT_FANOUT_CONCURRENCY))
FANOUT_STRATEGY = os.environ.get("FANOUT_STRATEGY", DEFAULT_FANOUT_STRATEGY)
FANOUT_BATCH_SIZE = int(os.environ.get("FANOUT_BATCH_SIZE", DEFAULT_FANOUT_BATCH_SIZE))
# The fan-out function's name (the stack sets it from the routes file's ``invokes``).
FANOUT_FUNCTION = os.environ.get("FANOUT_FUNCTION", "")
if FANOUT_STRATEGY not in FANOUT_STRATEGIES:
    raise ValueError(f"FANOUT_STRATEGY={FANOUT_STRATEGY!r}: choose one of "
                     f"{', '.join(FANOUT_STRATEGIES)}")
if FANOUT_BATCH_SIZE < 1:
    raise ValueError(f"FANOUT_BATCH_SIZE must be at least 1, got {FANOUT_BATCH_SIZE}")
METRICS_NAMESPACE = os.environ.get("METRICS_NAMESPACE", "ChatHarness")
# Join and leave notices: "on" (the reference app's: each is a broadcast to everyone, so N
# users connecting cost N(N-1)/2 posts), "off", or "coalesced": at most one notice per
# PRESENCE_WINDOW_S seconds, naming everyone who came or went since the last (see
# ``presence_notice``).
PRESENCE_MODES = ("on", "off", "coalesced")
PRESENCE_NOTICES = os.environ.get("PRESENCE_NOTICES", "on")
PRESENCE_WINDOW_S = float(os.environ.get("PRESENCE_WINDOW_S", "2"))
if PRESENCE_NOTICES not in PRESENCE_MODES:
    raise ValueError(f"PRESENCE_NOTICES={PRESENCE_NOTICES!r}: choose one of "
                     f"{', '.join(PRESENCE_MODES)}")
# coalesced: the joins and leaves not told yet, and when the last notice went out, kept in
# one SessionHistory item under a key no connection id can have (ids never hold '#').
PRESENCE_ITEM_KEY = {"connection_id": {"S": "#presence"}}
# The fan-out function telling changes at a window's end stops this long before its
# timeout would stop it.
PRESENCE_FLUSH_MARGIN_S = 0.5
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
# A throttled request is retried by DynamoDB's own policy in botocore (legacy mode: up to
# 10 attempts, pauses of 50 ms doubling, 0.15 s for two throttles): standard mode's pauses
# (up to 1 s, then 2 s) could carry a write throttled twice past a 3 s Lambda timeout, and
# the message would be lost with the invocation.
dynamodb = boto3.client(
    "dynamodb", config=Config(max_pool_connections=FANOUT_CONCURRENCY, retries={"mode": "legacy"})
)
capacity.attach(dynamodb)
_fanout_pool = ThreadPoolExecutor(max_workers=FANOUT_CONCURRENCY, thread_name_prefix="fanout")
_management_clients: dict[str, object] = {}
# The fan-out function is invoked asynchronously (InvocationType=Event): by a batched
# broadcast, and by coalesced notices at a window's end. A call that fails is retried by
# botocore (standard mode), as an accepted event is by Lambda.
lambda_client = (boto3.client("lambda", config=Config(max_pool_connections=FANOUT_CONCURRENCY,
                                                      retries={"mode": "standard"}))
                 if FANOUT_STRATEGY == "batched" or PRESENCE_NOTICES == "coalesced" else None)


def utc_now() -> str:
    """ISO 8601 UTC with milliseconds, e.g. 2026-11-26T10:00:00.123Z."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def connection_id(event: dict) -> str:
    return event["requestContext"]["connectionId"]


def user_name(event: dict) -> str | None:
    """Who $connect's authorizer let in on this connection, if any: its context's
    ``user`` (the chat's JWT authorizer sets it), else its principal."""
    authorizer = event["requestContext"].get("authorizer", {})
    return authorizer.get("user") or authorizer.get("principalId")


def management_endpoint(event: dict) -> str:
    """The @connections endpoint of the API that sent ``event``: https://{domainName}/{stage}."""
    context = event["requestContext"]
    return f"https://{context['domainName']}/{context['stage']}"


def management_client(endpoint: str):
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
    """What one broadcast did, or (``batch_of`` set) one batch of a batched broadcast, for
    the invocation's metrics. A batched broadcast's own line counts what it dispatched
    (``batches``); its batches' lines count the deliveries."""

    strategy: str = FANOUT_STRATEGY
    recipients: int = 0
    delivered: int = 0
    gone: int = 0
    failed: int = 0
    duration_ms: float = 0.0
    batches: int = 0
    batch_of: dict | None = None  # a batch's {"broadcast_id", "delay_ms"}
    errors: list[str] = field(default_factory=list)

    @property
    def reached(self) -> int:
        """The connections the message went to: delivered, or for a batched broadcast
        (whose batches deliver after it returns) handed to its batches."""
        if self.strategy == "batched" and self.batch_of is None:
            return self.recipients - self.failed
        return self.delivered

    def metrics(self) -> dict[str, tuple[float, str]]:
        outcomes = {"Delivered": (self.delivered, "Count"), "Gone": (self.gone, "Count"),
                    "Failed": (self.failed, "Count")}
        if self.batch_of is not None:
            return {"BatchRecipients": (self.recipients, "Count"), **outcomes,
                    "BatchDuration": (round(self.duration_ms, 3), "Milliseconds"),
                    "BatchDelay": (round(self.batch_of["delay_ms"], 3), "Milliseconds")}
        metrics = {"Recipients": (self.recipients, "Count"), **outcomes,
                   "FanoutDuration": (round(self.duration_ms, 3), "Milliseconds")}
        if self.strategy == "batched":
            metrics["Batches"] = (self.batches, "Count")
        return metrics

    def properties(self) -> dict[str, str]:
        if self.batch_of is not None:
            return {"FanoutStrategy": self.strategy, "BroadcastId": self.batch_of["broadcast_id"]}
        return {"FanoutStrategy": self.strategy}


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


def prune(recipient: str) -> None:
    """Delete a connection that answered GoneException, unless it may still be in $connect."""
    cutoff = int((time.time() - PRUNE_GRACE_SECONDS) * 1000)
    try:
        dynamodb.delete_item(
            TableName=ACTIVE_CONNECTIONS_TABLE,
            Key={"connection_id": {"S": recipient}},
            ConditionExpression="attribute_not_exists(connected_at_ms) OR connected_at_ms < :cutoff",
            ExpressionAttributeValues={":cutoff": {"N": str(cutoff)}},
        )
    except dynamodb.exceptions.ConditionalCheckFailedException:
        pass


def encode(payload: dict) -> bytes:
    return json.dumps(payload, ensure_ascii=False).encode()


def deliver(endpoint: str, recipients: Sequence[str], data: bytes, fanout: Fanout) -> Fanout:
    """Post ``data`` to each recipient, one after another (``sequential``) or on the thread
    pool; prune those gone; count the outcomes into ``fanout``."""
    started = time.perf_counter()
    client = management_client(endpoint)

    def post_one(recipient: str) -> str:
        return post(client, recipient, data)

    outcomes = (list(map(post_one, recipients)) if fanout.strategy == "sequential"
                else list(_fanout_pool.map(post_one, recipients)))
    fanout.recipients = len(recipients)
    for recipient, outcome in zip(recipients, outcomes):
        if outcome == "delivered":
            fanout.delivered += 1
        elif outcome == "gone":
            fanout.gone += 1
            prune(recipient)
        else:
            fanout.failed += 1
            fanout.errors.append(outcome)
    fanout.duration_ms = (time.perf_counter() - started) * 1000
    if fanout.errors:
        print(f"fan-out failures ({fanout.failed}): {'; '.join(fanout.errors[:10])}")
    return fanout


def dispatch(event: dict, recipients: list[str], data: bytes, started_ms: float) -> Fanout:
    """Hand the recipients, in batches of FANOUT_BATCH_SIZE, to the fan-out function, one
    asynchronous invocation (InvocationType=Event) per batch, invoked concurrently."""
    if not FANOUT_FUNCTION:
        raise RuntimeError("FANOUT_STRATEGY=batched needs FANOUT_FUNCTION, the fan-out "
                           "function's name (its routes-file entry's invokes sets it)")
    started = time.perf_counter()
    batches = [recipients[i:i + FANOUT_BATCH_SIZE]
               for i in range(0, len(recipients), FANOUT_BATCH_SIZE)]
    common = {"endpoint": management_endpoint(event), "data": data.decode(),
              "route": event["requestContext"]["routeKey"],
              "broadcast_id": event["requestContext"].get("requestId", ""),
              "started_ms": started_ms}

    def invoke(batch: list[str]) -> str | None:
        payload = {**common, "recipients": batch}
        try:
            lambda_client.invoke(FunctionName=FANOUT_FUNCTION, InvocationType="Event",
                                 Payload=json.dumps(payload).encode())
        except ClientError as error:
            return f"batch of {len(batch)}: {error.response['Error'].get('Code')}"
        return None

    fanout = Fanout(recipients=len(recipients), batches=len(batches))
    for batch, error in zip(batches, _fanout_pool.map(invoke, batches)):
        if error is not None:
            fanout.failed += len(batch)
            fanout.errors.append(error)
    fanout.duration_ms = (time.perf_counter() - started) * 1000
    if fanout.errors:
        print(f"fan-out dispatch failures: {'; '.join(fanout.errors[:10])}")
    return fanout


def broadcast(event: dict, payload: dict | bytes, *, exclude: str | None = None) -> Fanout:
    """Post ``payload`` to every active connection but ``exclude``, by FANOUT_STRATEGY."""
    started_ms = time.time() * 1000
    recipients = [row["connection_id"]["S"] for row in active_connections()
                  if row["connection_id"]["S"] != exclude]
    data = payload if isinstance(payload, bytes) else encode(payload)
    if FANOUT_STRATEGY == "batched":
        return dispatch(event, recipients, data, started_ms)
    return deliver(management_endpoint(event), recipients, data, Fanout())


def presence_notice(event: dict, change: str, notice: dict) -> Fanout | None:
    """Tell the others that the event's connection ``change``d ("joined" or "left") by
    PRESENCE_NOTICES: ``notice`` now ("on"), nothing ("off"), or ("coalesced") note the
    change, and if no notice went out in the last PRESENCE_WINDOW_S, take every change
    noted since and tell them all in one ``presence_frame``. A change inside the window
    is told when the window ends, by the fan-out function (``flush_presence``)."""
    me = connection_id(event)
    if PRESENCE_NOTICES == "off":
        return None
    if PRESENCE_NOTICES == "on":
        return broadcast(event, notice, exclude=me)
    dynamodb.update_item(TableName=SESSION_HISTORY_TABLE, Key=PRESENCE_ITEM_KEY,
                         UpdateExpression="ADD #change :me",
                         ExpressionAttributeNames={"#change": change},
                         ExpressionAttributeValues={":me": {"SS": [me]}})
    taken = take_presence_changes()
    if taken is None:
        schedule_presence_flush(event)
        return None
    return broadcast(event, presence_frame(*taken), exclude=me)


def take_presence_changes(*, flushing: bool = False) -> tuple[list[str], list[str]] | None:
    """If no notice went out in the last PRESENCE_WINDOW_S: every change noted since,
    taken and cleared in one conditional UpdateItem (atomically), as (joined, left);
    else None. ``flushing``: the fan-out function's take, which also clears its mark."""
    now_ms = int(time.time() * 1000)
    try:
        noted = dynamodb.update_item(
            TableName=SESSION_HISTORY_TABLE, Key=PRESENCE_ITEM_KEY,
            UpdateExpression="SET told_at_ms = :now REMOVE #joined, #left"
                             + (", flush_pending" if flushing else ""),
            ConditionExpression="attribute_not_exists(told_at_ms) OR told_at_ms < :since",
            ExpressionAttributeNames={"#joined": "joined", "#left": "left"},
            ExpressionAttributeValues={":now": {"N": str(now_ms)},
                                       ":since": {"N": str(now_ms - PRESENCE_WINDOW_S * 1000)}},
            ReturnValues="ALL_OLD")["Attributes"]
    except dynamodb.exceptions.ConditionalCheckFailedException:
        return None
    joined, left = (sorted(noted.get(key, {}).get("SS", [])) for key in ("joined", "left"))
    return joined, left


def schedule_presence_flush(event: dict) -> None:
    """Have the fan-out function tell the changes noted inside the window when it ends
    (Lambda has no timer): one invocation at a time, marked by the presence item's
    ``flush_pending``. Without a fan-out function, the next notice tells them."""
    if not FANOUT_FUNCTION:
        return
    try:
        dynamodb.update_item(TableName=SESSION_HISTORY_TABLE, Key=PRESENCE_ITEM_KEY,
                             UpdateExpression="SET flush_pending = :yes",
                             ConditionExpression="attribute_not_exists(flush_pending)",
                             ExpressionAttributeValues={":yes": {"BOOL": True}})
    except dynamodb.exceptions.ConditionalCheckFailedException:
        return  # one is on its way: it tells this change too
    flush = {"presence_flush": True, "endpoint": management_endpoint(event),
             "route": event["requestContext"]["routeKey"]}
    try:
        lambda_client.invoke(FunctionName=FANOUT_FUNCTION, InvocationType="Event",
                             Payload=json.dumps(flush).encode())
    except ClientError as error:
        print(f"presence flush not scheduled: {error.response['Error'].get('Code')}")
        clear_presence_flush()


def clear_presence_flush(*, unless_pending: bool = False) -> bool:
    """Remove the presence item's ``flush_pending`` (``unless_pending``: only if no change
    is noted); False if a change was."""
    condition = ({"ConditionExpression": "attribute_not_exists(joined) AND "
                                         "attribute_not_exists(#left)",
                  "ExpressionAttributeNames": {"#left": "left"}} if unless_pending else {})
    try:
        dynamodb.update_item(TableName=SESSION_HISTORY_TABLE, Key=PRESENCE_ITEM_KEY,
                             UpdateExpression="REMOVE flush_pending", **condition)
    except dynamodb.exceptions.ConditionalCheckFailedException:
        return False
    return True


def flush_presence(flush: dict, seconds_left: Callable[[], float]) -> Fanout | None:
    """The fan-out function's part of coalesced notices: wait until the window of the last
    notice ends, then take the changes noted and tell them to everyone (the changed
    connections too: nobody is excluded). If a notice went out meanwhile (taking what was
    noted), wait for its window in turn; stop when nothing is left noted, or when the
    window ends later than this invocation may last (``seconds_left()``: the next notice
    then tells them)."""
    while True:
        item = dynamodb.get_item(TableName=SESSION_HISTORY_TABLE, Key=PRESENCE_ITEM_KEY,
                                 ConsistentRead=True).get("Item", {})
        if "joined" not in item and "left" not in item:
            if clear_presence_flush(unless_pending=True):
                return None
            continue  # a change was noted meanwhile
        told_at_s = int(item.get("told_at_ms", {"N": "0"})["N"]) / 1000
        wait_s = told_at_s + PRESENCE_WINDOW_S - time.time()
        if wait_s > seconds_left() - PRESENCE_FLUSH_MARGIN_S:
            clear_presence_flush()
            return None
        time.sleep(max(0.0, wait_s))
        taken = take_presence_changes(flushing=True)
        if taken is None:
            continue  # a notice went out meanwhile: wait for its window
        if taken == ([], []):
            return None
        recipients = [row["connection_id"]["S"] for row in active_connections()]
        fanout = Fanout(strategy="threads" if FANOUT_STRATEGY == "batched" else FANOUT_STRATEGY)
        return deliver(flush["endpoint"], recipients, encode(presence_frame(*taken)), fanout)


def reply(event: dict, payload: dict) -> None:
    """Post ``payload`` to the connection that sent ``event`` only."""
    management_client(management_endpoint(event)).post_to_connection(
        ConnectionId=connection_id(event), Data=encode(payload))


def emit_metrics(route: str, request_id: str | None, fanout: Fanout | None = None) -> None:
    """Print this invocation's metrics as CloudWatch Embedded Metric Format lines.

    One line per table (ConsumedRCU/ConsumedWCU, dimensions Route and Table) and one
    for the fan-out (``Fanout.metrics``: Recipients ... FanoutDuration, or a batch's
    BatchRecipients ... BatchDelay; dimension Route, the batch's that of its broadcast).
    Written by hand rather than with aws-embedded-metrics so the function zip needs
    nothing beyond the Lambda runtime's boto3.
    """
    timestamp = int(time.time() * 1000)

    def line(dimensions: dict, metrics: dict[str, tuple[float, str]],
             properties: dict | None = None) -> str:
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
            **(properties or {}),
            "requestId": request_id,
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
        print(line({"Route": route}, fanout.metrics(), fanout.properties()))
    capacity.reset()


def metered(handler, route_of=lambda event: event["requestContext"]["routeKey"],
            request_id_of=lambda event, context: event["requestContext"].get("requestId")):
    """Wrap a handler so every invocation ends with its EMF lines.

    The handler returns ``(response, fanout_or_None)``; the wrapper returns the
    response to its caller. ``route_of`` and ``request_id_of`` say where an event
    that is not API Gateway's (the fan-out function's) keeps them.
    """

    def lambda_handler(event: dict, context) -> dict:
        capacity.reset()
        fanout = None
        try:
            response, fanout = handler(event, context)
            return response
        finally:
            emit_metrics(route_of(event), request_id_of(event, context), fanout)

    lambda_handler.__doc__ = handler.__doc__
    return lambda_handler
