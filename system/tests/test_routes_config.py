"""The routes file: the chat's default mapping, and clear errors for broken files."""

from __future__ import annotations

import subprocess
import sys

import pytest

from system.routes import RouteConfigError, load_routes


def test_default_routes_cover_the_chat():
    table = load_routes()
    assert set(table.routes) == {"$connect", "$disconnect", "$default", "sendmessage", "whoami"}
    assert table.selection_expression == "$request.body.action"
    send = table.functions["SendMessageHandler"]
    assert (send.handler, send.timeout_s) == ("system.handlers.sendmessage.lambda_handler", 3.0)


@pytest.mark.parametrize("text, message", [
    ("routes = [", "not valid TOML"),
    ('[routes.x]\nfunction = "Nope"', "unknown function 'Nope'"),
    ('[functions.F]\ntimeout = 3', "missing key 'handler'"),
    ('[functions.F]\nhandler = "m.f"\ntimeout = 0', "timeout must be positive"),
    ('route_selection_expression = "action"', "route selection expression"),
    ('[functions.F]\nhandler = "m.f"\ntables = { messages = ["PutItem"] }',
     "F names table 'messages'; the tables are active_connections, session_history"),
    ('[functions.F]\nhandler = "m.f"\ntables = { message_history = ["PutItems"] }',
     "F: PutItems is not a DynamoDB action"),
])
def test_broken_routes_files_say_what_is_wrong(tmp_path, text, message):
    path = tmp_path / "routes.toml"
    path.write_text(text)
    with pytest.raises(RouteConfigError, match=message):
        load_routes(path)


def test_missing_routes_file(tmp_path):
    with pytest.raises(RouteConfigError, match="cannot read routes file"):
        load_routes(tmp_path / "absent.toml")


@pytest.mark.parametrize("arguments, message", [
    (["--routes", "/nonexistent/routes.toml"], "cannot read routes file"),
    (["--dynamodb", "postgres"], "--dynamodb must be dynalite, moto or an http(s):// URL"),
])
def test_cli_errors_are_one_line(tmp_path, arguments, message):
    result = subprocess.run(
        [sys.executable, "-m", "system.local", "--state-dir", str(tmp_path), *arguments],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("chat-harness local: ") and message in line
