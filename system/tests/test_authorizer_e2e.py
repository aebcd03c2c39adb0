"""A Lambda REQUEST authorizer on $connect, end to end: the test handlers' ``probe``
authorizer (handlers/routes.toml), whose verdict is its identity source, the X-Probe
header, run by the emulator's Lambda workers before $connect."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import websockets
from websockets.exceptions import InvalidStatus

from system.client.polling import eventually
from system.local.stack_fixtures import stack_fixture
from system.tests.conftest import BEHAVIOUR_ROUTES

authorized_stack = stack_fixture(["--routes", str(BEHAVIOUR_ROUTES), "--authorizer", "probe"],
                                 scope="module", doc="The test handlers behind a probe authorizer.")


def probe(verdict: str) -> dict:
    return {"additional_headers": {"X-Probe": verdict}}


def authorizer_runs(stack) -> int:
    log = Path(stack.file.logs_dir) / "Authorize.log"
    return log.read_text().count("START RequestId") if log.exists() else 0


async def test_allowed_the_authorizer_context_reaches_every_later_event(authorized_stack,
                                                                          clients):
    url = authorized_stack.file.websocket_url
    client = await clients(url + "?room=1", **probe("allow"))
    watcher = await clients(url, **probe("allow"))
    await client.send({"action": "echo"})
    [echo] = await client.frames_where(lambda f: "event" in f, count=1)
    authorizer = echo["event"]["requestContext"]["authorizer"]
    api = echo["event"]["requestContext"]
    assert authorizer["principalId"] == "probe-user"
    assert isinstance(authorizer["integrationLatency"], int)
    # What the authorizer's own event held, as it put it in its context (values as strings).
    assert authorizer["seen_type"] == "REQUEST" and authorizer["seen_route"] == "$connect"
    assert authorizer["seen_arn"] == (f"arn:aws:execute-api:us-east-1:000000000000:"
                                      f"{api['apiId']}/{api['stage']}/$connect")
    assert json.loads(authorizer["seen_query"]) == {"room": "1"}
    assert (authorizer["number"], authorizer["flag"]) == ("7", "true")

    await client.close()
    [notice] = await watcher.frames_where(lambda f: "disconnect_event" in f, count=1)
    assert notice["disconnect_event"]["requestContext"]["authorizer"] == authorizer


async def test_a_missing_identity_source_is_401_without_invoking_the_authorizer(
        authorized_stack, clients):
    runs = authorizer_runs(authorized_stack)
    with pytest.raises(InvalidStatus) as refused:
        await websockets.connect(authorized_stack.file.websocket_url)
    assert refused.value.response.status_code == 401
    await clients(authorized_stack.file.websocket_url, **probe("allow"))
    eventually(lambda: authorizer_runs(authorized_stack) == runs + 1,
               "one authorizer run: the allowed connection's")


@pytest.mark.parametrize(("verdict", "status"), [
    ("deny", 403), ("unauthorized", 401), ("crash", 500), ("nested", 500), ("hold", 500)])
async def test_the_authorizers_verdict_is_api_gateways_status(authorized_stack, verdict,
                                                              status):
    with pytest.raises(InvalidStatus) as refused:
        await websockets.connect(authorized_stack.file.websocket_url, **probe(verdict))
    assert refused.value.response.status_code == status
