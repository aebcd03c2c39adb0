"""Where a local stack listens for a ``--host``, what its certificate names, and how its
logs are kept across runs: the rules, without starting a stack."""

from __future__ import annotations

import asyncio
import ssl

import pytest

from system.local.processes import LOOPBACK
from system.local.stack import (
    LOG_RUNS_KEPT,
    exposure_warning,
    is_loopback,
    management_hosts,
    start_run_logs,
)
from system.local.tls import LocalTls, certificate_names, local_tls


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "localhost", "::1"])
def test_a_loopback_host_is_served_without_warning(host):
    assert is_loopback(host)
    assert exposure_warning(host) is None


@pytest.mark.parametrize("host", ["192.0.2.7", "0.0.0.0", "fd00::2", "chat.example.test"])
def test_any_other_host_gets_a_one_line_warning(host):
    warning = exposure_warning(host)
    assert not is_loopback(host)
    assert warning is not None and "\n" not in warning
    assert f"--host {host}" in warning and "anyone on that network can connect" in warning


@pytest.mark.parametrize("host, hosts", [
    ("127.0.0.1", ("127.0.0.1",)),
    ("localhost", ("localhost",)),
    ("0.0.0.0", ("0.0.0.0",)),  # every IPv4 address, loopback included
    ("192.0.2.7", ("192.0.2.7", LOOPBACK)),
    ("127.0.0.2", ("127.0.0.2", LOOPBACK)),
    ("chat.example.test", ("chat.example.test", LOOPBACK)),
])
def test_management_listens_on_the_host_and_on_loopback_for_the_control_api(host, hosts):
    assert management_hosts(host) == hosts


def test_the_certificate_names_the_host_and_loopback_once_each():
    assert certificate_names("192.0.2.7") == ("192.0.2.7", "127.0.0.1", "localhost")
    assert certificate_names("127.0.0.1") == ("127.0.0.1", "localhost")
    assert certificate_names("localhost") == ("localhost", "127.0.0.1")


async def handshake(tls: LocalTls, name: str) -> None:
    """A TLS handshake with a server holding the stack's certificate, verified as a client
    that connected to ``name`` verifies it (the server itself listens on loopback)."""
    server = await asyncio.start_server(lambda reader, writer: writer.close(), LOOPBACK, 0,
                                        ssl=tls.server_context)
    port = server.sockets[0].getsockname()[1]
    client = ssl.create_default_context(cafile=str(tls.ca_bundle))
    try:
        _, writer = await asyncio.open_connection(LOOPBACK, port, ssl=client,
                                                  server_hostname=name)
        writer.close()
    finally:
        server.close()
        await server.wait_closed()


@pytest.mark.parametrize("host", ["192.0.2.7", "fd00::2", "chat.example.test"])
async def test_clients_of_the_host_and_of_loopback_verify_the_certificate(tmp_path, host):
    """Handlers reach @connections at https://{domainName}/{stage}, domainName being
    the host: an IP address SAN for an address, a DNS SAN for a name."""
    tls = local_tls(tmp_path, host)
    for name in (host, "127.0.0.1", "localhost"):
        await handshake(tls, name)
    with pytest.raises(ssl.SSLCertVerificationError):
        await handshake(tls, "192.0.2.8")


def test_each_start_moves_the_runs_before_aside_and_keeps_the_last_few(tmp_path):
    logs = tmp_path / "logs"
    for run in range(7):
        current = start_run_logs(logs, runs_kept=3)
        assert current == logs and list(current.iterdir()) == []
        (current / "run").write_text(str(run))
    kept = sorted(path.name for path in tmp_path.iterdir())
    assert kept == ["logs", "logs.1", "logs.2"]
    assert [(tmp_path / name / "run").read_text() for name in kept] == ["6", "5", "4"]


def test_by_default_a_handful_of_runs_is_kept(tmp_path):
    for _ in range(LOG_RUNS_KEPT + 2):
        start_run_logs(tmp_path / "logs")
    assert len(list(tmp_path.iterdir())) == LOG_RUNS_KEPT
