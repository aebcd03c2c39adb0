"""$connect: tell everyone else, then register the connection and open its session."""


from system.handlers.chat import (
    ACTIVE_CONNECTIONS_TABLE,
    CONNECTION_TTL_SECONDS,
    SESSION_HISTORY_TABLE,
    connection_id,
    dynamodb,
    metered,
    presence_notice,
    utc_now,
)
from system.handlers.frames import join_frame


def connect(event: dict, context):
    """The join notice (``presence_notice``) goes out before the row is written, so the
    new connection, which API Gateway answers with 410 until $connect returns, is not a
    recipient. The row carries connectedAt, so that other broadcasts meeting that 410 keep it (see
    ``prune``)."""
    me = connection_id(event)
    fanout = presence_notice(event, "joined", join_frame(me))
    connected_at_ms = event["requestContext"]["connectedAt"]  # the handshake's start
    dynamodb.put_item(
        TableName=ACTIVE_CONNECTIONS_TABLE,
        Item={
            "connection_id": {"S": me},
            "connected_at_ms": {"N": str(connected_at_ms)},
            "expires_at": {"N": str(connected_at_ms // 1000 + CONNECTION_TTL_SECONDS)},
        },
    )
    dynamodb.put_item(
        TableName=SESSION_HISTORY_TABLE,
        Item={
            "connection_id": {"S": me},
            "source_ip": {"S": event["requestContext"]["identity"]["sourceIp"]},
            "connected_at": {"S": utc_now()},
        },
    )
    return {"statusCode": 200, "body": "Connected"}, fanout


lambda_handler = metered(connect)
