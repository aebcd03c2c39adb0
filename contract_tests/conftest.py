"""The contract suite's target (a local stack, or ``--stack-file``), clients, tables, faults.

Nothing here assumes a local target: the tests that need a local stack's fault
injection or metrics file skip where the stack file offers none. Against a stack
that is not local (kind ``aws``) the suite says so as it starts, leaves behind no row
it wrote itself nor any the chat stored for its connections (see ``tables.py``), and
runs tests marked ``heavy_writes`` only with ``--allow-heavy-writes``.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from contract_tests.client import ChatClient
from contract_tests.tables import RUN_ATTRIBUTE, Tables
from system.client import WAIT_TIMEOUT_S
from system.client.polling import eventually
from system.control import control_call
from system.fanout_strategies import DEFAULT_FANOUT_STRATEGY, FANOUT_STRATEGIES
from system.local.stack_fixtures import running_stack, stack_fixture
from system.stackfile import StackFile, StackFileError

# The --stack-file stack, read once per process (None: a local stack the session starts).
TARGET = pytest.StashKey[StackFile | None]()
# The run's id, one for the whole run (xdist's workers are given the controller's).
RUN_ID = pytest.StashKey[str]()
HEAVY_WRITES = "heavy_writes"
EVERY_FANOUT_STRATEGY = "every_fanout_strategy"


def pytest_addoption(parser):
    parser.addoption("--stack-file", type=Path, default=None,
                     help="run the contracts against this stack (default: a local stack)")
    parser.addoption("--routes", type=Path, default=None,
                     help="local stack only: run these handlers (a routes TOML file)")
    parser.addoption("--fanout", choices=FANOUT_STRATEGIES, default=None,
                     help="local stack only: the handlers' fan-out strategy (FANOUT_STRATEGY)")
    parser.addoption("--allow-heavy-writes", action="store_true",
                     help=f"on a stack that is not local, also run the tests marked "
                          f"{HEAVY_WRITES} (each skip says what it would write)")


def pytest_configure(config):
    config.addinivalue_line(
        "markers", f"{HEAVY_WRITES}(rows, megabytes, table): the test writes this much into a "
                   f"table; on a stack that is not local it runs only with --allow-heavy-writes")
    config.addinivalue_line(
        "markers", f"{EVERY_FANOUT_STRATEGY}: on a local stack started for the run, the test "
                   f"runs once on each fan-out strategy (except a {HEAVY_WRITES} test, and "
                   f"unless --fanout or --routes names one set of handlers)")
    stack_file = config.getoption("--stack-file")
    try:
        config.stash[TARGET] = StackFile.read(stack_file) if stack_file else None
    except StackFileError as error:
        raise pytest.UsageError(str(error)) from None
    worker_input = getattr(config, "workerinput", {})
    config.stash[RUN_ID] = worker_input.get(RUN_ATTRIBUTE) or uuid.uuid4().hex[:12]


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node):
    """xdist: each worker marks its rows with the run id the notice names."""
    node.workerinput[RUN_ATTRIBUTE] = node.config.stash[RUN_ID]


def is_shared(config: pytest.Config) -> bool:
    """Whether the target is a stack that is not local (others' rows, billed requests)."""
    target = config.stash[TARGET]
    return target is not None and target.kind != "local"


def pytest_sessionstart(session):
    """A one-line notice of what the run does to a stack that is not local. Written
    directly rather than as a report header, which ``-q`` hides."""
    config = session.config
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if not is_shared(config) or hasattr(config, "workerinput") or reporter is None:
        return
    target, run_id = config.stash[TARGET], config.stash[RUN_ID]
    heavy = ("heavy writes on" if config.getoption("--allow-heavy-writes")
             else f"heavy writes off (--allow-heavy-writes runs the tests marked {HEAVY_WRITES})")
    reporter.write_line(
        f"contract run against the {target.kind} stack {target.websocket_url}: it writes rows "
        f"(marked {RUN_ATTRIBUTE}={run_id}) and removes them, with what the chat stores for its "
        f"connections, by the end of the run; {heavy}", yellow=True)


def pytest_runtest_setup(item):
    """A test marked heavy_writes skips on a stack that is not local unless allowed,
    saying what it would write."""
    marker = item.get_closest_marker(HEAVY_WRITES)
    if marker is None or not is_shared(item.config) or item.config.getoption(
            "--allow-heavy-writes"):
        return
    writes = marker.kwargs
    pytest.skip(f"writes {writes['rows']} rows ({writes['megabytes']:.1f} MB) into "
                f"{writes['table']} of the {item.config.stash[TARGET].kind} stack; "
                f"--allow-heavy-writes runs it")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A test marked every_fanout_strategy, on the stack the run starts, runs on each
    strategy: the default's stack (``local_stack``), then one stack per other strategy."""
    config = metafunc.config
    if ("stack" not in metafunc.fixturenames
            or metafunc.definition.get_closest_marker(EVERY_FANOUT_STRATEGY) is None
            or metafunc.definition.get_closest_marker(HEAVY_WRITES) is not None
            or any(config.getoption(o) for o in ("--stack-file", "--routes", "--fanout"))):
        return
    others = [strategy for strategy in FANOUT_STRATEGIES if strategy != DEFAULT_FANOUT_STRATEGY]
    metafunc.parametrize("stack", [None, *others], indirect=True, scope="session",
                         ids=lambda strategy: strategy or DEFAULT_FANOUT_STRATEGY)


def local_stack_arguments(request: pytest.FixtureRequest) -> list[str]:
    routes, fanout = request.config.getoption("--routes"), request.config.getoption("--fanout")
    return [*(["--routes", str(routes)] if routes else []),
            *(["--fanout", fanout] if fanout else [])]


local_stack = stack_fixture(local_stack_arguments, doc="A local stack running the --routes handlers.")


@pytest.fixture(scope="session")
def stack(request) -> Iterator[StackFile]:
    """The target: the ``--stack-file`` stack, or else a local stack started for the run;
    for a test parametrized with another fan-out strategy, a local stack running it."""
    strategy = getattr(request, "param", None)
    if strategy is None:
        yield request.config.stash[TARGET] or request.getfixturevalue("local_stack").file
        return
    with running_stack(["--fanout", strategy]) as process:
        yield process.file


@pytest.fixture(scope="session")
def tables(stack, request) -> Iterator[Tables]:
    """The chat's tables; the rows the session seeded are removed at its end, whatever
    the tests' outcome."""
    tables = Tables(stack, request.config.stash[RUN_ID])
    yield tables
    tables.remove_seeded(tables.seeded)


@pytest.fixture
def opened_clients(stack, tables) -> Iterator[list[ChatClient]]:
    """The clients a test opens on the target (it appends them). On a stack that is not
    local, what the chat stored because of them is removed at the test's end, whatever
    its outcome: their sessions, and the messages they sent whose broadcast reached any
    of them (one stored but delivered to none of them stays). At the test's end rather
    than the session's, so that MessageHistory, which tests scan, stays small."""
    opened: list[ChatClient] = []
    yield opened
    if stack.kind != "local":
        connection_ids = {client.connection_id for client in opened} - {None}

        def sent(frame) -> bool:
            return frame.kind == "ChatBroadcast" and frame.document["sender"] in connection_ids

        tables.remove_chat_rows(connection_ids, {frame.document["message_id"]
                                                 for client in opened
                                                 for frame in client.frames(sent)})


@pytest.fixture
def clients(stack, opened_clients):
    """``clients()`` opens a ChatClient on the stack; every frame any of them got must
    follow the protocol, and all are closed after the test."""

    def open_client() -> ChatClient:
        client = ChatClient(stack.websocket_url)
        opened_clients.append(client)
        client.whoami()
        return client

    yield open_client
    for client in opened_clients:
        client.close()
    violations = [v for client in opened_clients for v in client.violations]
    assert not violations, "frames outside the protocol:\n" + "\n".join(violations)


class Faults:
    """The local stack's fault-injection control."""

    def __init__(self, stack: StackFile) -> None:
        self.stack = stack

    def _call(self, method: str, path: str, document: dict | None = None) -> dict:
        body = json.dumps(document).encode() if document is not None else None
        status, answer = control_call(self.stack, method, path, body)
        if status != 200:
            raise RuntimeError(f"the control API answered {status} to {method} {path}: {answer}")
        return answer

    def arm(self, **faults) -> dict:
        return self._call("POST", "faults", faults)

    def clear(self) -> dict:
        return self._call("DELETE", "faults")

    def state(self) -> dict:
        return self._call("GET", "faults")


@pytest.fixture
def faults(stack):
    if not stack.control_endpoint:
        pytest.skip(f"needs fault injection, which only a local stack's control endpoint "
                    f"offers; the {stack.kind} stack's file names none")
    control = Faults(stack)
    control.clear()
    yield control
    control.clear()


class EmfMetricsFile:
    """The CloudWatch EMF lines a local stack's functions printed, as it collects them."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def matching(self, predicate: Callable[[dict], bool],
                 timeout: float = WAIT_TIMEOUT_S) -> list[dict]:
        """The documents that match ``predicate``, waiting for the first (an invocation's
        lines are written when it ends)."""
        def found() -> list[dict]:
            return [doc for doc in map(json.loads, self.path.read_text().splitlines())
                    if predicate(doc)]

        eventually(lambda: bool(found()), "a matching EMF line", timeout)
        return found()


@pytest.fixture
def emf_metrics(stack) -> EmfMetricsFile:
    if not stack.metrics_file:
        pytest.skip(f"reads the metrics file a local stack collects; the {stack.kind} "
                    f"stack's functions send their metrics to CloudWatch")
    return EmfMetricsFile(Path(stack.metrics_file))
