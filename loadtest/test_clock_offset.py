"""A distributed run whose workers' clocks disagree: a Locust master and two workers on
loopback, started one by one as the README's "Headless" section says (each worker with
its own environment; the load test's own locustfile, as the capacity report is not under
test), against a local stack. One worker's clock is SHIFT_S ahead
(``CHAT_HARNESS_CLOCK_SHIFT_S``): its offset must be estimated as such, within the
uncertainty the run states, and its times corrected onto the master's clock.

What shows the correction, whatever the machine's speed: the messages the shifted worker's
users send are stamped SHIFT_S late, so uncorrected, every copy the other worker's users
receive within SHIFT_S (nearly all: latencies here are milliseconds) has a latency below
zero: a quarter of all receipts. Corrected, the only ones are those whose true latency is
under the offset estimate's error (a fraction of a millisecond).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from hdrh.histogram import HdrHistogram

from loadtest.clock_exchange import CLOCK_SHIFT_VARIABLE
from system.local.processes import free_port
from system.local.stack_fixtures import stack_fixture

# A load run: tox runs these files two at a time, after the rest (see load_run in pyproject).
pytestmark = pytest.mark.load_run

LOCUSTFILE = Path(__file__).resolve().parent / "locustfile.py"
USERS = 10
# Chat stops settle_s (5 s) before the end, and SHIFT_S sooner on the worker ahead (its
# clock says the end is nearer): a 12 s step leaves each of its users about 5 s of chat.
LOAD = ["--steps", f"{USERS}", "--step-hold", "12", "--messages-per-minute", "60",
        "--heartbeat-s", "5"]
SHIFT_S = 2.0
RUN_TIMEOUT_S = 300
# Below zero after correction: at most this share of the receipts (uncorrected: a quarter).
BELOW_ZERO_AT_MOST = 0.05

chat_stack = stack_fixture(scope="module", doc="The chat on dynalite, for the run.")


@dataclass
class DistributedRun:
    """A master and its two workers, running, each process's output in a log file beside
    the run directory; ``clock_ahead`` by worker process name."""

    run_dir: Path
    processes: list[subprocess.Popen]  # the master first
    clock_ahead: dict[str, float]

    @staticmethod
    def start(run_dir: Path, stack_file: Path,
              clock_ahead: tuple[float, float]) -> DistributedRun:
        port = str(free_port())

        def locust(name: str, arguments: list[str], environment: dict) -> subprocess.Popen:
            with run_dir.with_name(f"{run_dir.name}-{name}.log").open("w") as log:
                return subprocess.Popen([sys.executable, "-m", "locust", "-f", str(LOCUSTFILE),
                                         *arguments], stdout=log, stderr=subprocess.STDOUT,
                                        env=environment)

        unshifted = {k: v for k, v in os.environ.items() if k != CLOCK_SHIFT_VARIABLE}
        master = locust("master", ["--master", "--headless", "--master-bind-host", "127.0.0.1",
                                   "--master-bind-port", port, "--expect-workers", "2",
                                   "--stack-file", str(stack_file), *LOAD,
                                   "--run-dir", str(run_dir)], unshifted)
        workers = [locust(f"worker{number}", ["--worker", "--master-host", "127.0.0.1",
                                              "--master-port", port],
                          {**unshifted, CLOCK_SHIFT_VARIABLE: str(ahead)})
                   for number, ahead in enumerate(clock_ahead)]
        names = [f"{socket.gethostname()}:{worker.pid}" for worker in workers]
        return DistributedRun(run_dir, [master, *workers],
                              dict(zip(names, clock_ahead, strict=True)))

    def summary(self) -> dict:
        """The run's summary.json once every process has ended (the workers quit with
        their master)."""
        for process in self.processes:
            process.wait(timeout=RUN_TIMEOUT_S)
        path = self.run_dir / "summary.json"
        master_log = self.run_dir.with_name(f"{self.run_dir.name}-master.log")
        assert path.exists(), master_log.read_text()[-4000:]
        return json.loads(path.read_text())

    def per_recipient(self) -> HdrHistogram:
        """The merged per-recipient histogram the run wrote (plain HDR: a latency below
        zero was recorded as 0)."""
        histograms = json.loads((self.run_dir / "histograms.json").read_text())
        return HdrHistogram.decode(histograms["fanout"])


@pytest.fixture
def start_run(chat_stack, tmp_path):
    """``start_run(name, clock_ahead)``: a distributed run against the chat stack, its
    processes ended after the test, whatever happened."""
    started: list[DistributedRun] = []

    def start(name: str, clock_ahead: tuple[float, float]) -> DistributedRun:
        started.append(DistributedRun.start(tmp_path / name, chat_stack.stack_path,
                                            clock_ahead))
        return started[-1]

    yield start
    for run in started:
        for process in run.processes:
            process.kill()


def test_a_worker_whose_clock_is_ahead_is_corrected_onto_the_masters(start_run):
    run = start_run("skewed", (SHIFT_S, 0.0))
    summary = run.summary()

    assert len(summary["workers"]) == 2
    assert summary["delivery_ratio"] == 1
    worker = {run.clock_ahead[w["process"]]: w for w in summary["workers"]}
    assert worker[SHIFT_S]["messages_sent"] > 0 and worker[0.0]["messages_sent"] > 0
    # NTP's sign: the master's clock reads the worker's plus the offset.
    assert abs(worker[SHIFT_S]["clock_offset_ms"] + SHIFT_S * 1000) \
        <= worker[SHIFT_S]["clock_uncertainty_ms"]
    assert abs(worker[0.0]["clock_offset_ms"]) <= worker[0.0]["clock_uncertainty_ms"]
    uncertainty = summary["latency_uncertainty_ms"]
    assert uncertainty == pytest.approx(worker[SHIFT_S]["clock_uncertainty_ms"]
                                        + worker[0.0]["clock_uncertainty_ms"], abs=0.002)

    per_recipient = run.per_recipient()  # a latency below zero is recorded as 0
    below_zero = per_recipient.get_count_at_value(0)
    assert below_zero <= BELOW_ZERO_AT_MOST * per_recipient.get_total_count(), \
        f"{below_zero} of {per_recipient.get_total_count()} receipts before their send"
