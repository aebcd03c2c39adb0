"""A run directory: everything one test (start to stop) leaves behind, written the same
way whether the test ran headless (``chat-harness load``) or from Locust's web UI.

``summary.json`` (the fan-out figures, the load's parameters, the stack it ran against
and the run's window), ``histograms.json`` (the encoded HDR histograms), Locust's CSVs and HTML
report, and the stack's logs for the run's window: its EMF metric lines
(``emf.jsonl``), DynamoDB operations (``dynamodb.jsonl``) and Lambda invocations
(``invocations.jsonl``). What reads a run directory (the capacity report) finds the
same files either way; ``RUN_WRITTEN`` hooks run once a directory is complete.
"""

from __future__ import annotations

import csv
import json
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from system.control import control_call
from system.local.lambda_runtime.logs import INVOCATIONS_LOG, OPERATIONS_LOG
from system.stackfile import StackFile

SUMMARY = "summary.json"
HISTOGRAMS = "histograms.json"
EMF_LOG = "emf.jsonl"
# A stack may have served others before the run: only records from the run's window
# count (the margin covers Locust starting its first users).
RUN_WINDOW_MARGIN_S = 5.0
# After the users leave, their $disconnects still run: the logs are read once the stack
# says the run's work is done (asked every SETTLE_POLL_S, for at most LOGS_SETTLE_LIMIT_S).
SETTLE_POLL_S = 0.1
LOGS_SETTLE_LIMIT_S = 30.0

# Called with each complete run directory (the capacity report hangs off this).
RUN_WRITTEN: list[Callable[[Path], None]] = []


def record_time(name: str) -> Callable[[dict], float]:
    """When a stack log's record happened, in epoch seconds."""
    if name == EMF_LOG:
        return lambda record: record["_aws"]["Timestamp"] / 1000
    return lambda record: record["t"]


def in_window(records: Iterable[dict], name: str, start: float, end: float) -> list[dict]:
    """The records of stack log ``name`` within the run's window (less the margin)."""
    when = record_time(name)
    return [r for r in records if start - RUN_WINDOW_MARGIN_S <= when(r) <= end]


def stack_logs(stack: StackFile) -> dict[str, Path]:
    """A local stack's logs, by their name in a run directory (none for other stacks)."""
    if not stack.logs_dir:
        return {}
    logs = Path(stack.logs_dir)
    found = {OPERATIONS_LOG: logs / OPERATIONS_LOG, INVOCATIONS_LOG: logs / INVOCATIONS_LOG}
    if stack.metrics_file:
        found[EMF_LOG] = Path(stack.metrics_file)
    return found


def wait_until_settled(stack: StackFile, since: float, limit_s: float = LOGS_SETTLE_LIMIT_S,
                       sleep: Callable[[float], None] = time.sleep) -> str | None:
    """Until the local stack has done the run's work: every connection made since ``since``
    (epoch seconds) closed and its $disconnect run, and no invocation running or waiting
    (its logs then hold the whole run); at most ``limit_s``. None once it has, else why
    not. A stack without a control API (AWS) logs nothing here: None at once. ``sleep`` is
    gevent's inside Locust."""
    if not stack.control_endpoint:
        return None
    path = f"activity?connected_since_ms={int(since * 1000)}"
    deadline = time.monotonic() + limit_s
    while True:
        try:
            status, activity = control_call(stack, "GET", path)
        except OSError as error:
            return f"the stack's control API did not answer ({error})"
        if status != 200:
            return f"the stack's control API answered {status} to GET {path}"
        if activity["connections"] == 0 and activity["invocations"] == 0:
            return None
        if time.monotonic() >= deadline:
            return (f"after {limit_s:g} s the stack still had {activity['connections']} of the "
                    f"run's connections and {activity['invocations']} invocations unfinished")
        sleep(SETTLE_POLL_S)


def copy_stack_logs(stack: StackFile, run_dir: Path, start: float, end: float) -> None:
    """The stack's log lines from the run's window, one file each, into ``run_dir``."""
    for name, source in stack_logs(stack).items():
        if not source.exists():
            continue
        lines = [line for line in source.read_text(encoding="utf-8").splitlines() if line]
        kept = in_window(map(json.loads, lines), name, start, end)
        (run_dir / name).write_text("".join(json.dumps(r) + "\n" for r in kept),
                                    encoding="utf-8")


def write_locust_files(environment, run_dir: Path, percentiles: list[float]) -> None:
    """Locust's statistics of this test: the CSVs its ``--csv`` writes, and its HTML report."""
    from locust import stats
    from locust.html import get_html_report

    writer = stats.StatsCSV(environment, percentiles)
    for name, write in (("locust_stats.csv", writer.requests_csv),
                        ("locust_failures.csv", writer.failures_csv),
                        ("locust_exceptions.csv", writer.exceptions_csv)):
        with (run_dir / name).open("w", newline="", encoding="utf-8") as handle:
            write(csv.writer(handle))
    (run_dir / "locust.html").write_text(get_html_report(environment, show_download_link=False),
                                         encoding="utf-8")


def stack_summary(stack: StackFile | None, host: str) -> dict:
    """What the run ran against, for the report: a stack file's tables and backend, or a
    bare URL (no tables known: no capacity report)."""
    if stack is None:
        return {"kind": "url", "websocket_url": host, "region": None, "tables": {},
                "dynamodb_backend": None, "capacity_fidelity": None, "aws_latency": None,
                "fanout": None, "authorizer": None}
    return {"kind": stack.kind, "websocket_url": stack.websocket_url, "region": stack.region,
            "tables": stack.tables, "dynamodb_backend": stack.dynamodb_backend,
            "capacity_fidelity": stack.capacity_fidelity, "aws_latency": stack.aws_latency,
            "fanout": stack.fanout, "authorizer": stack.authorizer}


def write_json(path: Path, document: dict) -> None:
    path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")


def read_summary(run_dir: Path) -> dict | None:
    path = run_dir / SUMMARY
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


def finish(run_dir: Path) -> list[str]:
    """Run every ``RUN_WRITTEN`` hook on a complete run directory; what failed, one line each
    (a hook that fails loses no run data)."""
    problems = []
    for hook in RUN_WRITTEN:
        try:
            hook(run_dir)
        except (ValueError, OSError) as error:
            problems.append(f"{run_dir}: {error}")
    return problems
