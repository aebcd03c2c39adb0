"""moto's CloudWatch, for the tests of a run against AWS; the AWS Price List API's answers for
eu-west-1, for the tests of regional prices (moto has no "pricing" service: botocore's Stubber
answers a real client).

moto 5.2 has no percentile statistics: its GetMetricData answers "p50" with no value and
then fails to serialise the answer. The ``cloudwatch`` fixture teaches it nearest-rank
percentiles over the raw values.
"""

import json
import math
from pathlib import Path

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws
from moto.cloudwatch.models import Statistics


@pytest.fixture
def cloudwatch(monkeypatch):
    moto_statistic = Statistics.get_statistics_for_type

    def with_percentiles(self, stat):
        if not stat.startswith("p"):
            return moto_statistic(self, stat)
        values = sorted(self.metric_single_values_list)
        return values[math.ceil(float(stat[1:]) / 100 * len(values)) - 1]

    monkeypatch.setattr(Statistics, "get_statistics_for_type", with_percentiles)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        yield boto3.client("cloudwatch", region_name="us-east-1")


def put_metric(cloudwatch, namespace, metric, dimensions, values, at):
    cloudwatch.put_metric_data(Namespace=namespace, MetricData=[
        {"MetricName": metric, "Value": value, "Timestamp": at,
         "Dimensions": [{"Name": name, "Value": v} for name, v in dimensions.items()]}
        for value in values])


# -- the AWS Price List API, for the tests of regional prices ------------------------------

REGION = "eu-west-1"  # usage types prefixed "EU-", as AWS bills them there
INF = "Inf"


def price_list_entry(service_code: str, family: str, attributes: dict,
                     tiers: list[tuple[str, str, str]], unit: str) -> str:
    """One PriceList entry as GetProducts returns it: a JSON string with the product and its
    OnDemand terms, shaped like the example in botocore's pricing examples-1.json. ``tiers``
    are (beginRange, endRange, USD per unit), in the order AWS happens to list them."""
    sku = "".join(c for c in attributes["usagetype"].upper() if c.isalnum())[:16]
    term = f"{sku}.JRTCKXETXF"
    return json.dumps({
        "product": {"productFamily": family, "sku": sku, "attributes": {
            "servicecode": service_code, "location": "EU (Ireland)", "locationType": "AWS Region",
            "regionCode": REGION, "servicename": service_code, **attributes}},
        "serviceCode": service_code,
        "terms": {"OnDemand": {term: {
            "priceDimensions": {f"{term}.{index}": {
                "unit": unit, "beginRange": begin, "endRange": end, "appliesTo": [],
                "description": f"${usd} per {unit}", "rateCode": f"{term}.{index}",
                "pricePerUnit": {"USD": usd}} for index, (begin, end, usd) in enumerate(tiers)},
            "sku": sku, "effectiveDate": "2026-11-01T00:00:00Z", "offerTermCode": "JRTCKXETXF",
            "termAttributes": {}}}},
        "version": "20261101000000", "publicationDate": "2026-11-01T00:00:00Z"})


def terms(**values) -> list[dict]:
    return [{"Type": "TERM_MATCH", "Field": field, "Value": value}
            for field, value in values.items()]


DDB, LAMBDA, APIGW = "AmazonDynamoDB", "AWSLambda", "AmazonApiGateway"
ON_DEMAND, PROVISIONED = "Amazon DynamoDB PayPerRequest Throughput", "Provisioned IOPS"
STANDARD_STORAGE = "Amazon DynamoDB - Indexed DataStore"
WEBSOCKET_MINUTES = price_list_entry(APIGW, "WebSocket", {"usagetype": "EU-ApiGatewayMinute"},
                                     [("0", INF, "0.0000002850")], "Minutes")
WEBSOCKET_MESSAGES = price_list_entry(
    APIGW, "WebSocket", {"usagetype": "EU-ApiGatewayMessage"},
    [("1000000000", INF, "0.0000009500"), ("0", "1000000000", "0.0000011400")], "Messages")

# (service code, filters after regionCode, pages of PriceList), in reports.price_list.METERS'
# order. The WebSocket family holds both its meters: each query gets both, over two pages.
EU_WEST_1_QUERIES = [
    (DDB, terms(productFamily=ON_DEMAND, group="DDB-ReadUnits"), [[price_list_entry(
        DDB, ON_DEMAND, {"group": "DDB-ReadUnits", "usagetype": "EU-ReadRequestUnits"},
        [("0", INF, "0.0000001415")], "ReadRequestUnits")]]),
    (DDB, terms(productFamily=ON_DEMAND, group="DDB-WriteUnits"), [[price_list_entry(
        DDB, ON_DEMAND, {"group": "DDB-WriteUnits", "usagetype": "EU-WriteRequestUnits"},
        [("0", INF, "0.0000007075")], "WriteRequestUnits")]]),
    (DDB, terms(productFamily=PROVISIONED, group="DDB-ReadUnits"), [[price_list_entry(
        DDB, PROVISIONED, {"group": "DDB-ReadUnits", "usagetype": "EU-ReadCapacityUnit-Hrs"},
        [("18600", INF, "0.0001475000"), ("0", "18600", "0.0000000000")],
        "ReadCapacityUnit-Hrs")]]),
    (DDB, terms(productFamily=PROVISIONED, group="DDB-WriteUnits"), [[price_list_entry(
        DDB, PROVISIONED, {"group": "DDB-WriteUnits", "usagetype": "EU-WriteCapacityUnit-Hrs"},
        [("0", "18600", "0.0000000000"), ("18600", INF, "0.0007370000")],
        "WriteCapacityUnit-Hrs")]]),
    (DDB, terms(productFamily="Database Storage", volumeType=STANDARD_STORAGE), [[
        price_list_entry(DDB, "Database Storage",
                         {"volumeType": STANDARD_STORAGE, "usagetype": "EU-TimedStorage-ByteHrs"},
                         [("0", "25", "0.0000000000"), ("25", INF, "0.2830000000")], "GB-Mo")]]),
    (LAMBDA, terms(productFamily="Serverless", group="AWS-Lambda-Requests"), [[price_list_entry(
        LAMBDA, "Serverless", {"group": "AWS-Lambda-Requests", "usagetype": "EU-Request"},
        [("0", INF, "0.0000002000")], "Requests")]]),
    (LAMBDA, terms(productFamily="Serverless", group="AWS-Lambda-Duration"), [[price_list_entry(
        LAMBDA, "Serverless", {"group": "AWS-Lambda-Duration", "usagetype": "EU-Lambda-GB-Second"},
        [("6000000000", "15000000000", "0.0000150000"), ("0", "6000000000", "0.0000166667"),
         ("15000000000", INF, "0.0000133334")], "Lambda-GB-Second")]]),
    (LAMBDA, terms(productFamily="Serverless", group="AWS-Lambda-Duration-ARM"), [[
        price_list_entry(LAMBDA, "Serverless",
                         {"group": "AWS-Lambda-Duration-ARM", "usagetype": "EU-Lambda-GB-Second-ARM"},
                         [("0", "7500000000", "0.0000133334"),
                          ("7500000000", INF, "0.0000120001")], "Lambda-GB-Second")]]),
    (APIGW, terms(productFamily="WebSocket"), [[WEBSOCKET_MINUTES], [WEBSOCKET_MESSAGES]]),
    (APIGW, terms(productFamily="WebSocket"), [[WEBSOCKET_MINUTES], [WEBSOCKET_MESSAGES]]),
]
# What those products make, in the table's units (per million where the table says so).
EU_WEST_1_PRICES = {
    "dynamodb_usd_per_million_read_request_units": 0.1415,
    "dynamodb_usd_per_million_write_request_units": 0.7075,
    "dynamodb_usd_per_rcu_hour": 0.0001475, "dynamodb_usd_per_wcu_hour": 0.000737,
    "dynamodb_storage_usd_per_gb_month": 0.283, "lambda_usd_per_million_requests": 0.2,
    "lambda_usd_per_gb_second_x86_64": 0.0000166667,
    "lambda_usd_per_gb_second_arm64": 0.0000133334,
    "websocket_usd_per_million_messages": 1.14,
    "websocket_usd_per_million_connection_minutes": 0.285,
}


def pricing_client():
    """A real boto3 "pricing" client, as reports.price_list makes one."""
    return boto3.client("pricing", region_name="us-east-1")


def answer_price_list(stubber: Stubber, queries=EU_WEST_1_QUERIES, region=REGION) -> None:
    """Queue GetProducts' answers to ``queries``, each page checked against the request."""
    for service_code, filters, pages in queries:
        expected = {"ServiceCode": service_code,
                    "Filters": terms(regionCode=region) + filters}
        for number, page in enumerate(pages):
            response = {"FormatVersion": "aws_v1", "PriceList": page}
            if number + 1 < len(pages):
                response["NextToken"] = f"page-{number + 2}"
            stubber.add_response("get_products", response,
                                 {**expected, "NextToken": f"page-{number + 1}"} if number
                                 else expected)


@pytest.fixture
def price_cache(tmp_path, monkeypatch):
    """An empty cache directory of our own (chat-harness caches in $XDG_CACHE_HOME)."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache" / "chat-harness"


# -- synthetic local runs, for the fan-out analysis ----------------------------------------

TABLES = {"active_connections": "ActiveConnections", "session_history": "SessionHistory",
          "message_history": "MessageHistory"}


def a_local_run(metrics=(), invocations=(), *, users=50, aws_latency=None, directory=None,
                operations=()):
    """A local run's RunData with these EMF lines, invocations and DynamoDB operations and
    nothing else measured: two steps up to ``users``, 6 messages per user per minute,
    heartbeats every 30 s."""
    from reports.run_data import RunData

    figures = {"count": 10, "p50": 20.0, "p95": 40.0, "p99": 45.0, "max": 50.0}
    steps = [{"users": n, "starts_at_s": i * 30, "ends_at_s": (i + 1) * 30, "messages_sent": n,
              "delivery_ratio": 1.0, "generator": {"saturated": False},
              "fanout_ms": figures, "last_recipient_ms": figures}
             for i, n in enumerate((users // 2, users))]
    summary = {"users_peak": users, "messages_sent": 100, "deliveries_received": 2000,
               "delivery_ratio": 1.0, "started_at": 1_000.0, "ended_at": 1_060.0,
               "steps": steps, "generator": {"saturated": False},
               "load": {"steps": [users // 2, users], "step_hold_s": 30,
                        "messages_per_minute": 6.0, "schedule": "constant", "heartbeat_s": 30,
                        "processes": 1},
               "stack": {"kind": "local", "region": "us-east-1", "tables": TABLES,
                         "dynamodb_backend": "dynalite", "capacity_fidelity": "size-based",
                         "aws_latency": aws_latency}}
    return RunData(directory or Path("runs/synthetic"), summary, list(operations),
                   list(metrics), list(invocations), {"chat": 100, "heartbeat": 100})


def broadcast_line(recipients, ms, *, route="sendmessage", strategy="threads", request_id=None,
                   delivered=None, batches=None, failed=0):
    """A broadcasting invocation's fan-out line (system/handlers/chat.py ``Fanout.metrics``)."""
    line = {"Route": route, "Recipients": recipients, "Gone": 0, "Failed": failed,
            "FanoutDuration": ms, "requestId": request_id}
    if strategy is not None:
        line["FanoutStrategy"] = strategy
    if strategy == "batched":
        line.update(Delivered=0, Batches=batches if batches is not None else -(-recipients // 100))
    else:
        line["Delivered"] = recipients if delivered is None else delivered
    return line


def batch_line(broadcast_id, recipients, ms, delay_ms, *, route="sendmessage"):
    """One FanoutHandler batch's line: its broadcast's route and id."""
    return {"Route": route, "BatchRecipients": recipients, "Delivered": recipients, "Gone": 0,
            "Failed": 0, "BatchDuration": ms, "BatchDelay": delay_ms,
            "FanoutStrategy": "batched", "BroadcastId": broadcast_id, "requestId": "lambda-id"}


def invocation(function, duration_ms, *, error_type=None, timeout_ms=3000, t=1_010.0):
    """An invocations.jsonl record (system/local/lambda_runtime/logs.py)."""
    return {"t": t, "function": function, "request_id": "r", "duration_ms": duration_ms,
            "memory_mb": 128, "timeout_ms": timeout_ms, "failed": error_type is not None,
            "error_type": error_type}
