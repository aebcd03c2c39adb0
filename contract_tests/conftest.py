"""The contract suite's target (a local stack, or ``--stack-file``), clients, tables, faults.

Nothing here assumes a local target except the ``faults`` fixture, which skips
the tests that need it where the stack file offers no control endpoint.
"""

from __future__ import annotations

import json
import ssl
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

from contract_tests.client import ChatClient
from contract_tests.tables import Tables, eventually
from system.client import WAIT_TIMEOUT_S
from system.local.stack_fixtures import stack_fixture
from system.stackfile import StackFile


def pytest_addoption(parser):
    parser.addoption("--stack-file", type=Path, default=None,
                     help="run the contracts against this stack (default: a local stack)")
    parser.addoption("--routes", type=Path, default=None,
                     help="local stack only: run these handlers (a routes TOML file)")


def local_stack_arguments(request: pytest.FixtureRequest) -> list[str]:
    routes = request.config.getoption("--routes")
    return ["--routes", str(routes)] if routes else []


local_stack = stack_fixture(local_stack_arguments, doc="A local stack running the --routes handlers.")


@pytest.fixture(scope="session")
def stack(request) -> StackFile:
    """The target: the ``--stack-file`` stack, or else a local stack started for the run."""
    stack_file = request.config.getoption("--stack-file")
    if stack_file is not None:
        return StackFile.read(stack_file)
    return request.getfixturevalue("local_stack").file


@pytest.fixture
def clients(stack):
    """``clients()`` opens a ChatClient on the stack; every frame any of them got must
    follow the protocol, and all are closed after the test."""
    opened: list[ChatClient] = []

    def open_client() -> ChatClient:
        client = ChatClient(stack.websocket_url)
        opened.append(client)
        client.whoami()
        return client

    yield open_client
    for client in opened:
        client.close()
    violations = [v for client in opened for v in client.violations]
    assert not violations, "frames outside the protocol:\n" + "\n".join(violations)


@pytest.fixture(scope="session")
def tables(stack) -> Tables:
    return Tables(stack)


class Faults:
    """The local stack's fault-injection control."""

    def __init__(self, stack: StackFile) -> None:
        self.endpoint = stack.control_endpoint
        self.metrics_file = Path(stack.metrics_file) if stack.metrics_file else None
        self._tls = ssl.create_default_context(cafile=stack.ca_bundle)

    def _call(self, method: str, path: str, document: dict | None = None) -> dict:
        request = urllib.request.Request(
            f"{self.endpoint}/{path}", method=method,
            data=json.dumps(document).encode() if document is not None else None,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, context=self._tls, timeout=10) as response:
            body = response.read()
        return json.loads(body) if body else {}

    def arm(self, **faults) -> dict:
        return self._call("POST", "faults", faults)

    def clear(self) -> dict:
        return self._call("DELETE", "faults")

    def state(self) -> dict:
        return self._call("GET", "faults")

    def emf_lines(self, predicate: Callable[[dict], bool],
                  timeout: float = WAIT_TIMEOUT_S) -> list[dict]:
        """EMF documents the stack collected that match ``predicate``, waiting for the
        first (an invocation's lines are written when it ends)."""
        def found() -> list[dict]:
            lines = self.metrics_file.read_text().splitlines()
            return [doc for doc in map(json.loads, lines) if predicate(doc)]

        eventually(lambda: bool(found()), "a matching EMF line", timeout)
        return found()


@pytest.fixture
def faults(stack):
    if not stack.control_endpoint:
        pytest.skip("the target offers no fault injection (local stacks only)")
    control = Faults(stack)
    control.clear()
    yield control
    control.clear()
