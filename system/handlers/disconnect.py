"""$disconnect: unregister the connection, close its session, tell everyone else."""

import time

from system.handlers.chat import (
    ACTIVE_CONNECTIONS_TABLE,
    SESSION_HISTORY_TABLE,
    connection_id,
    dynamodb,
    metered,
    presence_notice,
    utc_now,
)
from system.handlers.frames import leave_frame


def disconnect(event: dict, context):
    """The duration comes from requestContext.connectedAt (fixed for the connection's
    life), so closing the session needs no read."""
    me = connection_id(event)
    dynamodb.delete_item(TableName=ACTIVE_CONNECTIONS_TABLE, Key={"connection_id": {"S": me}})
    connected_at_ms = event["requestContext"]["connectedAt"]
    duration = max(0.0, time.time() - connected_at_ms / 1000)
    dynamodb.update_item(
        TableName=SESSION_HISTORY_TABLE,
        Key={"connection_id": {"S": me}},
        UpdateExpression="SET disconnected_at = :at, duration_seconds = :duration",
        ExpressionAttributeValues={
            ":at": {"S": utc_now()},
            ":duration": {"N": f"{duration:.3f}"},
        },
    )
    fanout = presence_notice(event, "left", leave_frame(me))
    return {"statusCode": 200, "body": "Disconnected"}, fanout


lambda_handler = metered(disconnect)
