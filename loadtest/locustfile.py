"""The chat load test: ``locust -f loadtest/locustfile.py`` (web UI on :8089).

With no ``--host`` and no ``--stack-file`` it starts a local stack for the run
and stops it at the end; ``--host ws(s)://…`` or ``--stack-file`` target
another. Users follow a step shape (``--steps 25,50 --step-hold 30``); each
chats ``--messages-per-minute`` times a minute on an open schedule
(``--schedule constant|poisson``) and sends a heartbeat every
``--heartbeat-s``. Per-recipient latencies show live as FANOUT rows; at the
end the fan-out report (delivery ratio, losses, last-recipient latency, HDR
percentiles merged across workers) is printed and, with ``--run-dir``, written
as ``summary.json`` with the encoded histograms.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import flask
import gevent
import locust  # noqa: F401 - first, so gevent patches sockets before anything else runs
from locust import events
from locust.runners import MasterRunner, WorkerRunner

from loadtest.chat_user import ChatUser
from loadtest.generator import GeneratorMonitor, generator_health
from loadtest.live import LiveFanout
from loadtest.measurement import FanoutLedger
from loadtest.parameters import LoadParameters
from loadtest.shapes import StepShape, steps_from
from system.local.launcher import LocalStackProcess
from system.stackfile import StackFile

log = logging.getLogger("chat_harness.load")
SNAPSHOT_MESSAGE = "fanout_snapshot"
SNAPSHOT_WAIT_S = 30


class Chatter(ChatUser):
    """The one user class of the run."""


class Steps(StepShape):
    """The run's step shape, configured from the command line at init."""


@events.init_command_line_parser.add_listener
def _options(parser) -> None:
    group = parser.add_argument_group("chat-harness")
    group.add_argument("--stack-file", default="", help="target this stack file's WebSocket URL")
    LoadParameters.add_options(group, processes=False)  # Locust has its own --processes
    group.add_argument("--run-id", default="chat-harness",
                       help="tag for this run's messages (the same on every worker)")
    group.add_argument("--run-dir", default="", help="write summary.json and histograms here")


class FanoutRun:
    """The run's fan-out bookkeeping: this process's ledger, and (on the master or a
    single process) every worker's snapshot, merged at the end."""

    def __init__(self, environment) -> None:
        self.environment = environment
        self.options = environment.parsed_options
        self.load = LoadParameters.from_options(self.options)
        self.ledger = FanoutLedger()
        self.monitor = GeneratorMonitor()
        self.started_at = 0.0
        # worker -> {"ledger": its ledger's snapshot, "generator": its monitor's report}
        self.snapshots: dict[str, dict] = {}
        self.workers = 0
        self.stack = None

    def configure_users(self) -> None:
        load = self.load
        ChatUser.ledger = self.ledger
        ChatUser.run_id = self.options.run_id
        ChatUser.heartbeat_s = load.heartbeat_s
        ChatUser.messages_per_minute = load.messages_per_minute
        ChatUser.poisson = load.schedule == "poisson"
        StepShape.steps = tuple(steps_from(list(load.steps), load.step_hold_s))
        StepShape.spawn_rate = load.step_spawn_rate

    def find_target(self) -> None:
        """--host, else the stack file, else a local stack started for the run."""
        if self.environment.host:
            return
        if self.options.stack_file:
            self.environment.host = StackFile.read(Path(self.options.stack_file)).websocket_url
            return
        self.stack = LocalStackProcess()
        self.environment.host = self.stack.start().websocket_url
        log.info("started a local stack for the run: %s", self.environment.host)

    def own_snapshot(self) -> dict:
        return {"ledger": self.ledger.snapshot(), "generator": self.monitor.report()}

    def report(self) -> dict:
        parts = list(self.snapshots.values())
        if not isinstance(self.environment.runner, MasterRunner):
            parts.append(self.own_snapshot())
        snapshots = [part["ledger"] for part in parts]
        generators = [part["generator"] for part in parts]
        settle = self.load.settle_s
        report = FanoutLedger.merge(snapshots, settle_s=settle)
        summary = report.to_dict()
        summary["generator"] = generator_health(generators)
        summary["started_at"] = self.started_at
        summary["steps"] = []
        for step in StepShape.steps:
            window = (self.started_at + step.starts_at, self.started_at + step.ends_at)
            figures = FanoutLedger.merge(snapshots, settle_s=settle, sent_between=window)
            summary["steps"].append({
                "users": step.users, "starts_at_s": step.starts_at, "ends_at_s": step.ends_at,
                **{key: value for key, value in figures.to_dict().items()
                   if key not in ("sender_echo_ms", "duplicated", "out_of_order")},
                "generator": generator_health(generators, window),
            })
        summary["workers"] = [
            {"messages_sent": alone.messages_sent, "receipts": alone.fanout.count}
            for alone in (FanoutLedger.merge([s], settle_s=settle)
                          for s in snapshots)
        ]
        if self.options.run_dir:
            run_dir = Path(self.options.run_dir)
            run_dir.mkdir(parents=True, exist_ok=True)
            (run_dir / "fanout.json").write_text(json.dumps(summary, indent=2) + "\n")
            histograms = {name: getattr(report, name).encode()
                          for name in ("fanout", "last_recipient", "sender_echo")}
            (run_dir / "histograms.json").write_text(json.dumps(histograms, indent=2) + "\n")
        return summary


_run: FanoutRun | None = None


@events.init.add_listener
def _init(environment, **_) -> None:
    global _run
    _run = FanoutRun(environment)
    _run.configure_users()
    runner = environment.runner
    if isinstance(runner, MasterRunner):
        runner.register_message(SNAPSHOT_MESSAGE,
                                lambda environment, msg, **_: _run.snapshots.update(
                                    {msg.node_id: msg.data}))
    if not isinstance(runner, WorkerRunner):
        _run.find_target()
    if environment.web_ui is not None:
        _add_fanout_tab(environment)
    if not isinstance(runner, MasterRunner | WorkerRunner):
        gevent.spawn(_fold_own_news)


LIVE_REPORT_EVERY_S = 2.0
LIVE_HEALTH_WINDOW_S = 10.0
_live = LiveFanout()


_generators: dict[str, dict] = {}  # process -> its latest health, for the web UI


@events.report_to_master.add_listener
def _report_to_master(client_id, data, **_) -> None:
    data["fanout"] = ChatUser.live.take()
    data["generator"] = generator_health([_run.monitor.report()], _recent())


@events.worker_report.add_listener
def _worker_report(client_id, data, **_) -> None:
    if "fanout" in data:
        _live.add(data["fanout"])
    if "generator" in data:
        _generators[client_id] = data["generator"]


def _recent() -> tuple[float, float]:
    return (time.time() - LIVE_HEALTH_WINDOW_S, time.time())


def _fold_own_news() -> None:
    """Without workers, this process's users are the news."""
    while True:
        _live.add(ChatUser.live.take())
        _generators["local"] = generator_health([_run.monitor.report()], _recent())
        gevent.sleep(LIVE_REPORT_EVERY_S)


def _add_fanout_tab(environment) -> None:
    """A 'Fan-out' tab in the web UI, refreshed with the stats."""
    web_ui = environment.web_ui
    web_ui.template_args["extended_tabs"] = [{"title": "Fan-out", "key": "fanout"}]
    web_ui.template_args["extended_tables"] = [{"key": "fanout", "structure": [
        {"key": "figure", "title": "Figure"}, {"key": "value", "title": "Value"}]}]

    @web_ui.app.after_request
    def _with_fanout(response):
        if flask.request.path != "/stats/requests" or not response.is_json:
            return response
        rows = _live.rows(environment.runner.user_count)
        processes = [p for health in _generators.values() for p in health["processes"]]
        if processes:
            saturated = [p["process"] for p in processes if p["saturated"]]
            rows.append({"figure": f"generator (last {LIVE_HEALTH_WINDOW_S:.0f} s): "
                                   "CPU % max / loop lag ms max",
                         "value": f"{max(p['cpu_percent_max'] for p in processes):.0f} / "
                                  f"{max(p['loop_lag_ms_max'] for p in processes):.0f}"
                                  + (f"  SATURATED: {', '.join(saturated)}" if saturated
                                     else "")})
        response.set_data(json.dumps(
            {**response.json, "extended_stats": [{"key": "fanout", "data": rows}]}))
        return response


@events.test_start.add_listener
def _test_start(environment, **_) -> None:
    """Every process: chat stops settle_s before the last step ends; the generator
    is watched from now on."""
    _run.started_at = time.time()
    ChatUser.stop_sending_at = (_run.started_at + StepShape.steps[-1].ends_at
                                - _run.load.settle_s)
    if not isinstance(environment.runner, MasterRunner):
        _run.monitor.start()


@events.test_stop.add_listener
def _test_stop(environment, **_) -> None:
    runner = environment.runner
    _run.monitor.stop()
    if isinstance(runner, WorkerRunner):
        runner.send_message(SNAPSHOT_MESSAGE, _run.own_snapshot())
    elif isinstance(runner, MasterRunner):
        _run.workers = max(_run.workers, runner.worker_count)


@events.quitting.add_listener
def _quitting(environment, **_) -> None:
    if isinstance(environment.runner, WorkerRunner):
        return
    deadline = time.monotonic() + SNAPSHOT_WAIT_S
    while len(_run.snapshots) < _run.workers and time.monotonic() < deadline:
        gevent.sleep(0.1)  # workers' snapshots arrive as messages, after their test_stop
    if len(_run.snapshots) < _run.workers:
        log.warning("only %d of %d workers sent their fan-out snapshot",
                    len(_run.snapshots), _run.workers)
    summary = _run.report()
    print(json.dumps(summary, indent=2))
    if _run.stack is not None:
        _run.stack.stop()
