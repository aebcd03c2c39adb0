"""The chat load test with a capacity report for every run:
``locust -f chat_harness/locustfile.py`` (or ``chat-harness ui``; ``chat-harness load``
runs it headless). The test is loadtest/locustfile.py's; this file adds the report,
built when each run directory is complete, in a child process (``chat-harness report``)
so that the web UI stays responsive while matplotlib draws.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from loadtest.locustfile import Chatter, Steps  # noqa: F401 - Locust finds them here
from loadtest.run_directory import RUN_WRITTEN

REPORT_TIMEOUT_S = 300


def build_report(run_dir: Path) -> None:
    """``chat-harness report RUN_DIR``; its one-line error, if it fails."""
    result = subprocess.run([sys.executable, "-m", "chat_harness", "report", str(run_dir)],
                            capture_output=True, text=True, timeout=REPORT_TIMEOUT_S,
                            check=False)
    if result.returncode != 0:
        raise ValueError((result.stderr.strip().splitlines() or ["the report failed"])[-1])


RUN_WRITTEN.append(build_report)
