"""Is an @connections request signed, with SigV4, by a key the stack made? AWS's answers.

@connections is an execute-api endpoint with IAM authorisation; API Gateway answers
(all 403, the error type in ``x-amzn-ErrorType``, the text in ``{"message": ...}``):

- no Authorization header: ForbiddenException "Missing Authentication Token";
- a header without Credential, SignedHeaders or Signature, or no X-Amz-Date:
  IncompleteSignatureException, naming what is missing;
- a credential scoped to another service: InvalidSignatureException;
- an access key id it does not know: UnrecognizedClientException "The security token
  included in the request is invalid.";
- an X-Amz-Date more than 5 minutes from its clock: InvalidSignatureException
  "Signature expired: ..." (or "Signature not yet current: ...");
- any other signature than the one it computes: InvalidSignatureException "The request
  signature we calculated does not match the signature you provided. ...".

The signature is computed by botocore's own SigV4 signer (canonical request,
string to sign, signing key), over the request as the client signed it: the URL
``https://{Host}{raw path}`` (boto3 signs the path it sends, '=' in a connection id
already as %3D), the headers named in SignedHeaders, the body, X-Amz-Date. The
body is always hashed here, never taken from an X-Amz-Content-SHA256 header, so a
signature vouches for the bytes that arrived. The local stack reads the signing time
from X-Amz-Date only (boto3 always sends it), not from a Date header, and signs for the
region the credential scope names, whichever it is.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from botocore.auth import SIGV4_TIMESTAMP, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.compat import HTTPHeaders
from botocore.credentials import Credentials

from system.local.apigateway.connections import Answer

ALGORITHM = "AWS4-HMAC-SHA256"
SERVICE = "execute-api"
MAX_CLOCK_SKEW = timedelta(minutes=5)  # SigV4: a signature is valid 5 minutes either way

MISSING_TOKEN = Answer.error(403, "ForbiddenException", "Missing Authentication Token")
UNKNOWN_ACCESS_KEY = Answer.error(403, "UnrecognizedClientException",
                                  "The security token included in the request is invalid.")
SIGNATURE_MISMATCH = Answer.error(
    403, "InvalidSignatureException",
    "The request signature we calculated does not match the signature you provided. "
    "Check your AWS Secret Access Key and signing method. "
    "Consult the service documentation for details.")


@dataclass(frozen=True)
class SignedRequest:
    """An HTTP request as it arrived, the way SigV4 sees it."""

    method: str
    url: str  # https://{Host header}{raw path and query}, as the client signed it
    headers: Mapping[str, str]  # every header; items() may repeat a name
    body: bytes


class _AsSigned(SigV4Auth):
    """botocore's SigV4 over exactly the headers the client says it signed (botocore
    itself would pick all but a few, and add Host if absent)."""

    def __init__(self, credentials: Credentials, service: str, region: str,
                 signed: HTTPHeaders) -> None:
        super().__init__(credentials, service, region)
        self._signed = signed

    def headers_to_sign(self, request: AWSRequest) -> HTTPHeaders:
        return self._signed


def _incomplete(message: str) -> Answer:
    return Answer.error(403, "IncompleteSignatureException", message)


def _invalid(message: str) -> Answer:
    return Answer.error(403, "InvalidSignatureException", message)


def _parameters(authorization: str) -> dict[str, str]:
    """``AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...`` -> its
    parameters; none for another scheme."""
    scheme, _, rest = authorization.strip().partition(" ")
    if scheme != ALGORITHM:
        return {}
    pairs = (part.strip().partition("=") for part in rest.split(","))
    return {name: value for name, equals, value in pairs if equals}


def _signing_time(amz_date: str) -> datetime | None:
    """X-Amz-Date as a UTC time; None unless it is exactly ``yyyyMMddTHHmmssZ``."""
    try:
        moment = datetime.strptime(amz_date, SIGV4_TIMESTAMP)
    except ValueError:
        return None
    return moment.replace(tzinfo=UTC) if moment.strftime(SIGV4_TIMESTAMP) == amz_date else None


def _skew_refusal(amz_date: str, signed_at: datetime, now: datetime) -> Answer | None:
    def stamp(moment: datetime) -> str:
        return moment.strftime(SIGV4_TIMESTAMP)

    if signed_at < now - MAX_CLOCK_SKEW:
        return _invalid(f"Signature expired: {amz_date} is now earlier than "
                        f"{stamp(now - MAX_CLOCK_SKEW)} ({stamp(now)} - 5 min.)")
    if signed_at > now + MAX_CLOCK_SKEW:
        return _invalid(f"Signature not yet current: {amz_date} is still later than "
                        f"{stamp(now + MAX_CLOCK_SKEW)} ({stamp(now)} + 5 min.)")
    return None


def _signature(request: SignedRequest, signed_headers: str, credentials: Credentials,
               service: str, region: str, amz_date: str) -> str:
    """The signature botocore computes for ``request`` signed at ``amz_date``."""
    names = {name.strip().lower() for name in signed_headers.split(";")}
    signed = HTTPHeaders()
    for name, value in request.headers.items():
        if name.lower() in names:
            signed[name.lower()] = value
    signer = _AsSigned(credentials, service, region, signed)
    rebuilt = AWSRequest(method=request.method, url=request.url, data=request.body)
    rebuilt.context["timestamp"] = amz_date
    return signer.signature(signer.string_to_sign(rebuilt, signer.canonical_request(rebuilt)),
                            rebuilt)


def signature_refusal(request: SignedRequest, secret_keys: Mapping[str, str],
                      now: datetime, service: str = SERVICE) -> Answer | None:
    """None when ``request`` carries a valid SigV4 signature for ``service`` (execute-api,
    or lambda for the local Invoke API) by one of ``secret_keys`` (access key id ->
    secret access key), made within 5 minutes of ``now`` (UTC); AWS's 403 otherwise."""
    headers = {name.lower(): value for name, value in request.headers.items()}
    authorization = headers.get("authorization")
    if not authorization:
        return MISSING_TOKEN
    parameters = _parameters(authorization)
    missing = [f"Authorization header requires '{name}' parameter."
               for name in ("Credential", "Signature", "SignedHeaders") if name not in parameters]
    amz_date = headers.get("x-amz-date")
    if not amz_date:
        missing.append("Authorization header requires existence of an 'X-Amz-Date' header.")
    if missing:
        return _incomplete(" ".join([*missing, f"Authorization={authorization}"]))

    scope = parameters["Credential"].split("/")
    if len(scope) != 5 or scope[4] != "aws4_request":
        return _incomplete(f"Credential must be <access key id>/<yyyymmdd>/<region>/{service}"
                           f"/aws4_request, got '{parameters['Credential']}'.")
    access_key, _, region, scoped_service, _ = scope
    if scoped_service != service:
        return _invalid(f"Credential should be scoped to correct service: '{service}'.")
    secret_key = secret_keys.get(access_key)
    if secret_key is None:
        return UNKNOWN_ACCESS_KEY
    if (signed_at := _signing_time(amz_date)) is None:
        return _incomplete(f"Date must be in ISO-8601 'basic format' (yyyyMMdd'T'HHmmss'Z'). "
                           f"Got '{amz_date}'.")
    if (skewed := _skew_refusal(amz_date, signed_at, now)) is not None:
        return skewed

    try:
        expected = _signature(request, parameters["SignedHeaders"],
                              Credentials(access_key, secret_key), service, region, amz_date)
    except ValueError:  # a URL no client can have signed, e.g. a Host that is no host
        return SIGNATURE_MISMATCH
    provided = parameters["Signature"].encode(errors="replace")
    if not hmac.compare_digest(expected.encode(), provided):
        return SIGNATURE_MISMATCH
    return None
