"""Handlers that make the emulator show each API Gateway behaviour (see routes.toml).

They run in the emulator's Lambda workers, loaded from this folder through the
routes file's ``code`` setting, exactly as a user's own handlers would be.
"""

import json
import time

from system.handlers.chat import (
    ACTIVE_CONNECTIONS_TABLE,
    broadcast,
    connection_id,
    dynamodb,
    management_client,
    management_endpoint,
    reply,
)


def connect(event, context):
    """?status=N refuses with N; ?crash=1 raises; ?hold=S takes S seconds; ?post_self=1
    posts to itself during $connect and is accepted only if that was answered GoneException."""
    query = event.get("queryStringParameters") or {}
    time.sleep(float(query.get("hold", 0)))
    if "status" in query:
        return {"statusCode": int(query["status"])}
    if "crash" in query:
        raise RuntimeError("connect handler crashed on purpose")
    if "post_self" in query:
        client = management_client(management_endpoint(event))
        try:
            client.post_to_connection(ConnectionId=connection_id(event), Data=b"too early")
            return {"statusCode": 500}
        except client.exceptions.GoneException:
            pass
    # connected_at_ms keeps the row from being pruned by a broadcast that meets the
    # connection still in $connect (see system.handlers.chat.prune).
    dynamodb.put_item(TableName=ACTIVE_CONNECTIONS_TABLE, Item={
        "connection_id": {"S": connection_id(event)},
        "connected_at_ms": {"N": str(int(time.time() * 1000))},
    })
    return {"statusCode": 200}


def disconnect(event, context):
    """Tell every other connection what the $disconnect event looked like."""
    dynamodb.delete_item(TableName=ACTIVE_CONNECTIONS_TABLE,
                         Key={"connection_id": {"S": connection_id(event)}})
    broadcast(event, {"disconnect_event": event}, exclude=connection_id(event))
    return {"statusCode": 200}


def echo(event, context):
    """Post the event and the context's attributes back to the sender."""
    reply(event, {"event": event, "context": {
        "function_name": context.function_name,
        "aws_request_id": context.aws_request_id,
        "memory_limit_in_mb": context.memory_limit_in_mb,
        "invoked_function_arn": context.invoked_function_arn,
        "log_group_name": context.log_group_name,
        "remaining_ms": context.get_remaining_time_in_millis(),
    }})
    return {"statusCode": 200}


def crash(event, context):
    raise RuntimeError("message handler crashed on purpose")


def sleep_past_timeout(event, context):
    time.sleep(context.get_remaining_time_in_millis() / 1000 + 5)
    return {"statusCode": 200}


def respond(event, context):
    """Return a body: it reaches the sender only on a route with a route response."""
    return {"statusCode": 200, "body": json.dumps({"echo": json.loads(event["body"])})}


def sized(event, context):
    """Return a body padded to the message's ``bytes``: past the worker's answer line
    limit, Lambda's 6 MB response limit too."""
    size = json.loads(event["body"])["bytes"]
    return {"statusCode": 200, "body": json.dumps({"size": size, "padding": "x" * size})}


def authorize(event, context):
    """A REQUEST authorizer whose verdict is its identity source, the X-Probe header:
    allow (with a context that says what its event held), deny, unauthorized, crash,
    nested (a context API Gateway refuses) or hold (past its timeout)."""
    verdict = event["headers"]["X-Probe"]
    if verdict == "unauthorized":
        raise PermissionError("Unauthorized")  # the message is what API Gateway reads
    if verdict == "crash":
        raise RuntimeError("authorizer crashed on purpose")
    if verdict == "hold":
        time.sleep(context.get_remaining_time_in_millis() / 1000 + 5)
    seen = {"seen_type": event["type"], "seen_arn": event["methodArn"],
            "seen_route": event["requestContext"]["routeKey"],
            "seen_query": json.dumps(event.get("queryStringParameters")),
            "number": 7, "flag": True}
    return {"principalId": "probe-user",
            "policyDocument": {"Version": "2012-10-17", "Statement": [{
                "Action": "execute-api:Invoke", "Effect": "Deny" if verdict == "deny" else "Allow",
                "Resource": event["methodArn"]}]},
            "context": {"nested": {"a": 1}} if verdict == "nested" else seen}
