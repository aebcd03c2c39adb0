"""A real load run on the local stack, its capacity report, and the verify replays.

``UPDATE_SCREENSHOTS=1`` also writes the top of the report to docs/report.png (the README
shows it).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from matplotlib import image

from reports.run_data import read_json_lines
from reports.snapshot import find_browser, snapshot
from reports.verify import capacities
from system.tests.machine_tools import needs_tool

# A load run: tox runs these files two at a time, after the rest (see load_run in pyproject).
pytestmark = pytest.mark.load_run

SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "report.png"
SCREENSHOT_ROWS = 1300
LOAD = ["--steps", "5,10", "--step-hold", "6", "--messages-per-minute", "60",
        "--heartbeat-s", "5", "--fanout", "threads"]  # the default, named: replays name it too


def chat_harness(*arguments: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "chat_harness", *arguments], capture_output=True,
                          text=True, timeout=timeout, check=False)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("run")
    result = chat_harness("load", "--run-dir", str(directory), *LOAD)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "Report: " in result.stdout, result.stdout[-2000:] + result.stderr[-2000:]
    return directory


def test_the_load_run_ends_with_its_report(run_dir):
    for name in ("capacity.json", "report.html", "report.md", "dynamodb.jsonl",
                 "invocations.jsonl"):
        assert (run_dir / name).stat().st_size > 0, name
    html = (run_dir / "report.html").read_text()
    assert html.count("<svg") == 3 and "<script" not in html and "http://" not in html.split(
        "<svg")[0]  # self-contained: plots inline, nothing fetched


def test_the_report_agrees_with_the_run_summary(run_dir):
    summary = json.loads((run_dir / "summary.json").read_text())
    document = json.loads((run_dir / "capacity.json").read_text())
    tables = summary["stack"]["tables"]
    assert document["run"]["messages_sent"] == summary["messages_sent"]
    assert document["run"]["delivery_ratio"] == summary["delivery_ratio"] == 1
    assert [s["users"] for s in document["by_users"]] == [5, 10]
    assert document["by_users"][1]["last_recipient_ms"] == summary["steps"][1]["last_recipient_ms"]
    # one PutItem per chat message, one $connect per user
    stored = document["per_invocation"]["sendmessage"][tables["message_history"]]
    assert stored["measured_write"]["count"] == summary["messages_sent"]
    connects = document["per_invocation"]["$connect"][tables["session_history"]]
    assert connects["measured_write"]["count"] == summary["users_peak"]
    assert document["run_usage"]["lambda"]["ConnectHandler"]["count"] == summary["users_peak"]
    assert document["run_usage"]["apigateway_messages"]["outbound"] >= summary[
        "deliveries_received"]
    assert document["throttled"] == 0


def test_storage_grows_by_each_stored_message_and_session(run_dir):
    """Each chat message keeps its MessageHistory item and its 100 bytes of overhead;
    ActiveConnections frees what it takes, so it gains next to nothing."""
    document = json.loads((run_dir / "capacity.json").read_text())
    tables = document["tables"]
    operations = read_json_lines(run_dir / "dynamodb.jsonl")
    stored = [op["bytes"] + 100 for op in operations
              if op["op"] == "PutItem" and op["tables"] == [tables["message_history"]]]
    per_message = document["scaling"]["route_costs"]["sendmessage"]["stored_bytes_per_invocation"]
    assert per_message[tables["message_history"]] == pytest.approx(sum(stored) / len(stored))
    gained = document["costs"]["dynamodb_storage"]["gb_per_month"]
    assert gained[tables["message_history"]] > 0 and gained[tables["session_history"]] > 0
    assert gained[tables["active_connections"]] < gained[tables["message_history"]] / 100
    assert "DynamoDB storage in month 12" in (run_dir / "report.html").read_text()


def test_dynalite_agrees_with_the_model_except_its_known_quirk(run_dir):
    """ASCII chat traffic: every figure dynalite reports follows DynamoDB's rules, except that
    it charges nothing for a Scan page that finds no item (the first $connect's)."""
    cross_check = json.loads((run_dir / "capacity.json").read_text())["cross_check"]
    assert cross_check["backend"] == "dynalite" and cross_check["checked"] > 100
    for operation, found in cross_check["by_operation"].items():
        assert operation.startswith("Scan "), operation
        assert all(e["bytes"] == 0 and e["measured"]["read"] == 0 for e in found["examples"])


def test_the_broadcast_scan_scales_with_connections(run_dir):
    scan = json.loads((run_dir / "capacity.json").read_text())["scaling"]["scan"]
    assert scan["bytes_fit"]["r2"] > 0.99
    assert 40 < scan["row_bytes"] < 200  # connection_id, connected_at_ms, expires_at


@needs_tool("chromium", find=find_browser)
def test_the_report_renders_in_headless_chromium(run_dir):
    png = snapshot(run_dir / "report.html", run_dir / "report.png")
    pixels = image.imread(png)
    assert pixels.shape[1] == 1200
    assert pixels[:, :, :3].std() > 0.05  # text and plots, not a blank page
    if os.environ.get("UPDATE_SCREENSHOTS"):  # its top: the recommendation, costs, limits
        image.imsave(SCREENSHOT, pixels[:SCREENSHOT_ROWS])


def test_verify_replays_at_the_recommendation_and_at_half_and_counts_what_was_throttled(
        run_dir):
    """What verify does, whatever the machine's speed: each replay on a stack set up as the
    run's, its tables governed at the recommendation (then half of it), its throttled
    requests counted from the replay's own log, and the verdict (exit code, last line)
    following the count. Whether the recommendation holds and half of it throttles is a
    measurement: benchmarks/verify_recommendation.py prints it."""
    result = chat_harness("verify", str(run_dir), timeout=600)
    assert result.returncode in (0, 1), result.stdout[-3000:] + result.stderr[-3000:]
    verdict = json.loads((run_dir / "verify.json").read_text())
    recommendation = json.loads((run_dir / "capacity.json").read_text())["recommendation"]
    run_stack = json.loads((run_dir / "summary.json").read_text())["stack"]
    assert run_stack["fanout"] == "threads"
    for key, replay, scale in (("at_recommendation", "verify-recommended", 1.0),
                               ("at_half", "verify-half", 0.5)):
        assert verdict[key]["provisioned"] == capacities(recommendation, scale), key
        operations = read_json_lines(run_dir / replay / "dynamodb.jsonl")
        throttled = [op for op in operations if op.get("throttled") == "provisioned capacity"]
        assert verdict[key]["throttled_total"] == len(throttled), key
        replay_stack = json.loads((run_dir / replay / "summary.json").read_text())["stack"]
        for name in ("dynamodb_backend", "fanout", "aws_latency", "authorizer"):
            assert replay_stack[name] == run_stack[name], (replay, name)
    held = verdict["at_recommendation"]["throttled_total"] == 0
    assert result.returncode == (0 if held else 1)
    assert (f"At the recommendation: {verdict['at_recommendation']['throttled_total']} "
            f"throttled requests ({'holds' if held else 'DOES NOT HOLD'})") in result.stdout
