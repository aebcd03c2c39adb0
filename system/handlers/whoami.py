"""whoami: tell a client its own connection id (the reference client cannot learn it)."""

from system.handlers.chat import connection_id, metered, reply
from system.handlers.frames import whoami_frame


def whoami(event: dict, context):
    me = connection_id(event)
    reply(event, whoami_frame(me))
    return {"statusCode": 200}, None


lambda_handler = metered(whoami)
