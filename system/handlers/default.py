"""$default: anything no route matched gets an error frame, to its sender only."""

from system.handlers.chat import connection_id, metered, reply


def default(event: dict, context):
    print(f"invalid request from {connection_id(event)}: {(event.get('body') or '')[:200]!r}")
    reply(
        event,
        {
            "error": "Invalid request",
            "message": "The requested action is not recognized. "
            'Send {"action":"sendmessage","message":"..."} or {"action":"whoami"}.',
        },
    )
    return {"statusCode": 200}, None


lambda_handler = metered(default)
