"""How a broadcast reaches its recipients (``FANOUT_STRATEGY``), named once for the
handlers, the local stack, deploy and the report.

- ``sequential``: one ``post_to_connection`` after another, the reference app's way;
  in AWS (tens of ms a post) it cannot reach 1,000 recipients in a 3 s Lambda timeout.
- ``threads``: bounded concurrency inside the one invocation (the chat's default).
- ``batched``: the recipients split into batches, each posted by a fan-out function
  invoked asynchronously (Lambda ``Invoke``, ``InvocationType=Event``), so the work
  spreads over as many invocations as there are batches.
"""

FANOUT_STRATEGIES = ("sequential", "threads", "batched")
DEFAULT_FANOUT_STRATEGY = "threads"
DEFAULT_FANOUT_BATCH_SIZE = 100
DEFAULT_FANOUT_CONCURRENCY = 32
