"""``chat-harness load``: a headless step run, its run directory, its summary and gates.

Starts a local stack (or uses ``--target STACKFILE``) and runs Locust headless with a
locustfile (``--processes N`` for several worker processes); the Locust process writes
the run directory when the test ends, as it does for a test started from its web UI
(``loadtest/run_directory.py``). Then it prints a summary table and the run directory.
``--fail-if`` gates ('delivery_ratio<1', 'last_recipient_ms.p95>1500') set the exit code.
"""

from __future__ import annotations

import operator
import re
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from loadtest.parameters import LoadParameters, token_secret
from loadtest.run_directory import read_summary
from system.local.launcher import LocalStackProcess, add_stack_arguments, stack_arguments_from
from system.local.processes import free_port
from system.stackfile import StackFile

HELP = "a headless load run (Locust) with its summary, run directory and capacity report"
DESCRIPTION = ("Run the chat load test headless: a step shape of Locust chat users on a local "
               "stack (or --target STACKFILE); write a run directory, summary and capacity "
               "report.")
LOCUSTFILE = Path(__file__).resolve().parent / "locustfile.py"
RUN_TIMEOUT_MARGIN_S = 120
_COMPARISONS = {"<=": operator.le, ">=": operator.ge, "<": operator.lt, ">": operator.gt,
                "==": operator.eq, "!=": operator.ne}
_GATE = re.compile(r"^\s*([A-Za-z_][\w.]*)\s*(<=|>=|==|!=|<|>)\s*(-?[\d.]+)\s*$")


@dataclass(frozen=True)
class Gate:
    """'delivery_ratio<1': the run fails if summary['delivery_ratio'] < 1."""

    path: str
    comparison: str
    threshold: float

    @classmethod
    def parse(cls, text: str) -> Gate:
        match = _GATE.match(text)
        if match is None:
            raise ValueError(f"--fail-if must look like 'delivery_ratio<1' or "
                             f"'last_recipient_ms.p95>1500', not {text!r}")
        return cls(match[1], match[2], float(match[3]))

    def failed(self, summary: dict) -> bool:
        value = summary
        for key in self.path.split("."):
            if not isinstance(value, dict) or key not in value:
                raise ValueError(f"--fail-if {self}: the summary has no {self.path}")
            value = value[key]
        return _COMPARISONS[self.comparison](float(value), self.threshold)

    def __str__(self) -> str:
        return f"{self.path}{self.comparison}{self.threshold:g}"


def add_arguments(parser) -> None:
    parser.add_argument("--target", type=Path, metavar="STACKFILE",
                        help="run against this stack (default: a local stack for the run)")
    add_stack_arguments(parser)
    LoadParameters.add_options(parser)
    parser.add_argument("--run-dir", type=Path, help="default runs/<date-time>")
    parser.add_argument("--fail-if", action="append", default=[], type=Gate.parse,
                        metavar="EXPR", help="e.g. 'delivery_ratio<1' (repeatable)")


def local_stack_arguments(args) -> list[str]:
    """The options of the local stack started for a run, from the load command's."""
    if args.target and (args.fanout or args.aws_latency or args.authorizer):
        raise ValueError("--fanout, --aws-latency and --authorizer set up the local stack a run "
                         "starts; a --target stack has its own (chat-harness deploy --fanout "
                         "...)")
    return stack_arguments_from(args)


def new_run_dir() -> Path:
    return Path("runs") / time.strftime("%Y%m%d-%H%M%S")


def run(load: LoadParameters, run_dir: Path, *, target: Path | None = None,
        fail_if: Sequence[Gate] = (), stack_arguments: Sequence[str] = (),
        locustfile: Path = LOCUSTFILE) -> int:
    """One load run into ``run_dir``, against the stack file ``target`` or a local stack
    started for it with ``stack_arguments``."""
    if load.duration_s is None:
        raise ValueError("a headless run needs --steps (a plain ramp is for the web UI)")
    run_dir.mkdir(parents=True, exist_ok=True)
    stack = None if target else LocalStackProcess(list(stack_arguments),
                                                  state_dir=run_dir / "stack")
    try:
        stack_path = target or stack.stack_path
        stack_file = StackFile.read(target) if target else stack.start()
        token_secret(stack_file.authorizer, stack_path)  # a missing key fails here, in one line
        print(f"Target {stack_file.websocket_url}; steps {list(load.steps)} x "
              f"{load.step_hold_s:g} s; run directory {run_dir}", flush=True)
        result = subprocess.run(locust_command(load, locustfile, stack_path, run_dir),
                                timeout=load.duration_s + RUN_TIMEOUT_MARGIN_S, check=False)
    finally:
        if stack is not None:
            stack.stop()
    summary = read_summary(run_dir)
    if summary is None:
        print(f"chat-harness load: Locust ended ({result.returncode}) without writing the run; "
              f"see {run_dir}", file=sys.stderr)
        return 2
    print_summary(summary)
    print(f"Run directory: {run_dir}")
    failed = [gate for gate in fail_if if gate.failed(summary)]
    for gate in failed:
        print(f"FAILED gate: {gate}")
    return 1 if failed else 0


def locust_command(load: LoadParameters, locustfile: Path, stack_file: Path,
                   run_dir: Path) -> list[str]:
    """Locust headless with the run's parameters; with several processes, the master
    listens on loopback only, on a free port."""
    command = [sys.executable, "-m", "locust", "-f", str(locustfile), "--headless",
               "--stack-file", str(stack_file), *load.locust_arguments(),
               "--run-dir", str(run_dir)]
    if load.processes > 1:
        port = str(free_port())
        command += ["--processes", str(load.processes), "--master-bind-host", "127.0.0.1",
                    "--master-bind-port", port, "--master-host", "127.0.0.1",
                    "--master-port", port]
    return command


def print_summary(summary: dict) -> None:
    print(f"users (peak)          {summary['users_peak']}")
    print(f"messages sent         {summary['messages_sent']}")
    print(f"deliveries            {summary['deliveries_received']} of "
          f"{summary['deliveries_expected']} expected  (ratio {summary['delivery_ratio']:.4f}, "
          f"lost {summary['lost']}, duplicated {summary['duplicated']})")
    for name in ("fanout_ms", "last_recipient_ms", "sender_echo_ms"):
        h = summary[name]
        print(f"{name:<21} p50 {h['p50']:8.1f}  p95 {h['p95']:8.1f}  p99 {h['p99']:8.1f}  "
              f"max {h['max']:8.1f}  (n={h['count']})")
    print(clock_line(summary))
    print("step  users  messages  delivery  fanout p50/p95 ms    last recipient p50/p95 ms")
    for number, step in enumerate(summary["steps"], 1):
        fan, last = step["fanout_ms"], step["last_recipient_ms"]
        flag = "  GENERATOR SATURATED" if step["generator"]["saturated"] else ""
        print(f"{number:>4}  {step['users']:>5}  {step['messages_sent']:>8}  "
              f"{step['delivery_ratio']:>8.4f}  {fan['p50']:>8.1f} / {fan['p95']:<8.1f}  "
              f"{last['p50']:>8.1f} / {last['p95']:<8.1f}{flag}")
    if summary["generator"]["saturated"]:
        print("The load generator was saturated (CPU or event-loop lag): latencies in the "
              "flagged steps are partly its own. Use --processes, or fewer users per process.")


def clock_line(summary: dict) -> str:
    """The latencies' uncertainty from clock offsets, with each worker's offset to the
    master's clock and its own uncertainty (ms; unknown for a worker no probe came back to)."""
    offsets = ", ".join("unknown" if w["clock_offset_ms"] is None
                        else f"{w['clock_offset_ms']:+.1f} ±{w['clock_uncertainty_ms']:.1f}"
                        for w in summary["workers"])
    uncertainty = summary["latency_uncertainty_ms"]
    return (f"latency uncertainty   {'unknown' if uncertainty is None else f'±{uncertainty:.1f}'}"
            f" ms  (clock offsets to the master's, ms: {offsets})")
