"""$default: anything no route matched gets an error frame, to its sender only."""

from system.handlers.chat import connection_id, metered, reply
from system.handlers.frames import INVALID_REQUEST_FRAME


def default(event: dict, context):
    print(f"invalid request from {connection_id(event)}: {(event.get('body') or '')[:200]!r}")
    reply(event, INVALID_REQUEST_FRAME)
    return {"statusCode": 200}, None


lambda_handler = metered(default)
