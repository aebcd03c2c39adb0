"""needs_tool's skips, in a pytest run of their own: a machine without the tool (a PATH
without it) ends the run with a line naming the tests it skipped and what to install,
after pytest's closing line, under pytest-xdist as tox runs it and without (the ``alone``
run); a skip for another reason is not listed; with the tool on PATH nothing is added; a
run in two sessions (as tox's) ends with the lines of both."""

from __future__ import annotations

import pytest

from system.tests.machine_tools import INSTALL_COMMANDS, RECORD_VARIABLE

pytest_plugins = ["pytester"]

SUITE = """
import shutil

import pytest

from system.tests.machine_tools import needs_tool


@pytest.fixture(scope="module")
def page():
    assert shutil.which("chromium"), "set up though its test skips"


@needs_tool("chromium")
def test_renders(page):
    pass


@needs_tool("chromium")
@pytest.mark.parametrize("width", [400, 1200])
def test_fits(page, width):
    pass


@needs_tool("chromium")
@pytest.mark.skipif(True, reason="a deployed stack's test")
def test_on_a_deployed_stack():
    pass


def test_without_a_browser():
    pytest.skip("a machine without IPv4")
"""
OTHER_SUITE = """
from system.tests.machine_tools import needs_tool

pytestmark = needs_tool("chromium")


def test_the_ui():
    pass
"""


@pytest.fixture
def suite(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch):
    """The suite in a folder of its own, and ``on_path(tool)``: PATH holding only a stand-in
    for that tool (None: no tool at all)."""
    monkeypatch.delenv(RECORD_VARIABLE, raising=False)  # not the record of the run around it
    pytester.makeconftest('pytest_plugins = ["system.tests.machine_tools"]')
    pytester.makepyfile(test_page=SUITE, test_ui=OTHER_SUITE)
    bin_dir = pytester.mkdir("bin")

    def on_path(tool: str | None) -> None:
        if tool is not None:
            stand_in = bin_dir / tool
            stand_in.write_text("#!/bin/sh\n")
            stand_in.chmod(0o755)
        monkeypatch.setenv("PATH", str(bin_dir))

    return on_path


@pytest.mark.parametrize("xdist", [["-n", "2", "--dist", "loadfile"], []],
                         ids=["xdist", "one-process"])
def test_a_missing_tool_ends_the_run_with_its_tests_and_install_command(
        pytester, suite, xdist):
    suite(None)
    result = pytester.runpytest_subprocess(*xdist)
    result.assert_outcomes(passed=0, skipped=6, errors=0)
    assert result.outlines[-2].startswith("=") and "6 skipped" in result.outlines[-2]
    assert result.outlines[-1] == (
        f"4 tests skipped without chromium ({INSTALL_COMMANDS['chromium']}): "
        f"test_page.py::{{test_fits[1200], test_fits[400], test_renders}}; "
        f"test_ui.py::test_the_ui")


def test_with_the_tool_present_the_run_ends_with_pytests_own_line(pytester, suite):
    suite("chromium")
    result = pytester.runpytest_subprocess("-n", "2", "--dist", "loadfile")
    result.assert_outcomes(passed=4, skipped=2)
    assert result.outlines[-1].startswith("=") and "4 passed, 2 skipped" in result.outlines[-1]


def test_a_run_in_two_sessions_ends_with_what_both_skipped(pytester, suite, monkeypatch):
    suite(None)
    monkeypatch.setenv(RECORD_VARIABLE, str(pytester.path / "missing-tools.jsonl"))
    first = pytester.runpytest_subprocess("test_ui.py")
    assert first.outlines[-1] == (
        f"1 test skipped without chromium ({INSTALL_COMMANDS['chromium']}): "
        f"test_ui.py::test_the_ui")
    second = pytester.runpytest_subprocess("-n", "2", "--dist", "loadfile", "test_page.py")
    second.assert_outcomes(passed=0, skipped=5)
    assert second.outlines[-1] == (
        f"4 tests skipped without chromium ({INSTALL_COMMANDS['chromium']}): "
        f"test_page.py::{{test_fits[1200], test_fits[400], test_renders}}; "
        f"test_ui.py::test_the_ui")
