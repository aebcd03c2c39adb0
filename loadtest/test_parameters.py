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


def parser(*, processes: bool) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(exit_on_error=False)
    LoadParameters.add_options(parser, processes=processes)
    return parser


@given(parameters)
def test_the_locust_command_line_carries_every_parameter_but_processes(load):
    """Locust has its own --processes: the locustfile's options leave it out."""
    options = parser(processes=False).parse_args(load.locust_arguments())
    assert LoadParameters.from_options(options) == dataclasses.replace(load, processes=1)


@given(parameters)
def test_summary_form_round_trips(load):
    assert LoadParameters.from_summary(load.to_summary()) == load


def test_a_summary_from_before_a_parameter_existed_gets_its_default():
    old = {"steps": [25, 50], "step_hold_s": 30.0, "messages_per_minute": 6.0,
           "schedule": "constant", "heartbeat_s": 30.0, "processes": 1}
    assert LoadParameters.from_summary(old) == LoadParameters()


def test_defaults_are_the_parsers_defaults():
    assert LoadParameters.from_options(parser(processes=True).parse_args([])) == LoadParameters()


@pytest.mark.parametrize("text", ["", "0", "25,", "a,b", "10,-5", "1.5"])
def test_steps_are_positive_user_counts(text):
    with pytest.raises(argparse.ArgumentTypeError, match="user counts separated by commas"):
        parse_steps(text)


def test_steps_parse_in_order():
    assert parse_steps("100,250,500") == (100, 250, 500)
