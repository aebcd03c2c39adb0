"""A pass-through proxy in front of DynamoDB, where the stack can answer for the table.

The Lambda workers reach DynamoDB through it; it forwards every call unchanged,
except where an armed fault throttles the table, when it answers as DynamoDB
does: HTTP 400 ``ProvisionedThroughputExceededException`` (which botocore
retries). Test clients read the tables directly, never throttled.
"""

from __future__ import annotations

import json
import logging

from aiohttp import ClientSession, web

from system.local.faults import Faults

log = logging.getLogger("chat_harness.dynamodb")

_HOP_BY_HOP = {"host", "content-length", "transfer-encoding", "connection", "keep-alive"}
_THROTTLED = {
    "__type": "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
    "message": "The level of configured provisioned throughput for the table was exceeded. "
               "Consider increasing your provisioning level with the UpdateTable API.",
}


def tables_of(body: bytes) -> list[str]:
    """The tables a DynamoDB JSON request touches: TableName, or RequestItems' keys."""
    try:
        request = json.loads(body or b"{}")
    except ValueError:
        return []
    if not isinstance(request, dict):
        return []
    if isinstance(request.get("TableName"), str):
        return [request["TableName"]]
    return [name for name in request.get("RequestItems", {}) if isinstance(name, str)]


class DynamoDBProxy:
    def __init__(self, backend_url: str, faults: Faults) -> None:
        self.backend_url = backend_url.rstrip("/")
        self.faults = faults
        self._session: ClientSession | None = None
        app = web.Application(client_max_size=32 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._forward)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)

    async def start(self, host: str) -> str:
        self._session = ClientSession(auto_decompress=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, 0, backlog=1024)
        await site.start()
        return f"http://{host}:{self._runner.addresses[0][1]}"

    async def _forward(self, request: web.Request) -> web.Response:
        body = await request.read()
        throttled = [table for table in tables_of(body) if self.faults.throttle(table)]
        if throttled:
            log.info("throttled %s on %s (injected fault)",
                     request.headers.get("X-Amz-Target", "?"), throttled[0])
            return web.Response(status=400, text=json.dumps(_THROTTLED),
                                content_type="application/x-amz-json-1.0")
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
        async with self._session.request(request.method, self.backend_url + request.path_qs,
                                         headers=headers, data=body) as answer:
            payload = await answer.read()
            reply_headers = {k: v for k, v in answer.headers.items()
                             if k.lower() not in _HOP_BY_HOP}
            return web.Response(status=answer.status, body=payload, headers=reply_headers)

    async def stop(self) -> None:
        await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()
