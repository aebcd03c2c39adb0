"""Nobody but the harness gets in: @connections takes only what the stack's own
credentials signed (refusing the rest as AWS does, which boto3 maps to its errors),
the control endpoint only requests carrying the stack's token, and the stack file that
holds both is its owner's alone."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import ssl
import stat
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta

import pytest
from botocore.auth import SIGV4_TIMESTAMP
from botocore.exceptions import ClientError

from system.client.signing import sign_at
from system.control import control_call
from system.local.apigateway.ids import new_connection_id
from system.stackfile import StackFile

HARMLESS_FAULT = {"handler_errors": {"no-such-route": 1}}  # were it armed, nothing would fail


def management(stack: StackFile, **credentials: str):
    """A boto3 @connections client of ``stack``, with other credentials where given."""
    signer = dataclasses.replace(stack, credentials={**stack.credentials, **credentials})
    return signer.management_client(retries={"max_attempts": 1})


def management_signing_at(stack: StackFile, moment: datetime):
    """The stack's boto3 client, with each request signed again by botocore's signer as if
    at ``moment`` (boto3 always signs at the present)."""
    client = management(stack)

    def sign_at_moment(request, **_) -> None:
        sign_at(request, stack.credentials, stack.region, moment)

    client.meta.events.register("before-send", sign_at_moment)
    return client


def error_of(raised: pytest.ExceptionInfo[ClientError]) -> tuple[int, str, str]:
    response = raised.value.response
    return (response["ResponseMetadata"]["HTTPStatusCode"], response["Error"]["Code"],
            response["Error"]["Message"])


async def nothing_delivered_before_the_next_post(stack: StackFile, client) -> None:
    """A post the stack's own client makes now arrives; one refused before it would have
    arrived first (one connection's frames keep their order)."""
    marker = new_connection_id()
    management(stack).post_to_connection(ConnectionId=client.connection_id,
                                         Data=json.dumps({"marker": marker}).encode())
    await client.frame_where(lambda f: f.get("marker") == marker)
    assert not [text for text in client.inbox if "probe" in text]


async def test_a_post_signed_with_a_wrong_secret_is_refused_and_not_delivered(chat_stack,
                                                                              clients):
    stack = chat_stack.file
    a = await clients(stack.websocket_url)
    a_id = await a.whoami()
    forger = management(stack, aws_secret_access_key="not-the-stack-secret")
    with pytest.raises(ClientError) as raised:
        forger.post_to_connection(ConnectionId=a_id, Data=b'{"probe":1}')
    status, code, message = error_of(raised)
    assert (status, code) == (403, "InvalidSignatureException")
    assert message.startswith("The request signature we calculated does not match")
    chat_stack.wait_for_output(f"refused @connections POST /{stack.stage}/@connections/{a_id}")
    await nothing_delivered_before_the_next_post(stack, a)


async def test_a_delete_signed_with_a_wrong_secret_leaves_the_connection_open(chat_stack,
                                                                             clients):
    stack = chat_stack.file
    a = await clients(stack.websocket_url)
    a_id = await a.whoami()
    forger = management(stack, aws_secret_access_key="not-the-stack-secret")
    with pytest.raises(ClientError) as raised:
        forger.delete_connection(ConnectionId=a_id)
    assert error_of(raised)[:2] == (403, "InvalidSignatureException")
    assert management(stack).get_connection(ConnectionId=a_id)["ConnectedAt"]
    await a.whoami()


async def test_another_stacks_credentials_are_unrecognized(chat_stack, behaviour_stack, clients):
    stack, other = chat_stack.file, behaviour_stack.file
    assert stack.credentials != other.credentials
    assert stack.control_token != other.control_token
    a = await clients(stack.websocket_url)
    a_id = await a.whoami()
    with pytest.raises(ClientError) as raised:
        management(stack, **other.credentials).post_to_connection(ConnectionId=a_id,
                                                                  Data=b'{"probe":1}')
    assert error_of(raised) == (403, "UnrecognizedClientException",
                                "The security token included in the request is invalid.")
    await nothing_delivered_before_the_next_post(stack, a)


async def test_a_signature_older_than_five_minutes_is_refused(chat_stack, clients):
    stack = chat_stack.file
    a = await clients(stack.websocket_url)
    a_id = await a.whoami()
    now = datetime.now(UTC)
    management_signing_at(stack, now).post_to_connection(ConnectionId=a_id, Data=b'{"fresh":1}')
    await a.frame_where(lambda f: f.get("fresh") == 1)  # the re-signing itself is sound
    stale = management_signing_at(stack, now - timedelta(minutes=6))
    with pytest.raises(ClientError) as raised:
        stale.post_to_connection(ConnectionId=a_id, Data=b'{"probe":1}')
    status, code, message = error_of(raised)
    assert (status, code) == (403, "InvalidSignatureException")
    stamp = (now - timedelta(minutes=6)).strftime(SIGV4_TIMESTAMP)
    assert message.startswith(f"Signature expired: {stamp} is now earlier than ")
    assert message.endswith(" - 5 min.)")
    await nothing_delivered_before_the_next_post(stack, a)


async def test_an_unsigned_post_is_missing_its_authentication_token(chat_stack, clients):
    stack = chat_stack.file
    a = await clients(stack.websocket_url)
    a_id = await a.whoami()
    request = urllib.request.Request(f"{stack.management_endpoint}/@connections/{a_id}",
                                     data=b'{"probe":1}', method="POST")
    context = ssl.create_default_context(cafile=stack.ca_bundle)
    with pytest.raises(urllib.error.HTTPError) as raised:
        await asyncio.to_thread(urllib.request.urlopen, request, context=context, timeout=10)
    assert raised.value.code == 403
    assert raised.value.headers["x-amzn-ErrorType"] == "ForbiddenException"
    assert json.loads(raised.value.read()) == {"message": "Missing Authentication Token"}
    await nothing_delivered_before_the_next_post(stack, a)


def anonymous_control_call(stack: StackFile, method: str, path: str,
                           body: bytes | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(f"{stack.control_endpoint}/{path}", method=method,
                                     data=body)
    try:
        with urllib.request.urlopen(
                request, context=ssl.create_default_context(cafile=stack.ca_bundle),
                timeout=10) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


@pytest.mark.parametrize("who", ["anonymous", "wrong token"])
def test_the_control_endpoint_refuses_requests_without_its_token(chat_stack, who):
    stack = chat_stack.file
    if who == "anonymous":
        def call(method, path, body=None):
            return anonymous_control_call(stack, method, path, body)
    else:
        def call(method, path, body=None):
            return control_call(dataclasses.replace(stack, control_token="guess"), method,
                                path, body)
    unknown = new_connection_id()
    refusals = [call("POST", "faults", json.dumps(HARMLESS_FAULT).encode()),
                call("DELETE", "faults"), call("GET", "faults"),
                call("POST", f"drop/{unknown}"), call("GET", "activity")]
    for status, answer in refusals:
        assert status == 403
        assert "control_token" in answer["message"] and "\n" not in answer["message"]
    assert control_call(stack, "GET")[1]["handler_errors"] == {}
    assert control_call(stack, "POST", f"drop/{unknown}")[0] == 404  # with the token: heard
    refused_drop = f"refused control POST /@harness/drop/{unknown}"
    chat_stack.wait_for_output(refused_drop)
    assert sum(refused_drop in line for line in chat_stack.output) == 1


def test_the_stack_file_is_its_owners_alone(chat_stack):
    assert stat.S_IMODE(os.stat(chat_stack.stack_path).st_mode) == 0o600
    credentials = chat_stack.file.credentials
    assert credentials["aws_access_key_id"].startswith("LOCAL")
    assert len(credentials["aws_access_key_id"]) == 21


def test_a_stack_file_is_written_0600_over_anything_left_behind(tmp_path):
    stack = StackFile(websocket_url="ws://127.0.0.1:1/local",
                      management_endpoint="https://127.0.0.1:2/local", region="us-east-1",
                      tables={}, credentials={"aws_access_key_id": "LOCALX",
                                              "aws_secret_access_key": "secret"},
                      control_token="token")
    path = tmp_path / "stack.json"
    for leftover in (path, path.with_suffix(".json.tmp")):
        leftover.write_text("{}")
        leftover.chmod(0o644)
    stack.write(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert StackFile.read(path) == stack
