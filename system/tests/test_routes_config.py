"""The routes file: the chat's default mapping, and clear errors for broken files."""

from __future__ import annotations

import subprocess
import sys

import pytest

from system.routes import (
    RouteConfigError,
    load_routes,
    with_environment,
    with_route_response,
    write_routes_variant,
)


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


def test_a_routes_variant_changes_only_what_its_edits_say(tmp_path):
    (tmp_path / "src").mkdir()
    source = tmp_path / "routes.toml"
    source.write_text('[functions.F]\nhandler = "m.f"\ncode = "src"\n'
                      'environment = { KEEP = "1" }\n[routes.talk]\nfunction = "F"\n')
    elsewhere = tmp_path / "elsewhere" / "routes.toml"

    def both(document: dict) -> None:
        with_environment(PRESENCE_NOTICES="off")(document)
        with_route_response("talk")(document)

    variant = load_routes(write_routes_variant(elsewhere, both, source))
    function = variant.functions["F"]
    assert function.environment == {"KEEP": "1", "PRESENCE_NOTICES": "off"}
    assert function.code_dir == (tmp_path / "src").resolve()  # still the source's folder
    assert variant.routes["talk"].route_response
