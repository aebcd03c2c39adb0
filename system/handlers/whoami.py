"""whoami: tell a client its own connection id (the reference client cannot learn it)."""

from system.handlers.chat import connection_id, metered, reply


def whoami(event: dict, context):
    me = connection_id(event)
    reply(event, {"message": f"Your connection id is {me}", "type": "whoami", "connection_id": me})
    return {"statusCode": 200}, None


lambda_handler = metered(whoami)
