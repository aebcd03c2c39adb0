"""Hypothesis profiles for every suite: ``ci`` (the default, sized for tox on 2 cores)
and ``thorough`` (long runs): ``HYPOTHESIS_PROFILE=thorough tox``. No deadlines:
these tests drive real servers, whose timing is not the property under test.

Every suite also gets the local-stack fixtures' plugin (a failed test's report shows
what the stacks it used printed last), ``aws``, moto's AWS for deploy's tests, and
``needs_tool``'s skips (a run that lacked Chromium or Node.js ends saying which tests it
skipped and what to install).

Files marked ``long_file`` are collected first: tox runs the tests in processes that take a
file at a time (``--dist loadfile``), and a long file taken last leaves the others idle
while it runs alone."""

import os

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


def pytest_collection_modifyitems(items):
    items.sort(key=lambda item: item.get_closest_marker("long_file") is None)  # stable
