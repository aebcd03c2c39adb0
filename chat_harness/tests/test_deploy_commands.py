"""``chat-harness deploy`` and ``destroy`` as a user runs them: the stack file they write
and remove, and one-line errors."""

from __future__ import annotations

import json

from chat_harness.cli import main
from system.aws import command
from system.tests.moto_aws import REGION


def test_no_credentials_is_one_line(monkeypatch, capsys):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
                 "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in {"AWS_EC2_METADATA_DISABLED": "true", "AWS_CONFIG_FILE": "/dev/null",
                        "AWS_SHARED_CREDENTIALS_FILE": "/dev/null"}.items():
        monkeypatch.setenv(name, value)
    assert main(["deploy", "--stage", "dev", "--region", REGION, "--plan"]) == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("chat-harness deploy: no AWS credentials found: ")


def test_deploy_writes_the_stack_file_and_destroy_removes_it(aws, tmp_path, capsys,
                                                              monkeypatch):
    monkeypatch.setattr(command, "session_for", lambda args: aws)  # the one with MotoGaps
    path = tmp_path / "aws-dev.json"
    assert main(["deploy", "--stage", "dev", "--stack-file", str(path)]) == 0
    written = json.loads(path.read_text())
    assert written["kind"] == "aws" and written["websocket_url"].startswith("wss://")
    assert set(written["arns"]) == {"tables", "functions", "roles", "connections"}
    assert f"Stack file: {path}" in capsys.readouterr().out
    assert main(["destroy", "--stage", "dev", "--stack-file", str(path)]) == 0
    assert not path.exists()




def test_authorizer_option_needs_its_secret_and_plans_the_authorizer(aws, capsys, monkeypatch):
    monkeypatch.setattr(command, "session_for", lambda args: aws)
    monkeypatch.delenv("JWT_SECRET", raising=False)
    deploy_with_authorizer = ["deploy", "--stage", "dev", "--authorizer", "jwt", "--plan"]
    assert main(deploy_with_authorizer) == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("chat-harness deploy: JwtAuthorizer needs JWT_SECRET set in the "
                           "environment chat-harness runs in")

    monkeypatch.setenv("JWT_SECRET", "test-signing-key")
    assert main(deploy_with_authorizer) == 0
    planned = capsys.readouterr().out.splitlines()
    assert ("create    authorizer      jwt  (JwtAuthorizer, identity "
            "route.request.querystring.Authorization)") in planned
    assert "create    route           $connect  (authorizer jwt)" in planned
