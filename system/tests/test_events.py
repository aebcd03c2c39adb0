"""Event shapes, as AWS sends them to Lambda proxy integrations."""

from system.local.apigateway.connections import ConnectionRegistry
from system.local.apigateway.events import Api, connect_event, disconnect_event, message_event
from system.local.apigateway.ids import (
    CONNECTION_ID_PATTERN,
    MESSAGE_ID_PATTERN,
    REQUEST_ID_PATTERN,
)

API = Api(api_id="abc123defg", stage="local", domain_name="127.0.0.1:8766")
NOW = 1_795_000_000_000
COMMON = {"routeKey", "eventType", "extendedRequestId", "requestTime", "messageDirection", "stage",
          "connectedAt", "requestTimeEpoch", "identity", "requestId", "domainName",
          "connectionId", "apiId"}


def a_connection():
    return ConnectionRegistry().begin("198.51.100.7", "agent/2", NOW)


def test_connect_event():
    connection = a_connection()
    event = connect_event(API, connection, [("Host", "h"), ("X-Multi", "a"), ("X-Multi", "b")],
                          "token=t&x=1&x=2", NOW + 5)
    context = event["requestContext"]
    assert set(context) == COMMON
    assert (context["routeKey"], context["eventType"]) == ("$connect", "CONNECT")
    assert context["connectedAt"] == NOW and context["requestTimeEpoch"] == NOW + 5
    assert context["connectionId"] == connection.connection_id
    assert context["identity"] == {"sourceIp": "198.51.100.7", "userAgent": "agent/2"}
    assert context["domainName"] == "127.0.0.1:8766" and context["stage"] == "local"
    assert event["headers"]["X-Multi"] == "a,b"
    assert event["multiValueHeaders"]["X-Multi"] == ["a", "b"]
    assert event["queryStringParameters"] == {"token": "t", "x": "2"}
    assert event["multiValueQueryStringParameters"]["x"] == ["1", "2"]


def test_message_event_has_body_and_message_id():
    connection = a_connection()
    event = message_event(API, connection, "sendmessage", '{"action":"sendmessage"}', NOW + 9)
    context = event["requestContext"]
    assert set(context) == COMMON | {"messageId"}
    assert (context["routeKey"], context["eventType"]) == ("sendmessage", "MESSAGE")
    assert event["body"] == '{"action":"sendmessage"}' and event["isBase64Encoded"] is False
    assert context["connectedAt"] == NOW


def test_disconnect_event_has_status_and_reason():
    connection = a_connection()
    event = disconnect_event(API, connection, 1006, "dropped", NOW + 60_000)
    context = event["requestContext"]
    assert set(context) == COMMON | {"disconnectStatusCode", "disconnectReason"}
    assert context["eventType"] == "DISCONNECT" and context["disconnectStatusCode"] == 1006
    assert "body" not in event and "messageId" not in context


def test_request_ids_differ_per_event():
    connection = a_connection()
    ids = {message_event(API, connection, "x", "{}", NOW)["requestContext"]["requestId"]
           for _ in range(100)}
    assert len(ids) == 100


def test_ids_in_an_event_have_aws_shapes():
    context = message_event(API, a_connection(), "x", "{}", NOW)["requestContext"]
    assert CONNECTION_ID_PATTERN.fullmatch(context["connectionId"])
    assert REQUEST_ID_PATTERN.fullmatch(context["requestId"])
    assert context["extendedRequestId"] == context["requestId"]
    assert MESSAGE_ID_PATTERN.fullmatch(context["messageId"])
