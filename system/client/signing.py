"""SigV4 for @connections requests signed at any moment (boto3 signs only at the present):
for tests of the signatures the local stack accepts and refuses. botocore's own signer
does the work."""

from __future__ import annotations

from datetime import datetime

from botocore.auth import SIGV4_TIMESTAMP, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

SERVICE = "execute-api"


def sign_at(request, credentials: dict[str, str], region: str, moment: datetime) -> None:
    """Set ``request``'s X-Amz-Date and Authorization headers as botocore would at
    ``moment``, signing its method, URL and body (and the host and date headers) with
    ``credentials`` (the stack file's ``aws_access_key_id`` and ``aws_secret_access_key``).
    ``request`` is a botocore AWSRequest or the AWSPreparedRequest of a before-send hook."""
    stamp = moment.strftime(SIGV4_TIMESTAMP)
    signed = AWSRequest(request.method, request.url, data=request.body,
                        headers={"X-Amz-Date": stamp})
    signed.context["timestamp"] = stamp
    signer = SigV4Auth(Credentials(credentials["aws_access_key_id"],
                                   credentials["aws_secret_access_key"]), SERVICE, region)
    signature = signer.signature(signer.string_to_sign(signed, signer.canonical_request(signed)),
                                 signed)
    signed_headers = signer.signed_headers(signer.headers_to_sign(signed))
    for name in ("X-Amz-Date", "Authorization"):
        if name in request.headers:
            del request.headers[name]
    request.headers["X-Amz-Date"] = stamp
    request.headers["Authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={signer.scope(signed)}, "
        f"SignedHeaders={signed_headers}, Signature={signature}")
