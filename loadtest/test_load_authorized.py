"""A load run on a local stack with the chat's JWT authorizer: each user mints its own
token, and the run is a run like any other."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid

USERS = 3


def test_each_user_connects_with_a_token_of_its_own(tmp_path):
    environment = {**os.environ, "JWT_SECRET": uuid.uuid4().hex * 2}
    result = subprocess.run(
        [sys.executable, "-m", "chat_harness", "load", "--run-dir", str(tmp_path),
         "--authorizer", "jwt", "--steps", str(USERS), "--step-hold", "8",
         "--messages-per-minute", "30", "--heartbeat-s", "5", "--fail-if", "delivery_ratio<1"],
        capture_output=True, text=True, timeout=300, check=False, env=environment)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["users_peak"] == USERS and summary["messages_sent"] > 0
    log = (tmp_path / "stack" / "logs" / "JwtAuthorizer.log").read_text()
    assert log.count("START RequestId") == USERS  # one token checked per user, each allowed
    assert "denied" not in log


def test_without_the_key_the_run_stops_before_it_starts_in_one_line(tmp_path):
    environment = {k: v for k, v in os.environ.items() if k != "JWT_SECRET"}
    result = subprocess.run(
        [sys.executable, "-m", "chat_harness", "load", "--run-dir", str(tmp_path),
         "--authorizer", "jwt", "--steps", "1", "--step-hold", "1"],
        capture_output=True, text=True, timeout=120, check=False, env=environment)
    assert result.returncode == 2
    assert "JwtAuthorizer needs JWT_SECRET set in the environment" in result.stderr
    assert "Traceback" not in result.stderr
