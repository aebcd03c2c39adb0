"""A load run on a local stack with the chat's JWT authorizer: each user mints its own
token, and the run is a run like any other."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from loadtest.parameters import LoadParameters
from system.local.processes import free_port

# The load runs: tox runs them two at a time, after the rest (see load_run in pyproject);
# a run refused before it starts is not one.
load_run = pytest.mark.load_run

LOCUSTFILE = Path(__file__).resolve().parents[1] / "chat_harness" / "locustfile.py"

USERS = 3
# Chat stops settle_s (5 s) before the end: an 8 s step leaves each user 3 s of chat at
# one message a second, a first message from each even if connecting took 2 s.
HOLD_S = 8
MESSAGES_PER_MINUTE = 60


@load_run
def test_each_user_connects_with_a_token_of_its_own(tmp_path):
    environment = {**os.environ, "JWT_SECRET": uuid.uuid4().hex * 2}
    result = subprocess.run(
        [sys.executable, "-m", "chat_harness", "load", "--run-dir", str(tmp_path),
         "--authorizer", "jwt", "--steps", str(USERS), "--step-hold", str(HOLD_S),
         "--messages-per-minute", str(MESSAGES_PER_MINUTE), "--heartbeat-s", "5", "--fail-if", "delivery_ratio<1"],
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


def session(tmp_path: Path, environment: dict, *arguments: str) -> subprocess.CompletedProcess:
    """Locust with no stack file or host, as the web UI runs: the session starts its own
    stack (headless here, with a master and two workers)."""
    port = str(free_port())
    load = LoadParameters(steps=(USERS,), step_hold_s=HOLD_S,
                          messages_per_minute=MESSAGES_PER_MINUTE, heartbeat_s=5)
    return subprocess.run(
        [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless",
         "--runs-dir", str(tmp_path), "--run-dir", str(tmp_path / "run"),
         *load.locust_arguments(), "--processes", "2", "--master-bind-host", "127.0.0.1",
         "--master-bind-port", port, "--master-host", "127.0.0.1", "--master-port", port,
         *arguments],
        capture_output=True, text=True, timeout=300, check=False, env=environment)


@load_run
def test_a_session_whose_own_stack_has_the_authorizer_gives_every_user_a_token(tmp_path):
    result = session(tmp_path, {**os.environ, "JWT_SECRET": uuid.uuid4().hex * 2},
                     "--authorizer", "jwt", "--fanout", "sequential")
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["users_peak"] == USERS and summary["delivery_ratio"] == 1, result.stderr[-3000:]
    assert summary["stack"]["authorizer"] == "jwt" and summary["stack"]["fanout"] == "sequential"
    [log] = tmp_path.glob("stack-*/logs/JwtAuthorizer.log")
    assert log.read_text().count("START RequestId") == USERS  # the workers' users minted theirs
    assert "denied" not in log.read_text()


def test_a_session_whose_own_stack_cannot_start_says_why_in_one_line(tmp_path):
    environment = {k: v for k, v in os.environ.items() if k != "JWT_SECRET"}
    result = session(tmp_path, environment, "--authorizer", "jwt")
    assert result.returncode != 0
    assert ("chat-harness: the local stack exited: chat-harness local: JwtAuthorizer needs "
            "JWT_SECRET set in the environment") in result.stderr
    assert "Traceback" not in result.stderr
