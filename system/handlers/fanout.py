"""The fan-out function: post one batch of a batched broadcast (``FANOUT_STRATEGY=batched``).

Invoked asynchronously (InvocationType=Event) by the handler that broadcasts, once per
batch of FANOUT_BATCH_SIZE recipients, with the @connections endpoint, the frame and
the batch. Its routes-file entry sets ``async_retries = 0``: Lambda would otherwise run
a failed batch again, and deliver twice to the recipients it had reached.
"""

import time

from system.handlers.chat import Fanout, deliver, metered


def fan_out(event: dict, context):
    """Posts as the threads strategy does, within the batch; its metrics line carries
    the broadcast's route and id, and how long after the broadcast began it started."""
    delay_ms = time.time() * 1000 - event["started_ms"]
    batch = Fanout(strategy="batched",
                   batch_of={"broadcast_id": event["broadcast_id"], "delay_ms": delay_ms})
    fanout = deliver(event["endpoint"], event["recipients"], event["data"].encode(), batch)
    return {"delivered": fanout.delivered, "gone": fanout.gone, "failed": fanout.failed}, fanout


lambda_handler = metered(fan_out, route_of=lambda event: event["route"],
                         request_id_of=lambda event, context: context.aws_request_id)
