"""The report of a run against AWS: consumption from CloudWatch (moto's, see conftest.py),
priced in the run's region from the AWS Price List API (botocore's Stubber, see conftest.py)."""

import json
import math
from datetime import UTC, date, datetime, timedelta

import boto3
import pytest
from botocore.stub import Stubber

from reports.report import build, print_recommendation, write
from reports.tests.conftest import REGION, answer_price_list, pricing_client, put_metric

STARTED = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=20)
TABLES = {"active_connections": "ActiveConnections", "session_history": "SessionHistory",
          "message_history": "MessageHistory"}
USERS = 100


def a_run_directory(tmp_path):
    """What 'chat-harness load --target aws-stack.json' leaves: a summary, no local logs."""
    step = {"users": USERS, "starts_at_s": 0, "ends_at_s": 120, "messages_sent": 200,
            "delivery_ratio": 1.0, "generator": {"saturated": False},
            **{k: {"count": 200, "p50": 80.0, "p95": 150.0, "p99": 170.0, "max": 200.0}
               for k in ("fanout_ms", "last_recipient_ms")}}
    summary = {"users_peak": USERS, "messages_sent": 200, "deliveries_received": 20000,
               "delivery_ratio": 1.0, "started_at": STARTED.timestamp(),
               "ended_at": STARTED.timestamp() + 120, "steps": [step],
               "generator": {"saturated": False},
               "load": {"steps": [USERS], "step_hold_s": 120, "messages_per_minute": 1.0,
                        "schedule": "constant", "heartbeat_s": 30, "processes": 1},
               "stack": {"kind": "aws", "region": REGION, "tables": TABLES,
                         "dynamodb_backend": None, "capacity_fidelity": None}}
    (tmp_path / "summary.json").write_text(json.dumps(summary))
    return tmp_path


def put_consumption(cloudwatch):
    """Two minutes of 100 messages each: a 2-RCU Scan and a 1-WCU PutItem per message."""
    for minute in range(2):
        at = STARTED + timedelta(minutes=minute, seconds=30)
        put_metric(cloudwatch, "AWS/DynamoDB", "ConsumedReadCapacityUnits",
                   {"TableName": "ActiveConnections"}, [200.0], at)
        put_metric(cloudwatch, "AWS/DynamoDB", "ConsumedWriteCapacityUnits",
                   {"TableName": "MessageHistory"}, [100.0], at)
    at = STARTED + timedelta(minutes=1)
    route = {"Route": "sendmessage"}
    put_metric(cloudwatch, "ChatHarness", "ConsumedRCU",
               {**route, "Table": "ActiveConnections"}, [2.0] * 200, at)
    put_metric(cloudwatch, "ChatHarness", "ConsumedWCU",
               {**route, "Table": "MessageHistory"}, [1.0] * 200, at)
    put_metric(cloudwatch, "ChatHarness", "ConsumedRCU",
               {**route, "Table": "MessageHistory"}, [0.0] * 200, at)
    put_metric(cloudwatch, "ChatHarness", "Recipients", route, [USERS] * 200, at)
    put_metric(cloudwatch, "ChatHarness", "FanoutDuration", route, [250.0] * 200, at)


def test_a_run_on_aws_is_sized_from_cloudwatch_and_priced_in_its_region(cloudwatch, price_cache,
                                                                          tmp_path, capsys):
    run_dir = a_run_directory(tmp_path)
    put_consumption(boto3.client("cloudwatch", region_name=REGION))
    pricing, today = pricing_client(), date.today()
    with Stubber(pricing) as stubber:
        answer_price_list(stubber)
        document = build(run_dir, pricing=pricing)
    assert json.loads((run_dir / "cloudwatch.json").read_text())["source"] == "cloudwatch"
    active = document["per_second"]["ActiveConnections"]
    assert active["read_peak"] == pytest.approx(200 / 60)  # per-minute averages
    assert active["read_required"] == pytest.approx(200 / 60, rel=0.02)
    assert document["per_invocation"]["sendmessage"]["ActiveConnections"][
        "measured_read"]["p50"] == 2.0
    assert document["cross_check"]["backend"] == "AWS"
    # 2 RCU per Scan of 100 rows: at most 4096 * 4 / 100 bytes per row
    assert document["scaling"]["scan"]["row_bytes"] == 4 * 4096 / USERS
    rates = document["recommendation"]["tables"]
    assert rates["ActiveConnections"]["read"]["mean_per_s"] == pytest.approx(USERS / 60 * 2.0)
    assert rates["MessageHistory"]["write"]["mean_per_s"] == pytest.approx(USERS / 60 * 1.0)
    assert rates["ActiveConnections"]["read"]["provisioned"] == math.ceil(
        rates["ActiveConnections"]["read"]["peak_per_s"] / 0.7)
    prices = document["costs"]["prices"]
    assert (prices["region"], prices["source"], prices["fallback"]) == (
        REGION, "the AWS Price List API", None)
    assert prices["as_of"] >= today
    # the fan-out: no strategy or per-message points in CloudWatch, so no fit; priced from
    # the median broadcast (250 ms to 100 recipients: 4 rounds of 32 posts, taken as threads)
    section = document["fanout"]
    assert section["strategy_source"].startswith("not known: CloudWatch's metrics do not carry")
    assert section["last_recipient"]["refused"].startswith("CloudWatch keeps whole-run")
    assert section["break_point"]["users"] is None and section["timeouts"] is None
    assert section["lambda_cost"]["post_ms"] == 250 / 4
    paths = write(run_dir, document)
    assert all(path.stat().st_size > 0 for path in paths)
    cited = f"eu-west-1 list prices from the AWS Price List API as of {prices['as_of']}"
    assert cited in (run_dir / "report.md").read_text()
    assert cited in (run_dir / "report.html").read_text()
    print_recommendation(document)
    out, err = capsys.readouterr()
    assert f"({cited})" in out and err == ""


def test_a_run_on_aws_its_region_cannot_price_says_so(cloudwatch, price_cache, tmp_path, capsys):
    run_dir = a_run_directory(tmp_path)
    pricing = pricing_client()
    with Stubber(pricing) as stubber:
        stubber.add_client_error("get_products", "AccessDeniedException",
                                 "User: arn:aws:iam::123456789012:user/ci is not authorized to "
                                 "perform: pricing:GetProducts")
        document = build(run_dir, pricing=pricing)
    fallback = document["costs"]["prices"]["fallback"]
    assert fallback.startswith("eu-west-1 not priced from the AWS Price List API: access denied "
                               "to pricing:GetProducts (User: arn:aws:iam::123456789012:user/ci")
    assert fallback.endswith("priced from the shipped price table, us-east-1 list prices as of "
                             f"{document['costs']['prices']['as_of']}")
    print_recommendation(json.loads(json.dumps(document, default=str)))  # as capacity.json
    assert capsys.readouterr().err == f"warning: {fallback}\n"
    write(run_dir, document)
    assert f"**Prices:** {fallback}." in (run_dir / "report.md").read_text()
    assert f'<p class="warn">Prices: {fallback}.</p>' in (run_dir / "report.html").read_text()
    assert "us-east-1 list prices from the shipped price table as of" in (
        run_dir / "report.md").read_text()
