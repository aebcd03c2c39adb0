"""sendmessage: store a chat message and broadcast it to every connection, sender included."""

import json
import uuid

from system.handlers.chat import (
    HEARTBEAT,
    MESSAGE_HISTORY_TABLE,
    broadcast,
    connection_id,
    dynamodb,
    metered,
    utc_now,
)


def send_message(event: dict, context):
    """A heartbeat ("ping") is answered "pong" and stored nowhere; an empty or
    non-string message is refused with 400. API Gateway forwards these return
    bodies to the client only where the route has a route response."""
    message = json.loads(event.get("body") or "{}").get("message", "")
    if message == HEARTBEAT:
        return {"statusCode": 200, "body": json.dumps({"message": "pong"})}, None
    if not isinstance(message, str):
        return {"statusCode": 400, "body": "Message must be a string"}, None
    if not message:
        return {"statusCode": 400, "body": "Message cannot be empty"}, None

    sender = connection_id(event)
    message_id = str(uuid.uuid4())
    sent_at = utc_now()
    dynamodb.put_item(
        TableName=MESSAGE_HISTORY_TABLE,
        Item={
            "message_id": {"S": message_id},
            "connection_id": {"S": sender},
            "timestamp": {"S": sent_at},
            "message": {"S": message},
        },
    )
    fanout = broadcast(
        event,
        {
            "message": f"[{sent_at} - UTC]\n {sender}  {message}\n",
            "type": "chat",
            "message_id": message_id,
            "sender": sender,
            "sent_at": sent_at,
            "text": message,
        },
    )
    body = {"status": "sent", "message_id": message_id, "recipients": fanout.delivered}
    return {"statusCode": 200, "body": json.dumps(body)}, fanout


lambda_handler = metered(send_message)
