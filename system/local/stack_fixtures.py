"""Local stacks as pytest fixtures, for every suite that needs one.

    chat_stack = stack_fixture()
    behaviour_stack = stack_fixture(["--routes", str(ROUTES)], doc="...")

A pytest plugin (the root conftest loads it): besides the factory, it adds to the
report of a failed test the last lines printed by each local stack the test used, as
a ``LocalStackProcess`` or as the ``StackFile`` of one this factory started, since
the stack's log usually says why a frame never came.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import pytest

from system.local.launcher import LocalStackProcess, StackStartError
from system.stackfile import StackFile

OUTPUT_LINES_ON_FAILURE = 40

Arguments = Sequence[str] | Callable[[pytest.FixtureRequest], Sequence[str]]

_running: list[LocalStackProcess] = []


@contextmanager
def running_stack(arguments: Sequence[str]) -> Iterator[LocalStackProcess]:
    """A local stack with these command-line options for the ``with`` block (a fixture's
    life); one that cannot start fails the test with all it printed, which says why."""
    process = LocalStackProcess(list(arguments))
    try:
        process.start()
    except StackStartError as error:
        pytest.fail(f"{error}\n{error.output}", pytrace=False)
    _running.append(process)
    try:
        yield process
    finally:
        _running.remove(process)
        process.stop()


def stack_fixture(arguments: Arguments = (), *, scope: str = "session", doc: str = ""):
    """A fixture that runs a local stack for its scope and yields its ``LocalStackProcess``.

    ``arguments`` are the stack's command-line options, or a function of the fixture
    request that returns them, for options known only at run time (``--routes`` of a
    file the suite writes or is given).
    """
    def local_stack(request: pytest.FixtureRequest):
        with running_stack(arguments(request) if callable(arguments) else arguments) as process:
            yield process

    local_stack.__doc__ = doc
    return pytest.fixture(scope=scope)(local_stack)


def _process_of(value: object) -> LocalStackProcess | None:
    if isinstance(value, LocalStackProcess):
        return value
    if isinstance(value, StackFile):
        return next((process for process in _running if process.file is value), None)
    return None


def stacks_used(item: pytest.Item) -> dict[str, LocalStackProcess]:
    """The local stacks among a test's fixture values, each once, by fixture name."""
    found: dict[str, LocalStackProcess] = {}
    for name, value in getattr(item, "funcargs", {}).items():
        process = _process_of(value)
        if process is not None and all(process is not known for known in found.values()):
            found[name] = process
    return found


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    if report.failed:
        for name, process in stacks_used(item).items():
            report.sections.append(
                (f"{name} output", "".join(process.output[-OUTPUT_LINES_ON_FAILURE:])))
    return report
