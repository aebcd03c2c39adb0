"""The machine's own programs some tests drive (Debian's Chromium, Node.js and npm): a test
declares each with ``needs_tool``; where one is missing the test skips, and the run ends
with a line per missing tool that names the tests it skipped and the command that brings
it. A pytest plugin (the root conftest loads it).

Among a run's other skips (a deployed stack's tests, a machine without IPv4) a skip for a
missing program is easy to miss, and a machine without Chromium would pass without ever
looking at a page; the closing lines say what was not tested and what to install. The
skip travels as a user property of the test's report, which pytest-xdist carries from
the worker that ran the test to the controller that prints, so nothing parses a reason.

tox runs the tests in two pytest sessions (the load runs after the rest): where
``MISSING_TOOLS_RECORD`` names a file (tox gives one in the environment's temporary
folder, emptied as each run begins), each session adds its skips to it and ends with the
lines of all that the run skipped so far, so that the run's last lines name them all.
"""

from __future__ import annotations

import json
import os
import shutil
from collections import defaultdict
from collections.abc import Callable, Iterable
from functools import partial

import pytest

INSTALL_COMMANDS = {  # Debian's; .ci/run installs Chromium this way
    "chromium": "apt-get install chromium",
    "node": "apt-get install nodejs",
    "npm": "apt-get install npm",
}
MISSING_TOOL = "missing_tool"  # the user property: {"tool": ..., "install": ...}
RECORD_VARIABLE = "MISSING_TOOLS_RECORD"


def needs_tool(tool: str, find: Callable[[], str | None] | None = None) -> pytest.MarkDecorator:
    """Skips the test where ``find`` (by default: ``tool`` on PATH) finds nothing; looked
    for when the test is set up, before its fixtures start anything."""
    return pytest.mark.needs_tool(tool, install=INSTALL_COMMANDS[tool],
                                  find=find or partial(shutil.which, tool))


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "needs_tool(tool, install, find): skips the test where find() finds no "
        "tool; declared with system.tests.machine_tools.needs_tool")
    if not hasattr(config, "workerinput"):  # pytest-xdist's controller, or a run without it
        config.pluginmanager.register(MissingToolsSummary(), "missing-tools-summary")


def pytest_runtest_setup(item: pytest.Item) -> None:
    """After pytest's skip marks (tryfirst: a test they skip is not the tool's) and before
    the fixtures (pytest's own set-up, registered earlier, runs later)."""
    missing = {mark.args[0]: mark.kwargs["install"] for mark in item.iter_markers("needs_tool")
               if mark.kwargs["find"]() is None}
    if missing:
        item.user_properties.extend((MISSING_TOOL, {"tool": tool, "install": install})
                                    for tool, install in missing.items())
        pytest.skip("needs " + ", ".join(f"{tool} ({install})" for tool, install in missing.items()))


class MissingToolsSummary:
    """The tests each missing tool skipped, from every worker's reports, printed last."""

    def __init__(self) -> None:
        self.skipped_tests: defaultdict[tuple[str, str], set[str]] = defaultdict(set)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.skipped:
            for name, value in report.user_properties:
                if name == MISSING_TOOL:
                    self.skipped_tests[value["tool"], value["install"]].add(report.nodeid)

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session):
        """Around the terminal reporter's own, which prints the closing "N passed, M skipped"
        line after every pytest_terminal_summary: these lines come after it. (pytest's
        RunResult.parseoutcomes looks for that line from the end, past these.)"""
        result = yield
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            for (tool, install), node_ids in sorted(self.run_so_far().items()):
                reporter.write_line(missing_tool_line(tool, install, node_ids), yellow=True)
        return result

    def run_so_far(self) -> dict[tuple[str, str], set[str]]:
        """This session's skips, with those of the run's earlier sessions where the run
        keeps a record (which this session's join)."""
        record = os.environ.get(RECORD_VARIABLE)
        if not record:
            return self.skipped_tests
        with open(record, "a", encoding="utf-8") as lines:
            lines.writelines(json.dumps({"tool": tool, "install": install,
                                         "tests": sorted(node_ids)}) + "\n"
                             for (tool, install), node_ids in self.skipped_tests.items())
        skipped: defaultdict[tuple[str, str], set[str]] = defaultdict(set)
        with open(record, encoding="utf-8") as lines:
            for entry in map(json.loads, lines):
                skipped[entry["tool"], entry["install"]].update(entry["tests"])
        return skipped


def missing_tool_line(tool: str, install: str, node_ids: Iterable[str]) -> str:
    """``2 tests skipped without chromium (apt-get install chromium): a.py::{test_x, test_y};
    b.py::test_z``: a file's tests named once after it."""
    names_by_file: defaultdict[str, list[str]] = defaultdict(list)
    for node_id in sorted(node_ids):
        path, _, name = node_id.partition("::")
        names_by_file[path].append(name)
    tests = "; ".join(f"{path}::{names[0]}" if len(names) == 1
                      else f"{path}::{{{', '.join(names)}}}"
                      for path, names in names_by_file.items())
    count = sum(map(len, names_by_file.values()))
    return f"{count} test{'s' * (count != 1)} skipped without {tool} ({install}): {tests}"
