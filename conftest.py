"""Hypothesis profiles for every suite: ``ci`` (the default, sized for tox on 2 cores)
and ``thorough`` (long runs): ``HYPOTHESIS_PROFILE=thorough tox``. No deadlines:
these tests drive real servers, whose timing is not the property under test.

Every suite also gets the local-stack fixtures' plugin (a failed test's report shows
what the stacks it used printed last), ``aws``, moto's AWS for deploy's tests, and
``needs_tool``'s skips (a run that lacked Chromium or Node.js ends saying which tests it
skipped and what to install).

Files marked ``long_file`` are collected first: tox runs the tests in processes that take a
file at a time (``--dist loadfile``), and a long file taken last leaves the others idle
while it runs alone. The files of a ``SHARED_STACK_FILES`` group are taken together, by one
process, so that the session's stacks they share start once, not in each process; so are
those of each of the two ``LOAD_RUN_LANES``."""

import os

import pytest
from hypothesis import HealthCheck, settings

pytest_plugins = ["system.local.stack_fixtures", "system.tests.moto_aws",
                  "system.tests.machine_tools"]

settings.register_profile(
    "ci", max_examples=10, stateful_step_count=12, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.register_profile(
    "thorough", max_examples=200, stateful_step_count=40, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


# Files that use their suite's stacks of session scope (its conftest's), by group: each
# process that took one of them would start those stacks, three for the contract suite
# (one per fan-out strategy), two for the emulator's tests.
SHARED_STACK_FILES = {
    **dict.fromkeys(("contract_tests/test_connections.py", "contract_tests/test_messages.py",
                     "contract_tests/test_faults.py", "contract_tests/test_stateful.py"),
                    "contract_tests: stack, one per fan-out strategy"),
    **dict.fromkeys((f"system/tests/test_{name}.py" for name in (
        "chat_e2e", "faults", "lambda_api", "management_e2e", "operations_log_e2e",
        "security_e2e", "slow_reader_e2e", "behaviour_e2e")),
        "system/tests: chat_stack, behaviour_stack"),
}


# The load runs' files (tox runs them two at a time, after the rest), in two lanes of about
# the same time (about 100 s each on this project's 2-core machine): taken a file at a
# time, a process that has a file's last test to run takes the next file before it, and
# one lane could end 20 s after the other.
LOAD_RUN_LANES = {
    **dict.fromkeys(("reports/tests/test_report_e2e.py", "loadtest/test_load_smoke.py",
                     "loadtest/test_clock_offset.py"), "load runs: report, distributed, clocks"),
    **dict.fromkeys(("reports/tests/test_report_fanout_e2e.py",
                     "loadtest/test_load_authorized.py", "chat_harness/tests/test_web_ui.py"),
                    "load runs: fan-out fit, authorizer, web UI"),
}
WORK_UNITS = {**SHARED_STACK_FILES, **LOAD_RUN_LANES}


def pytest_collection_modifyitems(items):
    items.sort(key=lambda item: item.get_closest_marker("long_file") is None)  # stable


@pytest.hookimpl(optionalhook=True)  # a hook of pytest-xdist's
def pytest_xdist_make_scheduler(config, log):
    """``--dist loadfile``, except that the files of a group of ``WORK_UNITS`` are one unit."""
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class SharedStackScheduling(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            file = super()._split_scope(nodeid)
            return WORK_UNITS.get(file, file)

    return SharedStackScheduling(config, log)
