"""``chat-harness verify RUN_DIR``: replay a run against tables provisioned at the report's
recommendation, and at half of it, on the local stack's capacity governor.

Each replay's local stack is set up as the run's was (its DynamoDB, fan-out strategy, AWS
latency model and authorizer, from the run's summary). The recommendation holds if the
replay at it sees no throttled request; the replay at half shows that the check has teeth
(a recommendation far above need would pass both).
Burst credit is off by default (``--burst-seconds 0``): AWS advises against sizing
that relies on it, and a short replay would otherwise run on credit alone.
"""

from __future__ import annotations

import json
from argparse import Namespace
from collections import Counter
from pathlib import Path

from loadtest.parameters import LoadParameters
from loadtest.run import run as run_load
from reports.report import build
from reports.run_data import read_json_lines
from system.local.lambda_runtime.logs import OPERATIONS_LOG
from system.local.launcher import stack_arguments_from

HELP = ("replay a run with the tables provisioned at the report's recommendation, and at "
        "half of it; count throttled requests")
DESCRIPTION = ("Replay RUN_DIR's load shape on a local stack whose capacity governor enforces "
               "the recommended RCU/WCU per table, then half of it. Exit 1 if the "
               "recommendation saw throttling.")
KINDS = ("read", "write")


def add_arguments(parser) -> None:
    parser.add_argument("run_dir", type=Path, metavar="RUN_DIR",
                        help="a run directory written by 'chat-harness load'")
    parser.add_argument("--burst-seconds", type=float, default=0.0, metavar="SECONDS",
                        help="burst credit the governed tables keep (default %(default)s)")


def capacities(recommendation: dict, scale: float) -> dict[str, dict[str, int]]:
    """Table -> provisioned read/write units, scaled (never below DynamoDB's minimum of 1)."""
    return {table: {kind: max(1, int(entry[kind]["provisioned"] * scale)) for kind in KINDS}
            for table, entry in recommendation["tables"].items()}


def replayed_stack(stack: dict) -> list[str]:
    """The local stack options that replay what the run ran against: its DynamoDB (a run on
    AWS, or on a DynamoDB of its own, replays on dynalite), fan-out strategy and authorizer,
    and the AWS latency model where the run had it or ran on AWS."""
    backend = stack.get("dynamodb_backend")
    return stack_arguments_from(Namespace(
        dynamodb=backend if backend in ("dynalite", "moto") else "dynalite",
        fanout=stack.get("fanout"), authorizer=stack.get("authorizer"),
        aws_latency=bool(stack.get("aws_latency")) or stack.get("kind") == "aws"))


def replay(run_dir: Path, load: LoadParameters, stack: list[str], provisioned: dict,
           burst_s: float, name: str) -> dict:
    """Run the load shape once on the stack ``stack`` with governed tables; count what was
    throttled."""
    replay_dir = run_dir / name
    arguments = [*stack, f"--burst-seconds={burst_s:g}"] + [
        f"--provisioned={table}={units['read']}/{units['write']}"
        for table, units in provisioned.items()]
    print(f"\n== {name}: {' '.join(arguments)}", flush=True)
    run_load(load, replay_dir, stack_arguments=arguments)
    operations = read_json_lines(replay_dir / OPERATIONS_LOG)
    throttled = Counter(table for op in operations if op.get("throttled") == "provisioned capacity"
                        for table in op["tables"])
    summary = json.loads((replay_dir / "summary.json").read_text())
    return {"run_dir": str(replay_dir), "provisioned": provisioned,
            "throttled": {table: throttled.get(table, 0) for table in provisioned},
            "throttled_total": sum(throttled.values()), "operations": len(operations),
            "delivery_ratio": summary["delivery_ratio"], "messages_sent": summary["messages_sent"]}


def run(args) -> int:
    document = build(args.run_dir)  # sized for the run's own workload: the one replayed
    load = LoadParameters.from_summary(document["run"]["load"])
    stack = replayed_stack(document["run"]["stack"])
    results = {
        "burst_seconds": args.burst_seconds,
        "stack": stack,
        "at_recommendation": replay(args.run_dir, load, stack,
                                    capacities(document["recommendation"], 1.0),
                                    args.burst_seconds, "verify-recommended"),
        "at_half": replay(args.run_dir, load, stack, capacities(document["recommendation"], 0.5),
                          args.burst_seconds, "verify-half"),
    }
    (args.run_dir / "verify.json").write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nReplays of {args.run_dir} (steps {list(load.steps)} x {load.step_hold_s:g} s), "
          f"burst credit {args.burst_seconds:g} s:")
    print(f"{'provisioned at':<20}{'table':<20}{'RCU':>6}{'WCU':>6}{'throttled':>11}"
          f"{'delivery':>10}")
    for label, key in (("the recommendation", "at_recommendation"), ("half of it", "at_half")):
        result = results[key]
        for table, units in result["provisioned"].items():
            print(f"{label:<20}{table:<20}{units['read']:>6}{units['write']:>6}"
                  f"{result['throttled'][table]:>11}{result['delivery_ratio']:>10.4f}")
            label = ""
    held = results["at_recommendation"]["throttled_total"] == 0
    pressed = results["at_half"]["throttled_total"] > 0
    print(f"At the recommendation: {results['at_recommendation']['throttled_total']} throttled "
          f"requests ({'holds' if held else 'DOES NOT HOLD'}); at half: "
          f"{results['at_half']['throttled_total']}"
          f"{'' if pressed else ' (the replay did not press half the capacity)'}.")
    print(f"Written {args.run_dir / 'verify.json'}")
    return 0 if held else 1
