"""The routes file: the chat's default mapping, and clear errors for broken files."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from system.routes import (
    RouteConfigError,
    load_routes,
    with_authorizer,
    with_environment,
    with_route_response,
    with_secrets,
    write_routes_variant,
)

AUTHORIZED = ('[functions.F]\nhandler = "m.f"\n[functions.A]\nhandler = "m.a"\n'
              '[authorizers.token]\nfunction = "A"\n'
              'identity_sources = ["route.request.querystring.t"]\n')


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
    (AUTHORIZED + '[routes.sendmessage]\nfunction = "F"\nauthorizer = "token"',
     "route 'sendmessage' has an authorizer; API Gateway runs authorizers on \\$connect only"),
    (AUTHORIZED + '[routes."$connect"]\nfunction = "F"\nauthorizer = "other"',
     "unknown authorizer 'other'"),
    ('[functions.F]\nhandler = "m.f"\n[authorizers.a]\nfunction = "G"', "unknown function 'G'"),
    (AUTHORIZED.replace("route.request.querystring.t", "stageVariables.x"),
     "must be route.request.header.NAME or"),
])
def test_broken_routes_files_say_what_is_wrong(tmp_path, text, message):
    path = tmp_path / "routes.toml"
    path.write_text(text)
    with pytest.raises(RouteConfigError, match=message):
        load_routes(path)


def test_the_jwt_authorizer_guards_nothing_until_attached():
    routes = load_routes()
    assert routes.connect_authorizer() is None
    assert "JwtAuthorizer" not in routes.in_use().functions
    assert set(routes.in_use().functions) == set(routes.functions) - {"JwtAuthorizer"}
    attached = with_authorizer(routes, "jwt")
    assert attached.connect_authorizer().identity_sources == (
        "route.request.querystring.Authorization",)
    assert "JwtAuthorizer" in attached.in_use().functions
    assert attached.in_use().authorizers.keys() == {"jwt"}
    with pytest.raises(RouteConfigError, match=r"declares no authorizer 'nope' \(declared: jwt\)"):
        with_authorizer(routes, "nope")


def test_secrets_come_from_the_environment_or_name_what_is_missing():
    routes = with_authorizer(load_routes(), "jwt").in_use()
    with pytest.raises(RouteConfigError, match="JwtAuthorizer needs JWT_SECRET set in the "
                                               "environment chat-harness runs in"):
        with_secrets(routes, {})
    given = with_secrets(routes, {"JWT_SECRET": "k" * 32})
    assert given.functions["JwtAuthorizer"].environment["JWT_SECRET"] == "k" * 32
    assert "JWT_SECRET" not in given.functions["ConnectHandler"].environment


def test_missing_routes_file(tmp_path):
    with pytest.raises(RouteConfigError, match="cannot read routes file"):
        load_routes(tmp_path / "absent.toml")


@pytest.mark.parametrize("arguments, message", [
    (["--routes", "/nonexistent/routes.toml"], "cannot read routes file"),
    (["--dynamodb", "postgres"], "--dynamodb must be dynalite, moto or an http(s):// URL"),
    (["--authorizer", "jwt"], "JwtAuthorizer needs JWT_SECRET set in the environment"),
])
def test_cli_errors_are_one_line(tmp_path, arguments, message):
    environment = {name: value for name, value in os.environ.items() if name != "JWT_SECRET"}
    result = subprocess.run(
        [sys.executable, "-m", "system.local", "--state-dir", str(tmp_path), *arguments],
        capture_output=True, text=True, timeout=60, check=False, env=environment,
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
