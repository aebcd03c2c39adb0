"""The load parameters: one definition, read back the same from each of its forms."""

from __future__ import annotations

import argparse
import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from loadtest.parameters import SCHEDULES, LoadParameters, parse_steps

positive = st.floats(min_value=0.001, max_value=1e6, allow_nan=False)
parameters = st.builds(
    LoadParameters,
    steps=st.lists(st.integers(1, 100_000), min_size=1, max_size=6).map(tuple),
    step_hold_s=positive, step_spawn_rate=positive,
    messages_per_minute=st.floats(min_value=0, max_value=1e4, allow_nan=False),
    schedule=st.sampled_from(SCHEDULES), heartbeat_s=positive,
    settle_s=st.floats(min_value=0, max_value=600, allow_nan=False),
    processes=st.integers(1, 64),
)


class LocustParser(argparse.ArgumentParser):
    """Locust's parser takes include_in_web_ui; this one notes who is shown, then drops it."""

    def add_argument(self, *names, include_in_web_ui: bool = False, **options):
        action = super().add_argument(*names, **options)
        action.in_web_ui = include_in_web_ui
        return action


def parser(*, locust: bool) -> argparse.ArgumentParser:
    parser = (LocustParser if locust else argparse.ArgumentParser)(exit_on_error=False)
    LoadParameters.add_options(parser, locust=locust)
    return parser


@given(parameters)
def test_the_locust_command_line_carries_every_parameter_but_processes(load):
    """Locust has its own --processes: the locustfile's options leave it out."""
    options = parser(locust=True).parse_args(load.locust_arguments())
    assert LoadParameters.from_options(options) == dataclasses.replace(load, processes=1)


def test_every_parameter_is_in_the_web_uis_start_form():
    shown = {a.dest for a in parser(locust=True)._actions if getattr(a, "in_web_ui", False)}
    assert shown == {f.name for f in dataclasses.fields(LoadParameters)} - {"processes"}


@given(parameters)
def test_summary_form_round_trips(load):
    assert LoadParameters.from_summary(load.to_summary()) == load


def test_a_summary_from_before_a_parameter_existed_gets_its_default():
    old = {"steps": [25, 50], "step_hold_s": 30.0, "messages_per_minute": 6.0,
           "schedule": "constant", "heartbeat_s": 30.0, "processes": 1}
    assert LoadParameters.from_summary(old) == LoadParameters()


def test_defaults_are_the_parsers_defaults():
    assert LoadParameters.from_options(parser(locust=False).parse_args([])) == LoadParameters()


@pytest.mark.parametrize("text", ["0", "25,", "a,b", "10,-5", "1.5", ","])
def test_steps_are_positive_user_counts(text):
    with pytest.raises(ValueError, match="user counts separated by commas"):
        parse_steps(text)


def test_steps_parse_in_order_and_none_is_a_plain_ramp():
    assert parse_steps("100,250,500") == (100, 250, 500)
    assert parse_steps("") == parse_steps(" ") == ()


@pytest.mark.parametrize(("field", "value"), [("step_hold_s", 0), ("heartbeat_s", -1),
                                               ("messages_per_minute", -0.5),
                                               ("schedule", "bursty"), ("processes", 0)])
def test_a_value_out_of_range_is_refused_in_one_line(field, value):
    with pytest.raises(ValueError, match=field if field != "schedule" else "schedule must be"):
        LoadParameters(**{field: value})


def test_locusts_own_processes_option_is_read_as_the_process_count():
    options = argparse.Namespace(steps="5", processes=-1)
    assert LoadParameters.from_options(options).processes >= 1
    assert LoadParameters.from_options(argparse.Namespace(steps="5", processes=None)).processes == 1
