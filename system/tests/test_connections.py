"""The @connections API's answers, on the registry alone (no sockets)."""

import pytest

from system.apigateway_quotas import MANAGEMENT_PAYLOAD_BYTES
from system.local.apigateway.connections import ConnectionRegistry, payload_refusal
from system.local.apigateway.ids import new_connection_id
from system.local.apigateway.limits import ApiLimits, close_deadline

NOW = 1_795_000_000_000


@pytest.fixture
def registry():
    return ConnectionRegistry()


def open_connection(registry):
    connection = registry.begin("203.0.113.9", "test-agent/1.0", NOW)
    registry.open(connection.connection_id)
    return connection.connection_id


def gone(answer):
    return (answer.status, answer.error_type) == (410, "GoneException")


def test_post_to_open_connection_is_200(registry):
    assert registry.post(open_connection(registry), 10).status == 200


def test_post_during_connect_is_gone(registry):
    connecting = registry.begin("203.0.113.9", None, NOW)
    assert gone(registry.post(connecting.connection_id, 10))


def test_post_to_unknown_or_closed_connection_is_gone(registry):
    connection_id = open_connection(registry)
    registry.close(connection_id)
    assert gone(registry.post(connection_id, 10))
    assert gone(registry.post(new_connection_id(), 10))


def test_a_closing_connection_is_gone_for_every_call(registry):
    """From the first close frame (either way) or a lost socket until the socket is gone."""
    connection_id = open_connection(registry)
    registry.closing(connection_id)
    assert gone(registry.post(connection_id, 10))
    assert gone(registry.describe(connection_id))
    assert gone(registry.delete(connection_id))
    assert len(registry) == 0


def test_a_send_that_finds_the_socket_closing_is_gone_and_so_is_the_next_post(registry):
    connection_id = open_connection(registry)
    assert registry.post(connection_id, 10).status == 200
    assert gone(registry.undelivered(connection_id))
    assert gone(registry.post(connection_id, 10))


def test_a_delivered_post_is_activity_that_keeps_the_connection_from_idling(registry):
    connection_id = open_connection(registry)
    limits = ApiLimits(idle_timeout_s=600)
    assert registry.post(connection_id, 10).status == 200
    registry.delivered(connection_id, NOW + 300_000)
    connection = registry.get(connection_id)
    assert registry.describe(connection_id).body["lastActiveAt"] == "2026-11-18T11:11:40.000Z"
    deadline = close_deadline(connection.connected_at_ms, connection.last_active_at_ms, limits)
    assert deadline.at_ms == NOW + 900_000


@pytest.mark.parametrize("bad_id", ["x", "not an id", "AAAAAAAAAAAAAAAA", "a/b=", ""])
def test_malformed_id_is_400(registry, bad_id):
    answer = registry.post(bad_id, 10)
    assert (answer.status, answer.error_type) == (400, "BadRequestException")


def test_payload_limit_is_131072_bytes(registry):
    connection_id = open_connection(registry)
    assert registry.post(connection_id, MANAGEMENT_PAYLOAD_BYTES).status == 200
    answer = registry.post(connection_id, MANAGEMENT_PAYLOAD_BYTES + 1)
    assert (answer.status, answer.error_type) == (413, "PayloadTooLargeException")


def test_payload_limit_comes_before_whether_the_connection_exists():
    """The server answers an oversize Content-Length without reading the body."""
    assert payload_refusal(MANAGEMENT_PAYLOAD_BYTES) is None
    answer = payload_refusal(MANAGEMENT_PAYLOAD_BYTES + 1)
    assert (answer.status, answer.error_type) == (413, "PayloadTooLargeException")
    oversize = ConnectionRegistry().post(new_connection_id(), MANAGEMENT_PAYLOAD_BYTES + 1)
    assert oversize.status == 413


def test_get_describes_the_connection(registry):
    connection_id = open_connection(registry)
    registry.touch(connection_id, NOW + 1500)
    answer = registry.describe(connection_id)
    assert answer.status == 200
    assert answer.body == {
        "connectedAt": "2026-11-18T11:06:40.000Z",
        "identity": {"sourceIp": "203.0.113.9", "userAgent": "test-agent/1.0"},
        "lastActiveAt": "2026-11-18T11:06:41.500Z",
    }


def test_delete_is_204_then_gone(registry):
    connection_id = open_connection(registry)
    assert registry.delete(connection_id).status == 204
    assert gone(registry.post(connection_id, 1))
    assert gone(registry.delete(connection_id))


def test_a_connection_that_went_during_its_handshake_does_not_open(registry):
    connection = registry.begin("203.0.113.9", None, NOW)
    registry.close(connection.connection_id)
    assert not registry.open(connection.connection_id)
    assert gone(registry.post(connection.connection_id, 1))
