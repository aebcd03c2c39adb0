"""The data plane: its side of @connections, with stand-in sockets (it sends what the
registry allows, and a socket that is closing gets nothing and answers 410), and hostile
messages on a real stack, which reach a route and close nothing."""

from __future__ import annotations

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.protocol import State as SocketState

from system.local.apigateway.events import Api
from system.local.apigateway.limits import ApiLimits
from system.local.apigateway.websocket_server import WebSocketApi
from system.local.faults import Faults


class StandInTransport:
    """What WebSocketApi asks of a socket's transport before a post: is it closing?"""

    def is_closing(self) -> bool:
        return False


class StandInSocket:
    """What WebSocketApi uses of a ``websockets`` server connection to post to it."""

    def __init__(self, state: SocketState = SocketState.OPEN, lost: bool = False) -> None:
        self.transport = StandInTransport()
        self.state = state
        self.lost = lost  # the connection goes while a frame is being sent
        self.sent: list[str | bytes] = []

    async def send(self, frame: str | bytes) -> None:
        if self.lost:
            raise ConnectionClosed(None, None)
        self.sent.append(frame)


@pytest.fixture
def api():
    return WebSocketApi(Api("abc123defg", "local", "127.0.0.1:1"), routes=None, runtime=None,
                        limits=ApiLimits(), faults=Faults())


def connected(api: WebSocketApi, socket: StandInSocket) -> str:
    connection = api.registry.begin("127.0.0.1", None, 0)
    api.registry.open(connection.connection_id)
    api.sockets[connection.connection_id] = socket
    return connection.connection_id


async def test_a_post_to_an_open_socket_is_sent_as_one_message(api):
    socket = StandInSocket()
    connection_id = connected(api, socket)
    assert (await api.post(connection_id, b'{"n":1}')).status == 200
    assert (await api.post(connection_id, b"\xff\xfe")).status == 200
    assert socket.sent == ['{"n":1}', b"\xff\xfe"]  # text when UTF-8, else binary


@pytest.mark.parametrize("state", [SocketState.CLOSING, SocketState.CLOSED])
async def test_a_socket_that_saw_a_close_first_gets_nothing_and_answers_410(api, state):
    socket = StandInSocket(state)
    connection_id = connected(api, socket)
    answer = await api.post(connection_id, b"x")
    assert (answer.status, answer.error_type) == (410, "GoneException")
    assert socket.sent == []
    assert api.describe(connection_id).status == 410


async def test_a_send_that_finds_the_socket_gone_answers_410_and_so_does_the_next(api):
    socket = StandInSocket(lost=True)
    connection_id = connected(api, socket)
    assert (await api.post(connection_id, b"x")).status == 410
    socket.lost = False  # the registry now knows: no second send is tried
    assert (await api.post(connection_id, b"y")).status == 410
    assert socket.sent == []


async def test_a_message_nested_too_deep_to_route_reaches_default_and_the_chat_goes_on(
        chat_stack, clients):
    """30,000 × '[' fits one 32 KB frame and nests deeper than the JSON parser recurses:
    AWS selects $default for a body it cannot evaluate, and the connection stays open."""
    client = await clients(chat_stack.file.websocket_url)
    await client.send("[" * 30_000)
    await client.frame_where(lambda f: f.get("error") == "Invalid request")
    await client.send({"action": "sendmessage", "message": "still here"})
    await client.frame_where(lambda f: f.get("type") == "chat" and f.get("text") == "still here")
