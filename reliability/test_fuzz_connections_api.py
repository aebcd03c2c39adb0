"""Hypothesis calls @connections as a stranger, a confused client or the chat might:
any method, a live, unknown or malformed connection id, bodies up to past the 128 KB
limit, the stack's own signature, none, one with another secret, another key, or one
too old, and another stage. Each gets AWS's answer (the model below); a live
connection gets exactly what was allowed through; the canary still chats after each."""

from __future__ import annotations

import ssl
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from botocore.awsrequest import AWSRequest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from system.apigateway_quotas import MANAGEMENT_PAYLOAD_BYTES
from system.client import BlockingChatClient
from system.client.signing import sign_at
from system.local.apigateway.ids import new_connection_id

STALE = timedelta(minutes=6)  # SigV4 allows 5 minutes of clock skew


@dataclass(frozen=True)
class Call:
    method: str
    target: str  # live, unknown or malformed
    body_bytes: int
    signature: str  # own, none, other-secret, other-key, stale
    right_stage: bool

    def expected_status(self) -> int:
        """Authentication first (every refusal 403), then the route (only GET, POST and
        DELETE on /{stage}/@connections/{id}, else 403), then POST's 413 for Data over
        128 KB whatever the id, then 400 for an id that cannot be one, 410 for one that
        is not open, and success."""
        if self.signature != "own" or self.method not in ("GET", "POST", "DELETE"):
            return 403
        if not self.right_stage:
            return 403
        if self.method == "POST" and self.body_bytes > MANAGEMENT_PAYLOAD_BYTES:
            return 413
        if self.target == "malformed":
            return 400
        if self.target == "unknown":
            return 410
        return {"GET": 200, "POST": 200, "DELETE": 204}[self.method]


calls = st.builds(
    Call,
    method=st.sampled_from(["POST", "POST", "GET", "DELETE", "PUT", "PATCH"]),
    target=st.sampled_from(["live", "live", "unknown", "malformed"]),
    body_bytes=st.sampled_from([0, 64, MANAGEMENT_PAYLOAD_BYTES, MANAGEMENT_PAYLOAD_BYTES + 1]),
    signature=st.sampled_from(["own", "own", "own", "none", "other-secret", "other-key",
                               "stale"]),
    right_stage=st.booleans() | st.just(True),
)


def send(stack, call: Call, connection_id: str, body: bytes) -> int:
    stage = stack.stage if call.right_stage else f"{stack.stage}x"
    host = stack.management_endpoint.split("/")[2]
    url = f"https://{host}/{stage}/@connections/{connection_id.replace('=', '%3D')}"
    request = AWSRequest(call.method, url, data=body)
    credentials = dict(stack.credentials)
    if call.signature == "other-secret":
        credentials["aws_secret_access_key"] += "x"
    if call.signature == "other-key":
        credentials["aws_access_key_id"] = "LOCALNOSUCHKEY000"
    if call.signature != "none":
        moment = datetime.now(UTC) - (STALE if call.signature == "stale" else timedelta())
        sign_at(request, credentials, stack.region, moment)
    prepared = urllib.request.Request(url, data=body or None, method=call.method,
                                      headers=dict(request.headers))
    tls = ssl.create_default_context(cafile=stack.ca_bundle)
    try:
        with urllib.request.urlopen(prepared, context=tls, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


@settings(max_examples=80, deadline=None, suppress_health_check=[
    HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(call=calls)
def test_connections_api_answers_as_aws_does(chat_stack, canary, call):
    stack = chat_stack.file
    live = BlockingChatClient(stack.websocket_url)
    try:
        connection_id = {"live": live.whoami(), "unknown": new_connection_id(),
                         "malformed": "not-an-id"}[call.target]
        marker = f"probe-{new_connection_id()}"
        body = marker.encode().ljust(call.body_bytes, b" ") if call.body_bytes else b""
        expected = call.expected_status()
        assert send(stack, call, connection_id, body) == expected
        if call.target == "live" and expected == 204:
            assert live.closed() == 1000
        elif call.target == "live":
            # whatever was allowed through arrives before the answer to this whoami
            live.whoami()
            arrived = live.frames(lambda f: marker in f.text)
            assert len(arrived) == (expected == 200 and call.method == "POST" and bool(body))
    finally:
        live.close()
    canary.check()
