"""The fan-out function: post one batch of a batched broadcast (``FANOUT_STRATEGY=batched``),
or tell the join and leave notices noted inside a window (``PRESENCE_NOTICES=coalesced``).

Invoked asynchronously (InvocationType=Event) by the handler that broadcasts, once per
batch of FANOUT_BATCH_SIZE recipients, with the @connections endpoint, the frame and
the batch; or by ``$connect``/``$disconnect`` with ``presence_flush`` when a change
waits for the end of a window. Its routes-file entry sets ``async_retries = 0``: Lambda
would otherwise run a failed batch again, and deliver twice to the recipients it had
reached.
"""

import time

from system.handlers.chat import Fanout, deliver, flush_presence, metered


def fan_out(event: dict, context):
    """Posts as the threads strategy does, within the batch; its metrics line carries
    the broadcast's route and id, and how long after the broadcast began it started.
    A presence flush's line is its notice's broadcast, under the route that asked."""
    if event.get("presence_flush"):
        return None, flush_presence(event, lambda: context.get_remaining_time_in_millis() / 1000)
    delay_ms = time.time() * 1000 - event["started_ms"]
    batch = Fanout(strategy="batched",
                   batch_of={"broadcast_id": event["broadcast_id"], "delay_ms": delay_ms})
    fanout = deliver(event["endpoint"], event["recipients"], event["data"].encode(), batch)
    return {"delivered": fanout.delivered, "gone": fanout.gone, "failed": fanout.failed}, fanout


lambda_handler = metered(fan_out, route_of=lambda event: event["route"],
                         request_id_of=lambda event, context: context.aws_request_id)
