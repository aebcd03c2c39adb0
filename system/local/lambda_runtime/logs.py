"""Function logs as CloudWatch Logs would hold them, and EMF lines collected as metrics."""

from __future__ import annotations

import json
import logging
import math
import time
from pathlib import Path

from system.local.lambda_runtime.outcome import Outcome

log = logging.getLogger("chat_harness.lambda")


def emf_lines(text: str) -> list[str]:
    """The lines of a function's log that are CloudWatch Embedded Metric Format documents."""
    found = []
    for line in text.splitlines():
        if not line.startswith("{") or '"_aws"' not in line:
            continue
        try:
            document = json.loads(line)
        except ValueError:
            continue
        if isinstance(document, dict) and "CloudWatchMetrics" in document.get("_aws", {}):
            found.append(line)
    return found


# In the logs directory: one line per invocation (the figures of Lambda's REPORT line),
# and one per DynamoDB operation (written by system.local.dynamodb_proxy).
INVOCATIONS_LOG = "invocations.jsonl"
OPERATIONS_LOG = "dynamodb.jsonl"


class FunctionLogs:
    """One ``<function>.log`` per function (START/END/REPORT framing), one metrics file,
    and the invocations log."""

    def __init__(self, directory: Path, metrics_file: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self.metrics_file = metrics_file
        self._metrics = metrics_file.open("a", encoding="utf-8")
        self._files: dict[str, object] = {}
        self._invocations = (directory / INVOCATIONS_LOG).open("a", encoding="utf-8")

    def _file(self, function: str):
        handle = self._files.get(function)
        if handle is None:
            handle = (self.directory / f"{function}.log").open("a", encoding="utf-8")
            self._files[function] = handle
        return handle

    def init(self, function: str, text: str, init_ms: float) -> None:
        handle = self._file(function)
        handle.write(text)
        handle.write(f"INIT_REPORT Init Duration: {init_ms:.2f} ms\n")
        handle.flush()

    def invocation(self, function: str, outcome: Outcome, text: str, memory_mb: int,
                   max_memory_mb: int | None, timeout_s: float) -> None:
        handle = self._file(function)
        rid = outcome.request_id
        handle.write(f"START RequestId: {rid} Version: $LATEST\n")
        handle.write(text)
        if text and not text.endswith("\n"):
            handle.write("\n")
        if outcome.failed and outcome.error.get("errorType") == "TimedOut":
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
            handle.write(f"{stamp}Z {rid} {outcome.error['errorMessage']}\n")
        handle.write(f"END RequestId: {rid}\n")
        used = f"\tMax Memory Used: {max_memory_mb} MB" if max_memory_mb else ""
        handle.write(
            f"REPORT RequestId: {rid}\tDuration: {outcome.duration_ms:.2f} ms\t"
            f"Billed Duration: {math.ceil(outcome.duration_ms)} ms\tMemory Size: {memory_mb} MB"
            f"{used}\n"
        )
        handle.flush()
        self._invocations.write(json.dumps({
            "t": round(time.time(), 3), "function": function, "request_id": rid,
            "duration_ms": round(outcome.duration_ms, 3), "memory_mb": memory_mb,
            "timeout_ms": round(timeout_s * 1000), "failed": outcome.failed,
            "error_type": outcome.error.get("errorType") if outcome.failed else None}) + "\n")
        self._invocations.flush()
        lines = emf_lines(text)
        if lines:
            self._metrics.write("\n".join(lines) + "\n")
            self._metrics.flush()
        log.debug("%s %s %.1f ms", function, rid, outcome.duration_ms)
        if outcome.failed:
            log.warning("%s %s failed: %s: %s", function, rid, outcome.error.get("errorType"),
                        outcome.error.get("errorMessage"))

    def close(self) -> None:
        for handle in self._files.values():
            handle.close()
        self._metrics.close()
        self._invocations.close()
