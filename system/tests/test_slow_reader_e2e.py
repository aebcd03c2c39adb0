"""A client that stops reading: @connections still answers every post in bounded time,
the client is disconnected once its unread data stalls the connection, $disconnect runs,
and no post that did not go out is answered 200."""

from __future__ import annotations

import asyncio
import json

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosedError

from system.client import WAIT_TIMEOUT_S
from system.client.polling import eventually

POST_BYTES = 100_000
POSTS_AT_MOST = 500  # 50 MB: far past what loopback socket buffers and the server hold


async def test_a_client_that_stops_reading_is_disconnected_and_no_post_hangs(chat_stack):
    stack = chat_stack.file
    management = stack.management_client(retries={"max_attempts": 1})
    dynamodb = stack.dynamodb_client()
    # max_queue=1: once a message waits unread, the client stops reading its socket.
    async with connect(stack.websocket_url, max_queue=1) as reader:
        await reader.send(json.dumps({"action": "whoami"}))
        async with asyncio.timeout(WAIT_TIMEOUT_S):  # a leave notice of another test may come first
            while (frame := json.loads(await reader.recv())).get("type") != "whoami":
                pass
        connection_id = frame["connection_id"]

        def post_until_refused() -> tuple[int, str]:
            data = b"x" * POST_BYTES
            for sent in range(POSTS_AT_MOST):
                try:
                    management.post_to_connection(ConnectionId=connection_id, Data=data)
                except management.exceptions.GoneException:
                    return sent, "GoneException"
            return POSTS_AT_MOST, "never refused"

        accepted, refusal = await asyncio.to_thread(post_until_refused)
        assert refusal == "GoneException", f"{accepted} posts of {POST_BYTES} bytes accepted"
        # The stack dropped it, with no close frame: reading again, the client finds the
        # end of what was buffered and no close frame after it (left unread, it would take
        # its keepalive's 40 s to notice).
        with pytest.raises(ConnectionClosedError):
            async with asyncio.timeout(WAIT_TIMEOUT_S):
                async for _ in reader:
                    pass
        assert reader.close_code == 1006

    def still_registered() -> bool:
        return "Item" in dynamodb.get_item(TableName=stack.tables["active_connections"],
                                           Key={"connection_id": {"S": connection_id}},
                                           ConsistentRead=True)

    await asyncio.to_thread(eventually, lambda: not still_registered(),
                            "$disconnect removes the dropped reader's row")
