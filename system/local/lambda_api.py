"""Lambda's Invoke API on loopback, so that a handler's ``boto3.client("lambda").invoke``
reaches the local stack's functions (``AWS_ENDPOINT_URL_LAMBDA``), unchanged.

``POST /2015-03-31/functions/{FunctionName}/invocations`` as the Lambda API Reference
("Invoke") describes it, SigV4-signed for the service ``lambda`` with the stack's
credentials:

- ``X-Amz-Invocation-Type: RequestResponse`` (the default): the function runs, 200 with
  its result as the body; a function error is a 200 too, with Lambda's error document
  as the body and ``X-Amz-Function-Error: Unhandled``; a throttle is 429
  TooManyRequestsException. At most 6 MB of payload.
- ``Event``: 202 and an empty body at once; the event waits for an environment in the
  function's queue and runs; a function error is retried up to the function's
  ``async_retries`` times (Lambda's MaximumRetryAttempts, 2 by default), after 1 and
  then 2 minutes, as Lambda does ("Error handling and automatic retries"). At most 1 MB.
- ``DryRun``: 204, nothing runs.

``FunctionName`` is a name, an ARN or a partial ARN (``123456789012:function:Name``),
with no qualifier or ``$LATEST``; anything else is ResourceNotFoundException. A payload
that is not JSON is InvalidRequestContentException. Only ``$LATEST`` exists here.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

from aiohttp import web

from system.local.apigateway.signatures import SignedRequest, signature_refusal
from system.local.aws_latency import AwsLatency
from system.local.lambda_runtime.pool import LambdaRuntime
from system.local.processes import LOOPBACK

SYNC_PAYLOAD_BYTES = 6 * 1024 * 1024
EVENT_PAYLOAD_BYTES = 1024 * 1024
INVOCATION_TYPES = ("RequestResponse", "Event", "DryRun")
# Name formats (Invoke's FunctionName): name, ARN, or partial ARN; optional qualifier.
_FUNCTION_NAME = re.compile(
    r"^(?:arn:aws[a-zA-Z-]*:lambda:[a-z0-9-]+:)?(?:\d{12}:)?(?:function:)?"
    r"(?P<name>[a-zA-Z0-9_.-]+)(?::(?P<qualifier>[a-zA-Z0-9$_.-]+))?$")

_RUNTIME = web.AppKey("runtime", LambdaRuntime)
_SECRET_KEYS = web.AppKey("secret_keys", dict)
_LATENCY = web.AppKey("latency", AwsLatency)
_REGION = web.AppKey("region", str)


def _error(status: int, error_type: str, message: str) -> web.Response:
    """A Lambda API error as boto3 parses it: the type in ``x-amzn-ErrorType``."""
    return web.json_response({"Type": "User", "message": message}, status=status,
                             headers={"x-amzn-ErrorType": error_type})


def function_named(reference: str, qualifier: str | None, functions, region: str) -> str:
    """The local function ``reference`` (Invoke's FunctionName) and ``qualifier`` name, or
    raise LookupError with Lambda's message for one that does not exist."""
    match = _FUNCTION_NAME.match(reference)
    name = match["name"] if match else reference
    qualifiers = {q for q in (match["qualifier"] if match else None, qualifier) if q}
    if match is None or name not in functions or qualifiers - {"$LATEST"}:
        suffix = f":{qualifiers.pop()}" if qualifiers else ""
        raise LookupError(f"Function not found: arn:aws:lambda:{region}:000000000000:"
                          f"function:{name}{suffix}")
    return name


async def _invoke(request: web.Request) -> web.Response:
    body = await request.read()
    refusal = signature_refusal(
        SignedRequest(request.method, f"http://{request.host}{request.raw_path}",
                      request.headers, body),
        request.app[_SECRET_KEYS], datetime.now(UTC), service="lambda")
    if refusal is not None:
        return _error(refusal.status, refusal.error_type, refusal.body["message"])
    runtime, region = request.app[_RUNTIME], request.app[_REGION]
    await request.app[_LATENCY].wait("lambda_invoke_api")
    try:
        function = function_named(request.match_info["function"],
                                  request.query.get("Qualifier"), runtime.functions, region)
    except LookupError as missing:
        return _error(404, "ResourceNotFoundException", str(missing))
    invocation_type = request.headers.get("X-Amz-Invocation-Type", "RequestResponse")
    if invocation_type not in INVOCATION_TYPES:
        return _error(400, "InvalidParameterValueException",
                      f"Unsupported invocation type {invocation_type}")
    limit = EVENT_PAYLOAD_BYTES if invocation_type == "Event" else SYNC_PAYLOAD_BYTES
    if len(body) > limit:
        return _error(413, "RequestTooLargeException",
                      f"Request must be smaller than {limit} bytes for the InvokeFunction "
                      f"operation")
    try:
        event = json.loads(body or b"{}")
    except ValueError:
        return _error(400, "InvalidRequestContentException",
                      "Could not parse request body into json")
    if invocation_type == "DryRun":
        return web.Response(status=204)
    if invocation_type == "Event":
        if runtime.accept_event(function, event) is None:
            return _error(429, "TooManyRequestsException", "Rate Exceeded.")
        return web.Response(status=202)
    outcome = await runtime.invoke(function, event)
    if outcome.rejected:
        return _error(outcome.status_code, outcome.error["errorType"],
                      outcome.error["errorMessage"])
    headers = {"X-Amz-Executed-Version": "$LATEST"}
    if outcome.failed:
        headers["X-Amz-Function-Error"] = "Unhandled"
    return web.Response(status=200, headers=headers, content_type="application/json",
                        text=json.dumps(outcome.error if outcome.failed else outcome.result))


class LambdaApi:
    """Serves the Invoke API on loopback over ``runtime``."""

    def __init__(self, runtime: LambdaRuntime, secret_keys: dict[str, str], region: str,
                 latency: AwsLatency) -> None:
        # Bodies over the limit must reach _invoke to be answered as Lambda answers them.
        app = web.Application(client_max_size=2 * SYNC_PAYLOAD_BYTES)
        app[_RUNTIME] = runtime
        app[_SECRET_KEYS] = secret_keys
        app[_LATENCY] = latency
        app[_REGION] = region
        app.router.add_post("/2015-03-31/functions/{function}/invocations", _invoke)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)

    async def start(self, endpoint: str) -> None:
        """Listen at ``endpoint`` (http://127.0.0.1:PORT), where the functions' boto3
        clients have been told it is."""
        await self._runner.setup()
        port = int(endpoint.rsplit(":", 1)[1])
        await web.TCPSite(self._runner, LOOPBACK, port, backlog=1024).start()

    async def stop(self) -> None:
        await self._runner.cleanup()
