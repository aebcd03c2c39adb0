"""Hypothesis profiles for every suite: ``ci`` (the default, sized for tox on 2 cores)
and ``thorough`` (long runs): ``HYPOTHESIS_PROFILE=thorough tox``. No deadlines:
these tests drive real servers, whose timing is not the property under test.

Every suite also gets the local-stack fixtures' plugin (a failed test's report shows
what the stacks it used printed last) and ``aws``, moto's AWS for deploy's tests."""

import os

import pytest
from hypothesis import HealthCheck, settings

pytest_plugins = ["system.local.stack_fixtures", "system.tests.moto_aws"]

# The files that run Locust against a local stack each start several processes (the stack,
# a Locust master and workers, a browser): two of them at once on 2 cores starve each
# other's load runs. tox runs pytest-xdist with --dist loadgroup: these files share one
# group (one worker, one after another); every other file is a group of its own, as
# --dist loadfile would make it.
LOAD_RUN_FILES = {"loadtest/test_load_smoke.py", "reports/tests/test_report_e2e.py",
                  "chat_harness/tests/test_web_ui.py"}


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items):
    for item in items:
        path = item.nodeid.split("::")[0]
        group = "load-runs" if path in LOAD_RUN_FILES else path
        item.add_marker(pytest.mark.xdist_group(group))


settings.register_profile(
    "ci", max_examples=10, stateful_step_count=12, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.register_profile(
    "thorough", max_examples=200, stateful_step_count=40, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
