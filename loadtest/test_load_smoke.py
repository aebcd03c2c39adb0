"""End-to-end load runs on the local stack: one process, and a master with two workers."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from loadtest.measurement import merge_histograms

SMOKE = ["--steps", "50", "--step-hold", "20", "--messages-per-minute", "6",
         "--heartbeat-s", "5", "--fail-if", "delivery_ratio<1"]


def load_run(run_dir, *arguments) -> dict:
    result = subprocess.run(
        [sys.executable, "-m", "system.cli", "load", "--run-dir", str(run_dir), *SMOKE,
         *arguments],
        capture_output=True, text=True, timeout=300, check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert f"Run directory: {run_dir}" in result.stdout
    return json.loads((run_dir / "summary.json").read_text())


def test_a_smoke_run_delivers_every_message(tmp_path):
    summary = load_run(tmp_path)
    assert summary["users_peak"] == 50
    assert summary["messages_sent"] > 0
    assert summary["delivery_ratio"] == 1 and summary["lost"] == summary["duplicated"] == 0
    assert summary["last_recipient_ms"]["count"] == summary["messages_sent"]
    [step] = summary["steps"]
    assert step["users"] == 50 and step["messages_sent"] == summary["messages_sent"]
    assert step["delivery_ratio"] == 1
    assert summary["generator"]["processes"][0]["cpu_percent_max"] > 0
    for name in ("locust_stats.csv", "locust_stats_history.csv", "emf.jsonl", "histograms.json"):
        assert (tmp_path / name).exists(), name
    histograms = json.loads((tmp_path / "histograms.json").read_text())
    assert merge_histograms([histograms["fanout"]]).count == summary["fanout_ms"]["count"]


@pytest.mark.parametrize("processes", [2])
def test_a_distributed_run_merges_to_the_sum_of_its_workers(tmp_path, processes):
    summary = load_run(tmp_path, "--processes", str(processes))
    workers = summary["workers"]
    assert len(workers) == processes
    assert summary["messages_sent"] == sum(w["messages_sent"] for w in workers)
    assert summary["fanout_ms"]["count"] == sum(w["receipts"] for w in workers)
    assert summary["delivery_ratio"] == 1
