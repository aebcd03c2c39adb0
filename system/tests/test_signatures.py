"""SigV4 verification of @connections requests, on requests boto3 itself signed (no
socket: each is caught just before it would be sent). The clock is a value."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import cache

import boto3
import pytest
from botocore.auth import SIGV4_TIMESTAMP
from hypothesis import given
from hypothesis import strategies as st

from system.local.apigateway.signatures import (
    MISSING_TOKEN,
    SIGNATURE_MISMATCH,
    UNKNOWN_ACCESS_KEY,
    SignedRequest,
    signature_refusal,
)

HOST = "127.0.0.1:8766"
REGION = "us-east-1"
ACCESS_KEY = "LOCALTESTKEY0000000A"
SECRET = "the-stack-secret"
SECRET_KEYS = {ACCESS_KEY: SECRET}
FIVE_MINUTES = timedelta(minutes=5)  # SigV4's allowed clock skew, either way


class _Caught(Exception):
    def __init__(self, request) -> None:
        super().__init__("caught before sending")
        self.request = request


@cache
def _client(access_key: str, secret: str):
    client = boto3.client("apigatewaymanagementapi", endpoint_url=f"https://{HOST}/local",
                          region_name=REGION, aws_access_key_id=access_key,
                          aws_secret_access_key=secret)

    def catch(request, **_):
        raise _Caught(request)

    client.meta.events.register("before-send", catch)
    return client


def boto3_request(operation: str = "post_to_connection", *, connection_id: str = "Lx0bFfyWoAMCJ-Q=",
                  data: bytes = b'{"probe":1}', access_key: str = ACCESS_KEY,
                  secret: str = SECRET) -> SignedRequest:
    """The request boto3 sends for ``operation``, as the server receives it (with the
    Host header urllib3 adds)."""
    arguments = {"ConnectionId": connection_id}
    if operation == "post_to_connection":
        arguments["Data"] = data
    with pytest.raises(_Caught) as caught:
        getattr(_client(access_key, secret), operation)(**arguments)
    sent = caught.value.request
    headers = {name: value.decode() if isinstance(value, bytes) else value
               for name, value in sent.headers.items()}
    return SignedRequest(sent.method, sent.url, {**headers, "Host": HOST}, sent.body or b"")


def signed_at(request: SignedRequest) -> datetime:
    return datetime.strptime(request.headers["X-Amz-Date"], SIGV4_TIMESTAMP).replace(tzinfo=UTC)


def check(request: SignedRequest, now: datetime | None = None):
    return signature_refusal(request, SECRET_KEYS, now or signed_at(request))


def with_headers(request: SignedRequest, **changes: str | None) -> SignedRequest:
    headers = {**request.headers, **changes}
    return SignedRequest(request.method, request.url,
                         {k: v for k, v in headers.items() if v is not None}, request.body)


def refused(answer, error_type: str) -> bool:
    return answer is not None and (answer.status, answer.error_type) == (403, error_type)


@pytest.mark.parametrize("operation", ["post_to_connection", "get_connection",
                                       "delete_connection"])
def test_what_boto3_signs_with_the_stacks_key_is_accepted(operation):
    assert check(boto3_request(operation)) is None


@given(connection_id=st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]),
                             min_size=1, max_size=40),
       data=st.binary(max_size=300))
def test_any_id_and_data_boto3_signs_verify_and_no_changed_byte_does(connection_id, data):
    request = boto3_request(connection_id=connection_id, data=data)
    assert check(request) is None
    tampered = SignedRequest(request.method, request.url, request.headers, data + b" ")
    assert check(tampered) == SIGNATURE_MISMATCH


def test_the_percent_encoded_path_is_what_is_signed():
    request = boto3_request(connection_id="abc=")
    assert request.url.endswith("/local/@connections/abc%3D")
    decoded = SignedRequest(request.method, request.url.replace("%3D", "="), request.headers,
                            request.body)
    assert check(decoded) == SIGNATURE_MISMATCH


def test_a_wrong_secret_is_a_signature_mismatch():
    answer = check(boto3_request(secret="not-the-stack-secret"))
    assert answer == SIGNATURE_MISMATCH
    assert refused(answer, "InvalidSignatureException")
    assert answer.body["message"].startswith(
        "The request signature we calculated does not match the signature you provided.")


def test_an_unknown_access_key_is_unrecognized():
    answer = check(boto3_request(access_key="AKIAOTHERACCOUNT0000"))
    assert answer == UNKNOWN_ACCESS_KEY
    assert answer.body == {"message": "The security token included in the request is invalid."}
    assert refused(answer, "UnrecognizedClientException")


def test_a_request_sent_to_another_connection_is_a_mismatch():
    request = boto3_request(connection_id="abc=")
    moved = SignedRequest(request.method, request.url.replace("abc%3D", "abd%3D"),
                          request.headers, request.body)
    assert check(moved) == SIGNATURE_MISMATCH
    assert check(SignedRequest("DELETE", request.url, request.headers, request.body)) == \
        SIGNATURE_MISMATCH


def test_only_the_signed_headers_count():
    request = boto3_request()
    assert check(with_headers(request, **{"X-Forwarded-For": "203.0.113.9"})) is None
    assert check(with_headers(request, Host="127.0.0.1:9999")) == SIGNATURE_MISMATCH


def test_no_authorization_is_missing_authentication_token():
    answer = check(with_headers(boto3_request(), Authorization=None))
    assert answer == MISSING_TOKEN
    assert answer.body == {"message": "Missing Authentication Token"}
    assert refused(answer, "ForbiddenException")


@pytest.mark.parametrize("authorization", ["Bearer abc", "AWS4-HMAC-SHA256", "x"])
def test_an_authorization_that_is_not_sigv4_says_what_it_lacks(authorization):
    answer = check(with_headers(boto3_request(), Authorization=authorization))
    assert refused(answer, "IncompleteSignatureException")
    for parameter in ("Credential", "Signature", "SignedHeaders"):
        assert f"Authorization header requires '{parameter}' parameter." in answer.body["message"]


def test_without_x_amz_date_the_signature_is_incomplete():
    request = boto3_request()
    answer = signature_refusal(with_headers(request, **{"X-Amz-Date": None}), SECRET_KEYS,
                               signed_at(request))
    assert refused(answer, "IncompleteSignatureException")
    assert "'X-Amz-Date'" in answer.body["message"]


@pytest.mark.parametrize("amz_date", ["2026-12-01T17:32:32Z", "20261201T1732Z", "20261301T173232Z"])
def test_an_x_amz_date_not_in_basic_format_is_refused(amz_date):
    request = boto3_request()
    answer = signature_refusal(with_headers(request, **{"X-Amz-Date": amz_date}), SECRET_KEYS,
                               signed_at(request))
    assert refused(answer, "IncompleteSignatureException")
    assert answer.body["message"].startswith("Date must be in ISO-8601 'basic format'")


def test_a_credential_scoped_to_another_service_is_refused():
    request = boto3_request()
    other = request.headers["Authorization"].replace("/execute-api/", "/dynamodb/")
    answer = check(with_headers(request, Authorization=other))
    assert refused(answer, "InvalidSignatureException")
    assert answer.body["message"] == "Credential should be scoped to correct service: 'execute-api'."


def test_a_signature_is_good_for_five_minutes_either_way():
    request = boto3_request()
    at = signed_at(request)
    assert check(request, at + FIVE_MINUTES) is None
    assert check(request, at - FIVE_MINUTES) is None


def test_a_signature_older_than_five_minutes_has_expired():
    request = boto3_request()
    amz_date = request.headers["X-Amz-Date"]
    now = signed_at(request) + FIVE_MINUTES + timedelta(seconds=1)
    answer = check(request, now)
    assert refused(answer, "InvalidSignatureException")
    earliest = (now - FIVE_MINUTES).strftime(SIGV4_TIMESTAMP)
    assert answer.body["message"] == (f"Signature expired: {amz_date} is now earlier than "
                                      f"{earliest} ({now.strftime(SIGV4_TIMESTAMP)} - 5 min.)")


def test_a_signature_from_more_than_five_minutes_ahead_is_not_yet_current():
    request = boto3_request()
    now = signed_at(request) - FIVE_MINUTES - timedelta(seconds=1)
    answer = check(request, now)
    assert refused(answer, "InvalidSignatureException")
    assert answer.body["message"].startswith(
        f"Signature not yet current: {request.headers['X-Amz-Date']} is still later than ")


@pytest.mark.parametrize("signature", ["0" * 64, "é" * 64, "", "\udcff"])
def test_a_forged_signature_is_a_mismatch_whatever_its_characters(signature):
    request = boto3_request()
    head, _, _ = request.headers["Authorization"].rpartition("Signature=")
    assert check(with_headers(request, Authorization=f"{head}Signature={signature}")) == \
        SIGNATURE_MISMATCH


def test_a_host_that_is_no_host_is_a_mismatch_not_an_error():
    request = boto3_request()
    broken = SignedRequest(request.method, request.url.replace(HOST, "[::1"),
                           {**request.headers, "Host": "[::1"}, request.body)
    assert check(broken) == SIGNATURE_MISMATCH
