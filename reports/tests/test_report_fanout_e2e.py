"""A sequential fan-out under the AWS latency model, measured on the local stack, and the
report's verdict at 1,000 users: what AWS would do, predicted from a 10-user run."""

from __future__ import annotations

import json

import pytest

from reports.tests.test_report_e2e import chat_harness

# A load run: tox runs these files two at a time, after the rest (see load_run in pyproject).
pytestmark = pytest.mark.load_run

# From 4 to 16 users: a range of recipients wide enough for a fit to be judged good. The
# model's waits (about 25 ms a post, one post after another) make the time to the last
# recipient a line in the recipients whatever else the machine runs; at one message a
# user a second, 10 s steps give 40 and 80 broadcasts (chat stops 5 s before the end).
LOAD = ["--steps", "4,16", "--step-hold", "10", "--messages-per-minute", "60",
        "--heartbeat-s", "5"]


@pytest.fixture(scope="module")
def sequential_run(tmp_path_factory):
    directory = tmp_path_factory.mktemp("sequential")
    result = chat_harness("load", "--run-dir", str(directory), "--fanout", "sequential",
                          "--aws-latency", *LOAD)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = chat_harness("report", str(directory), "--users", "1000")
    assert report.returncode == 0, report.stdout[-3000:] + report.stderr[-3000:]
    return directory


def test_the_report_knows_the_strategy_and_the_latency_model(sequential_run):
    section = json.loads((sequential_run / "capacity.json").read_text())["fanout"]
    table = json.loads((sequential_run / "summary.json").read_text())["stack"]["aws_latency"]
    assert section["strategy"] == "sequential"
    assert section["aws_latency"] == table is not None


def test_sequential_at_1000_recipients_passes_the_lambda_timeout_and_is_flagged(sequential_run):
    """Each post waits the model's post_to_connection (about 25 ms): a straight line in the
    recipients, fitted well, which crosses 3 s long before 1,000."""
    section = json.loads((sequential_run / "capacity.json").read_text())["fanout"]
    last = section["last_recipient"]
    assert not last["refused"], last
    assert last["predicted_ms"] > section["timeout_ms"] == 3000
    assert section["break_point"]["users"] < 1000
    [flag] = [f for f in section["flags"] if f.startswith("sequential fan-out to 1,000 recipients")]
    assert "passes the 3 s Lambda timeout" in flag
    for name in ("report.md", "report.html"):
        assert "passes the 3 s Lambda timeout" in (sequential_run / name).read_text(), name
