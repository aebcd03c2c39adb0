"""What a verify replay's local stack is started with, from the run's summary: the run's
own stack, as near as a local stack comes."""

import pytest

from reports.verify import replayed_stack

LOCAL = {"kind": "local", "dynamodb_backend": "dynalite", "aws_latency": None, "fanout": None,
         "authorizer": None}


@pytest.mark.parametrize(("stack", "arguments"), [
    (LOCAL, ["--dynamodb", "dynalite"]),
    ({**LOCAL, "dynamodb_backend": "moto", "fanout": "batched", "aws_latency": "2026-11-20",
      "authorizer": "jwt"},
     ["--dynamodb", "moto", "--fanout", "batched", "--aws-latency", "--authorizer", "jwt"]),
    ({**LOCAL, "dynamodb_backend": "external"}, ["--dynamodb", "dynalite"]),
    ({"kind": "aws", "dynamodb_backend": None, "aws_latency": None, "fanout": "sequential",
      "authorizer": "jwt"},
     ["--dynamodb", "dynalite", "--fanout", "sequential", "--aws-latency", "--authorizer", "jwt"]),
    ({"kind": "local", "dynamodb_backend": "moto", "aws_latency": None},  # before fan-out was kept
     ["--dynamodb", "moto"]),
])
def test_a_replay_runs_on_the_stack_the_run_ran_on(stack, arguments):
    assert replayed_stack(stack) == arguments
