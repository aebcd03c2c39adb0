"""$default: anything no route matched gets an error frame, to its sender only."""

from system.handlers.chat import metered, reply


def default(event: dict, context):
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
