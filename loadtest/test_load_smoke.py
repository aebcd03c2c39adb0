"""An end-to-end load run on the local stack: a master and two worker processes, as
``chat-harness load --processes 2`` starts them. (A single-process run is the one
reports/tests/test_report_e2e.py makes and reports on.)"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from loadtest.measurement import merge_histograms

# A load run: tox runs these files two at a time, after the rest (see load_run in pyproject).
pytestmark = pytest.mark.load_run

PROCESSES = 2
USERS = 20  # a smoke test, sharing 2 cores with the rest of the suite: not a capacity test
# Chat stops settle_s (5 s) before the end: 10 s leave about 20 messages to broadcast.
SMOKE = ["--steps", str(USERS), "--step-hold", "10", "--messages-per-minute", "12",
         "--heartbeat-s", "5", "--processes", str(PROCESSES), "--fail-if", "delivery_ratio<1"]


def test_a_distributed_run_delivers_every_message_and_merges_its_workers(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "chat_harness", "load", "--run-dir", str(tmp_path), *SMOKE],
        capture_output=True, text=True, timeout=300, check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert f"Run directory: {tmp_path}" in result.stdout
    summary = json.loads((tmp_path / "summary.json").read_text())

    assert summary["users_peak"] == USERS
    assert summary["messages_sent"] > 0
    assert summary["delivery_ratio"] == 1 and summary["lost"] == summary["duplicated"] == 0
    assert summary["last_recipient_ms"]["count"] == summary["messages_sent"]
    [step] = summary["steps"]
    assert step["users"] == USERS and step["messages_sent"] == summary["messages_sent"]
    assert step["delivery_ratio"] == 1
    assert all(p["cpu_percent_max"] > 0 for p in summary["generator"]["processes"])

    workers = summary["workers"]
    assert len(workers) == PROCESSES, result.stderr[-3000:]
    assert summary["messages_sent"] == sum(w["messages_sent"] for w in workers)
    assert summary["fanout_ms"]["count"] == sum(w["receipts"] for w in workers)

    for name in ("locust_stats.csv", "locust.html", "emf.jsonl", "dynamodb.jsonl",
                 "invocations.jsonl", "histograms.json"):
        assert (tmp_path / name).exists(), name
    histograms = json.loads((tmp_path / "histograms.json").read_text())
    assert merge_histograms([histograms["fanout"]]).count == summary["fanout_ms"]["count"]
