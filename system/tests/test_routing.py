"""Route selection as API Gateway does it: $request.body.<path>, exact, $default fallback."""

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from system.local.apigateway.routing import DEFAULT_ROUTE, route_for
from system.routes import selection_path

ACTION = selection_path("$request.body.action")
KEYS = {"$connect", "$disconnect", "$default", "sendmessage", "whoami", "42", "true"}


def test_exact_match_selects_the_route():
    assert route_for('{"action":"sendmessage","message":"hi"}', KEYS, ACTION) == "sendmessage"


@pytest.mark.parametrize("body", [
    "not json", "", "[1,2]", '"sendmessage"', "{}", '{"action":null}',
    '{"action":"SendMessage"}', '{"action":"sendmessage "}', '{"Action":"sendmessage"}',
    '{"action":"$connect"}', '{"action":"$disconnect"}',
])
def test_anything_else_goes_to_default(body):
    assert route_for(body, KEYS, ACTION) == DEFAULT_ROUTE


@pytest.mark.parametrize("body", ["[" * 30_000, '{"action":' * 3_000])
def test_a_body_nested_too_deep_to_evaluate_goes_to_default(body):
    """One 32 KB frame, nested deeper than the JSON parser recurses: AWS selects
    $default for a body it cannot evaluate, as for one that is not JSON."""
    assert route_for(body, KEYS, ACTION) == DEFAULT_ROUTE
    assert route_for(body, {"sendmessage"}, ACTION) is None


def test_non_string_values_are_stringified():
    assert route_for('{"action":42}', KEYS, ACTION) == "42"
    assert route_for('{"action":true}', KEYS, ACTION) == "true"


def test_without_a_default_route_nothing_is_selected():
    assert route_for("garbage", {"sendmessage"}, ACTION) is None
    assert route_for('{"action":"sendmessage"}', {"sendmessage"}, ACTION) == "sendmessage"


def test_nested_selection_path():
    path = selection_path("$request.body.meta.kind")
    assert route_for('{"meta":{"kind":"whoami"}}', KEYS, path) == "whoami"
    assert route_for('{"meta":"whoami"}', KEYS, path) == DEFAULT_ROUTE


@pytest.mark.parametrize("expression", ["action", "$request.header.x", "$request.body."])
def test_bad_selection_expressions_are_refused(expression):
    with pytest.raises(ValueError, match="route selection expression"):
        selection_path(expression)


@given(st.text())
def test_any_text_gets_a_route_key_that_exists(body):
    assert route_for(body, KEYS, ACTION) in KEYS


@given(st.dictionaries(st.text(), st.text() | st.integers() | st.none()))
def test_json_objects_select_their_action_or_default(document):
    selected = route_for(json.dumps(document), KEYS, ACTION)
    action = document.get("action")
    expected = str(action) if action is not None and str(action) in KEYS else DEFAULT_ROUTE
    if expected.startswith("$"):
        expected = DEFAULT_ROUTE
    assert selected == expected
