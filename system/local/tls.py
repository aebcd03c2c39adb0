"""A locally generated CA and server certificate for the @connections endpoint.

Handlers written for AWS build the management endpoint as
``https://{domainName}/{stage}``; serving it over TLS with a CA handed to the
workers through ``AWS_CA_BUNDLE`` lets them run unchanged. trustme makes the CA.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

import trustme


@dataclass(frozen=True)
class LocalTls:
    ca_bundle: Path
    server_context: ssl.SSLContext


def local_tls(directory: Path, hosts: tuple[str, ...] = ("127.0.0.1", "localhost")) -> LocalTls:
    directory.mkdir(parents=True, exist_ok=True)
    authority = trustme.CA(organization_name="chat-harness local stack")
    certificate = authority.issue_cert(*hosts)
    ca_bundle = directory / "ca.pem"
    authority.cert_pem.write_to_path(str(ca_bundle))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    certificate.configure_cert(context)
    return LocalTls(ca_bundle, context)
