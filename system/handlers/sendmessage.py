"""sendmessage: store a chat message and broadcast it to every connection, sender included."""

import json
import uuid

from system.apigateway_quotas import MANAGEMENT_PAYLOAD_BYTES
from system.handlers.chat import (
    MESSAGE_HISTORY_TABLE,
    broadcast,
    connection_id,
    dynamodb,
    encode,
    metered,
    user_name,
    utc_now,
)
from system.handlers.frames import HEARTBEAT, chat_frame


def send_message(event: dict, context):
    """A heartbeat ("ping") is answered "pong" and stored nowhere; an empty or
    non-string message, or one whose broadcast would pass API Gateway's 128 KB
    @connections limit, is refused with 400 and stored nowhere. API Gateway
    forwards these return bodies to the client only where the route has a route
    response."""
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
    name = user_name(event)
    frame = chat_frame(message_id, sender, sent_at, message, name)
    data = encode(frame)
    if len(data) > MANAGEMENT_PAYLOAD_BYTES:  # the machine-readable copy of the text goes first
        del frame["text"]
        data = encode(frame)
    if len(data) > MANAGEMENT_PAYLOAD_BYTES:
        return {"statusCode": 400, "body": f"Message too long: {len(data)} bytes to broadcast, "
                                           f"at most {MANAGEMENT_PAYLOAD_BYTES}"}, None
    item = {"message_id": {"S": message_id}, "connection_id": {"S": sender},
            "timestamp": {"S": sent_at}, "message": {"S": message}}
    if name:
        item["sender_name"] = {"S": name}
    dynamodb.put_item(TableName=MESSAGE_HISTORY_TABLE, Item=item)
    fanout = broadcast(event, data)
    body = {"status": "sent", "message_id": message_id, "recipients": fanout.reached}
    return {"statusCode": 200, "body": json.dumps(body)}, fanout


lambda_handler = metered(send_message)
