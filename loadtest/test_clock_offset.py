"""Distributed runs whose workers' clocks disagree: Locust masters and workers on loopback,
started one by one as the README's "Headless" section says (each worker with its own
environment; the load test's own locustfile, as the capacity report is not under test),
against one local stack. In one run a worker's clock is 250 ms ahead
(``CHAT_HARNESS_CLOCK_SHIFT_S``): its offset must be estimated as such, and its
per-recipient latencies, corrected onto the master's clock, must match those of a run
whose clocks agree.

The two runs go at the same time against the same stack, so that they share the
machine's and the stack's conditions (one after the other, the second would meet a warm
stack and whatever else the machine was doing then). Each has two steps of the same
users: the first is the fresh stack's warm-up, its Lambda workers starting under the
first messages (its p50s were 0.1 to 2.8 s, and apart by up to 550 ms); the second
step's per-recipient p50s are the ones compared.
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

LOCUSTFILE = Path(__file__).resolve().parent / "locustfile.py"
USERS = 10
LOAD = ["--steps", f"{USERS},{USERS}", "--step-hold", "15", "--messages-per-minute", "30",
        "--heartbeat-s", "5"]
SHIFT_S = 0.25
RUN_TIMEOUT_S = 300
# What the comparison allows besides the clock estimate's own uncertainty: how far apart
# the second step's per-recipient p50s of two such runs came on this 2-core machine,
# measured over 12 pairs on fresh stacks (6 with agreeing clocks, 6 like this test's):
# median 11 ms, largest 42 ms; with a margin for a machine busier than then.
RUN_TO_RUN_SPREAD_MS = 60.0

chat_stack = stack_fixture(scope="module", doc="The chat on dynalite, shared by both runs.")


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


# It compares two runs' latencies: run by itself after the parallel run (tox), so that
# other test processes do not widen their spread.
pytestmark = pytest.mark.alone


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
    agreeing = start_run("agreeing", (0.0, 0.0))
    skewed = start_run("skewed", (SHIFT_S, 0.0))
    agreeing_summary, summary = agreeing.summary(), skewed.summary()

    for run in (agreeing_summary, summary):
        assert len(run["workers"]) == 2
        assert run["delivery_ratio"] == 1
    worker = {skewed.clock_ahead[w["process"]]: w for w in summary["workers"]}
    # NTP's sign: the master's clock reads the worker's plus the offset.
    assert abs(worker[SHIFT_S]["clock_offset_ms"] + SHIFT_S * 1000) \
        <= worker[SHIFT_S]["clock_uncertainty_ms"]
    assert abs(worker[0.0]["clock_offset_ms"]) <= worker[0.0]["clock_uncertainty_ms"]
    uncertainty = summary["latency_uncertainty_ms"]
    assert uncertainty == pytest.approx(worker[SHIFT_S]["clock_uncertainty_ms"]
                                        + worker[0.0]["clock_uncertainty_ms"], abs=0.002)

    warm_p50_ms = [run["steps"][1]["fanout_ms"]["p50"] for run in (summary, agreeing_summary)]
    assert abs(warm_p50_ms[0] - warm_p50_ms[1]) <= uncertainty + RUN_TO_RUN_SPREAD_MS
    # The p50 alone would pass uncorrected too: the skew moves a quarter of the receipts
    # 250 ms later and a quarter below zero. Those below zero show it (corrected, none).
    assert skewed.per_recipient().get_count_at_value(0) \
        <= agreeing.per_recipient().get_count_at_value(0)
