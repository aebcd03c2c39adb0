"""``chat-harness token``: a token the chat's jwt authorizer allows, or a one-line error."""

from __future__ import annotations

import os
import subprocess
import sys

from system.handlers import authorizer

KEY = "k" * 40
ARN = "arn:aws:execute-api:us-east-1:000000000000:api/local/$connect"


def token_command(*arguments: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "chat_harness", "token", *arguments],
                          capture_output=True, text=True, timeout=60, check=False, env=env)


def test_the_printed_token_is_allowed_with_its_name(monkeypatch):
    environment = {**os.environ, "JWT_SECRET": KEY}
    result = token_command("--user", "u-1", "--name", "Alice", env=environment)
    assert result.returncode == 0, result.stderr
    monkeypatch.setenv("JWT_SECRET", KEY)
    answer = authorizer.lambda_handler(
        {"methodArn": ARN, "queryStringParameters": {"Authorization": result.stdout.strip()}},
        None)
    assert answer["principalId"] == "u-1" and answer["context"] == {"user": "Alice"}
    assert answer["policyDocument"]["Statement"][0] == {
        "Action": "execute-api:Invoke", "Effect": "Allow", "Resource": ARN}


def test_without_a_key_it_says_what_to_set():
    environment = {k: v for k, v in os.environ.items() if k != "JWT_SECRET"}
    result = token_command("--user", "u-1", env=environment)
    assert result.returncode == 2
    assert result.stderr.strip() == ("chat-harness token: set JWT_SECRET to the key the "
                                     "stack's jwt authorizer has")
