"""The local stack's Lambda Invoke API, through boto3's own lambda client, as a handler
calls it: synchronous and asynchronous (Event) invocations, and Lambda's answers to
what it refuses."""

from __future__ import annotations

import json

import boto3
import pytest
from botocore.config import Config

from system.local.lambda_api import EVENT_PAYLOAD_BYTES, function_named

NO_RETRIES = {"retries": {"max_attempts": 1}}


def fanout_event(stack, recipients: list[str], text: str) -> dict:
    """A batch as a batched broadcast hands it to the fan-out function."""
    return {"endpoint": stack.management_endpoint, "data": json.dumps({"message": text}),
            "recipients": recipients, "route": "sendmessage", "broadcast_id": "test",
            "started_ms": 0}


def test_function_names_are_a_name_an_arn_or_a_partial_arn_at_latest():
    functions = {"FanoutHandler": object()}
    for reference in ("FanoutHandler", "123456789012:function:FanoutHandler",
                      "arn:aws:lambda:us-east-1:123456789012:function:FanoutHandler",
                      "arn:aws:lambda:us-east-1:123456789012:function:FanoutHandler:$LATEST"):
        assert function_named(reference, None, functions, "us-east-1") == "FanoutHandler"
    for reference, qualifier in (("Missing", None), ("FanoutHandler:7", None),
                                 ("FanoutHandler", "live")):
        with pytest.raises(LookupError, match="^Function not found: arn:aws:lambda:us-east-1:"):
            function_named(reference, qualifier, functions, "us-east-1")


def test_a_synchronous_invocation_returns_the_functions_result(chat_stack):
    answer = chat_stack.file.lambda_client(**NO_RETRIES).invoke(
        FunctionName="FanoutHandler", Payload=json.dumps(fanout_event(chat_stack.file, [], "x")))
    assert answer["StatusCode"] == 200 and answer["ExecutedVersion"] == "$LATEST"
    assert "FunctionError" not in answer
    assert json.loads(answer["Payload"].read()) == {"delivered": 0, "gone": 0, "failed": 0}


def test_a_function_error_is_a_200_flagged_unhandled_with_the_error_document(chat_stack):
    answer = chat_stack.file.lambda_client(**NO_RETRIES).invoke(
        FunctionName="FanoutHandler", Payload=b"{}")
    assert answer["StatusCode"] == 200 and answer["FunctionError"] == "Unhandled"
    assert json.loads(answer["Payload"].read())["errorType"] == "KeyError"


async def test_an_event_is_accepted_at_once_and_then_runs(chat_stack, clients):
    """The fan-out function posts to a real client: the event ran after its 202."""
    client = await clients(chat_stack.file.websocket_url)
    me = await client.whoami()
    answer = chat_stack.file.lambda_client(**NO_RETRIES).invoke(
        FunctionName="FanoutHandler", InvocationType="Event",
        Payload=json.dumps(fanout_event(chat_stack.file, [me], "by event")))
    assert answer["StatusCode"] == 202 and answer["Payload"].read() == b""
    await client.frame_where(lambda f: f.get("message") == "by event")


def test_what_lambda_refuses_it_refuses_in_lambdas_words(chat_stack):
    lambda_ = chat_stack.file.lambda_client(**NO_RETRIES)
    with pytest.raises(lambda_.exceptions.ResourceNotFoundException,
                       match="Function not found: .*:function:NoSuchFunction"):
        lambda_.invoke(FunctionName="NoSuchFunction", Payload=b"{}")
    with pytest.raises(lambda_.exceptions.InvalidRequestContentException,
                       match="Could not parse request body into json"):
        lambda_.invoke(FunctionName="FanoutHandler", Payload=b"not json")
    with pytest.raises(lambda_.exceptions.RequestTooLargeException,
                       match=f"smaller than {EVENT_PAYLOAD_BYTES} bytes"):
        lambda_.invoke(FunctionName="FanoutHandler", InvocationType="Event",
                       Payload=json.dumps({"padding": "x" * EVENT_PAYLOAD_BYTES}))
    assert lambda_.invoke(FunctionName="FanoutHandler", InvocationType="DryRun",
                          Payload=b"{}")["StatusCode"] == 204


def test_only_the_stacks_own_credentials_may_invoke(chat_stack):
    stranger = boto3.client("lambda", endpoint_url=chat_stack.file.lambda_endpoint,
                            region_name=chat_stack.file.region, aws_access_key_id="AKIASTRANGER",
                            aws_secret_access_key="not-the-stacks", config=Config(**NO_RETRIES))
    with pytest.raises(stranger.exceptions.ClientError, match="UnrecognizedClientException"):
        stranger.invoke(FunctionName="FanoutHandler", Payload=b"{}")
