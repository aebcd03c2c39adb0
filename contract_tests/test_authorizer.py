"""Contracts of the chat's JWT authorizer on $connect (``--authorizer jwt``).

A local stack with the authorizer attached and its own key; against ``--stack-file``,
a stack deployed with ``--authorizer jwt`` whose key is in this process's JWT_SECRET.
Refusals are API Gateway's: a missing token 401 without invoking the authorizer, an
expired one 401 (the authorizer raises Unauthorized), one that does not verify 403
(its policy denies).
"""

from __future__ import annotations

import os
import uuid
from urllib.parse import urlencode

import pytest
from websockets.exceptions import InvalidStatus

from contract_tests.client import ChatClient
from system.handlers.authorizer import TOKEN_PARAMETER, mint_token
from system.local.stack_fixtures import stack_fixture

LOCAL_SECRET = uuid.uuid4().hex * 2  # HS256 wants at least 32 bytes


def _authorized_stack_arguments(request: pytest.FixtureRequest) -> list[str]:
    request.getfixturevalue("local_secret_in_environment")
    return ["--authorizer", "jwt"]


@pytest.fixture(scope="module")
def local_secret_in_environment():
    """The local stack's JWT_SECRET: its authorizer gets it from the stack's environment,
    which the stack inherits from this process."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("JWT_SECRET", LOCAL_SECRET)
        yield


authorized_stack = stack_fixture(_authorized_stack_arguments, scope="module",
                                 doc="The chat with the JWT authorizer on $connect.")


@pytest.fixture(scope="module")
def target(stack, request):
    """(websocket URL, key): the --stack-file stack if it has the authorizer, else a
    local one started with it."""
    if stack.kind == "local":
        return request.getfixturevalue("authorized_stack").file.websocket_url, LOCAL_SECRET
    if stack.authorizer != "jwt" or not os.environ.get("JWT_SECRET"):
        pytest.skip("the target has no jwt authorizer on $connect, or JWT_SECRET is unset")
    return stack.websocket_url, os.environ["JWT_SECRET"]


def with_token(url: str, token: str) -> str:
    return f"{url}?{urlencode({TOKEN_PARAMETER: token})}"


def refusal_status(url: str) -> int:
    with pytest.raises(InvalidStatus) as refused:
        ChatClient(url).close()
    return refused.value.response.status_code


def test_a_valid_token_connects_and_names_the_sender(target, opened_clients):
    url, key = target
    subject = f"user-{uuid.uuid4().hex[:8]}"
    alice = ChatClient(with_token(url, mint_token(key, subject, name="Alice")))
    opened_clients.append(alice)
    alice.whoami()
    text = f"hello {uuid.uuid4().hex[:6]}"
    alice.chat(text)
    frame = alice.wait_for(lambda f: f.kind == "ChatBroadcast"
                             and f.document.get("text") == text)
    # "Alice" is the authorizer's context (user), not its principal: context reached
    # the sendmessage event.
    assert frame.document["sender_name"] == "Alice"
    assert frame.document["sender"] == alice.connection_id
    assert "Alice  " + text in frame.document["message"]
    assert not alice.violations


def test_without_a_token_the_handshake_is_refused_401(target):
    url, _ = target
    assert refusal_status(url) == 401
    assert refusal_status(with_token(url, "")) == 401


def test_an_expired_token_is_refused_401(target):
    url, key = target
    assert refusal_status(with_token(url, mint_token(key, "late", lifetime_s=-60))) == 401


@pytest.mark.parametrize("token", [
    pytest.param(lambda key: mint_token(uuid.uuid4().hex * 2, "mallory"), id="other key"),
    pytest.param(lambda key: mint_token(key, "eve")[:-2] + "AA", id="altered signature"),
    pytest.param(lambda key: "not.a.token", id="garbage"),
])
def test_a_token_that_does_not_verify_is_denied_403(target, token):
    url, key = target
    assert refusal_status(with_token(url, token(key))) == 403
