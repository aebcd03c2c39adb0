"""Hypothesis profiles for every suite: ``ci`` (the default, sized for tox on 2 cores)
and ``thorough`` (long runs): ``HYPOTHESIS_PROFILE=thorough tox``. No deadlines:
these tests drive real servers, whose timing is not the property under test."""

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci", max_examples=10, stateful_step_count=12, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.register_profile(
    "thorough", max_examples=200, stateful_step_count=40, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
