"""A locally generated CA and server certificate for the @connections endpoint.

Handlers written for AWS build the management endpoint as
``https://{domainName}/{stage}``; serving it over TLS with a CA handed to the
workers through ``AWS_CA_BUNDLE`` lets them run unchanged. trustme makes the CA.
The certificate names the host the stack serves on (an IP address SAN for an
address, a DNS SAN for a name) besides the loopback names: TLS clients check the
name they connect to against it (RFC 6125), and domainName is that host.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

import trustme

from system.local.processes import LOOPBACK


@dataclass(frozen=True)
class LocalTls:
    ca_bundle: Path
    server_context: ssl.SSLContext


def certificate_names(host: str) -> tuple[str, ...]:
    """The names the certificate of a stack serving on ``host`` holds, each once."""
    return tuple(dict.fromkeys((host, LOOPBACK, "localhost")))


def local_tls(directory: Path, host: str = LOOPBACK) -> LocalTls:
    directory.mkdir(parents=True, exist_ok=True)
    authority = trustme.CA(organization_name="chat-harness local stack")
    certificate = authority.issue_cert(*certificate_names(host))
    ca_bundle = directory / "ca.pem"
    authority.cert_pem.write_to_path(str(ca_bundle))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    certificate.configure_cert(context)
    return LocalTls(ca_bundle, context)
