"""A load run's directory, read once: what the report is built from.

``chat-harness load`` writes ``summary.json`` (the fan-out figures, the load's
parameters, the stack it ran against) and Locust's CSVs; a local stack adds its
EMF metric lines (``emf.jsonl``), its DynamoDB operations log (``dynamodb.jsonl``,
one line per call with the capacity reported and modelled) and its invocations
log (``invocations.jsonl``). Records outside the run's window are left out.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

from loadtest.run_directory import EMF_LOG, SUMMARY, in_window
from system.local.lambda_runtime.logs import INVOCATIONS_LOG, OPERATIONS_LOG


class RunDataError(ValueError):
    pass


def read_json_lines(path: Path) -> list[dict]:
    if not path.exists():
        return []
    lines = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            lines.append(json.loads(line))
        except ValueError:
            raise RunDataError(f"{path}:{number} is not a JSON line") from None
    return lines


def locust_request_counts(path: Path) -> dict[str, int]:
    """Requests per name ('chat', 'heartbeat', 'connect', ...) from locust_stats.csv."""
    if not path.exists():
        return {}
    with path.open(newline="") as handle:
        return {row["Name"]: int(row["Request Count"]) for row in csv.DictReader(handle)
                if row.get("Type") == "WS"}


@dataclass(frozen=True)
class RunData:
    directory: Path
    summary: dict
    operations: list[dict]
    metrics: list[dict]
    invocations: list[dict]
    requests: dict[str, int]

    @classmethod
    def load(cls, directory: Path) -> RunData:
        summary_file = directory / SUMMARY
        if not summary_file.exists():
            raise RunDataError(f"{directory} has no summary.json: give the run directory "
                               f"that 'chat-harness load' printed")
        summary = json.loads(summary_file.read_text())
        for key in ("load", "stack", "started_at", "ended_at"):
            if key not in summary:
                raise RunDataError(f"{summary_file} has no {key!r}: it was written by an older "
                                   f"chat-harness; run the load again")
        if not summary["stack"].get("tables"):
            url = summary["stack"].get("websocket_url")
            raise RunDataError(f"{directory} ran against a bare URL ({url}): no tables or logs "
                               f"to size from; target a stack file instead")

        def in_run(name: str) -> list[dict]:
            return in_window(read_json_lines(directory / name), name, summary["started_at"],
                             summary["ended_at"])

        return cls(directory, summary, in_run(OPERATIONS_LOG), in_run(EMF_LOG),
                   in_run(INVOCATIONS_LOG), locust_request_counts(directory / "locust_stats.csv"))

    @property
    def tables(self) -> dict[str, str]:
        """Role ('active_connections', ...) -> table name."""
        return self.summary["stack"]["tables"]

    @property
    def duration_s(self) -> float:
        return self.summary["ended_at"] - self.summary["started_at"]

    @property
    def on_aws(self) -> bool:
        return self.summary["stack"]["kind"] == "aws"
