"""The chat load test: ``locust -f loadtest/locustfile.py`` (the web UI on 127.0.0.1:8089),
or headless through ``chat-harness load``. ``chat_harness/locustfile.py`` is this test
plus the capacity report of every run.

With no ``--host`` and no ``--stack-file`` it starts a local stack for the session
(``--dynamodb`` chooses its backend) and stops it at the end. The chat's settings
(steps and step hold, or a plain user count and spawn rate; messages per user per
minute, schedule, heartbeat interval) are options that the web UI's start form shows,
and each test uses the values entered for it.

Each test, start to stop (or the shape's end), is a run: its fan-out figures start
from zero, and at its end its run directory is written (``loadtest/run_directory.py``)
under ``--runs-dir`` (``--run-dir`` names the first one). The web UI's Fan-out tab
shows the test's live figures, each process's generator health, and the session's
runs with a link to each report, served by the web UI.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import signal
import time
import uuid
from dataclasses import dataclass, field, fields
from pathlib import Path

import flask
import gevent
import locust  # noqa: F401 - first, so gevent patches sockets before anything else runs
import psutil
from locust import events, stats
from locust.runners import MasterRunner, WorkerRunner

from loadtest import run_directory
from loadtest.chat_user import ChatUser
from loadtest.clock import REFERENCE_CLOCK, ClockOffsets, latency_uncertainty_ms
from loadtest.clock_exchange import ClockProbe, answer_probes, shift_wall_clock_from_environment
from loadtest.generator import GeneratorMonitor, generator_health
from loadtest.live import FanoutDelta, LiveFanout
from loadtest.measurement import FanoutLedger, FanoutReport, onto_reference_clock
from loadtest.parameters import LoadParameters, token_secret
from loadtest.shapes import Step, StepShape, steps_from
from system.local.launcher import (
    LocalStackProcess,
    StackStartError,
    add_stack_arguments,
    stack_arguments_from,
)
from system.stackfile import StackFile

log = logging.getLogger("chat_harness.load")
SNAPSHOT_MESSAGE = "fanout_snapshot"
SNAPSHOT_WAIT_S = 30
LIVE_REPORT_EVERY_S = 2.0
LIVE_HEALTH_WINDOW_S = 10.0
RUNS_ROUTE = "/chat-harness/runs"
LOAD_FIELDS = {f.name for f in fields(LoadParameters)}


class Chatter(ChatUser):
    """The one user class of the run."""


class Steps(StepShape):
    """The run's shape, from the options of the test being started. Headless, its end
    stops the test and writes the run directory before Locust quits: quitting at once
    (Locust's way) would stop listening to the workers before their figures arrive."""

    def configure(self) -> None:
        options = self.runner.environment.parsed_options
        load = LoadParameters.from_options(options)
        self.steps = tuple(steps_from(list(load.steps), load.step_hold_s)) if load.steps else ()
        self.spawn_rate = load.step_spawn_rate
        self.plain = (options.num_users or 1, options.spawn_rate or 1.0)

    def tick(self) -> tuple[int, float] | None:
        current = super().tick()
        if current is not None or not self.runner.environment.parsed_options.headless:
            return current
        # In the shape's own greenlet: a stop from another kills it, and Locust's main, which
        # waits on it, quits at once. Returning None then quits the headless run.
        _session.stop_and_write()
        return None


@events.init_command_line_parser.add_listener
def _options(parser) -> None:
    parser.set_defaults(web_host="127.0.0.1")  # --web-host '*' serves every interface
    parser.add_argument("--stack-file", default="", include_in_web_ui=True,
                        help="target this stack file's WebSocket URL and logs (default: the "
                             "host, else a local stack started for the session)")
    add_stack_arguments(parser, include_in_web_ui=False)  # the session's own stack
    LoadParameters.add_options(parser, locust=True)
    parser.add_argument("--run-dir", default="", include_in_web_ui=False,
                        help="the first test's run directory (default: RUNS_DIR/<date-time>)")
    parser.add_argument("--runs-dir", default="runs", include_in_web_ui=False,
                        help="where each test's run directory goes (default %(default)s)")


@dataclass
class TestRun:
    """One test, from start to stop: what it ran with and what this process saw of it."""

    run_id: str
    load: LoadParameters
    started_at: float
    stack: StackFile | None = None  # what it ran against, if a stack file says (coordinator)
    ledger: FanoutLedger = field(default_factory=FanoutLedger)
    # node -> {"ledger": snapshot, "generator": report}, on the master
    snapshots: dict[str, dict] = field(default_factory=dict)
    workers: int = 0  # on the master: the most workers seen running it (snapshots to await)

    def steps(self, users: int) -> list[Step]:
        if self.load.steps:
            return steps_from(list(self.load.steps), self.load.step_hold_s)
        return [Step(users, 0.0, time.time() - self.started_at)]


class Session:
    """Everything one Locust process keeps across tests: the target, the generator
    monitor, the current test, and (master or single process) the runs written so far."""

    def __init__(self, environment) -> None:
        self.environment = environment
        self.options = environment.parsed_options
        self.monitor = GeneratorMonitor()
        self.clock_probe: ClockProbe | None = None  # a worker's estimates of its clock offset
        self.stack: LocalStackProcess | None = None
        self.stack_file: StackFile | None = None
        self.run: TestRun | None = None  # the test under way
        self.ending: TestRun | None = None  # the test whose run directory is being written
        self.finishing: gevent.Greenlet | None = None
        self.runs: list[dict] = []  # newest last: name, directory, delivery ratio, ...
        self.live = LiveFanout(LoadParameters.settle_s)
        self.generators: dict[str, dict] = {}  # process -> its latest health, for the web UI

    @property
    def runner(self):
        return self.environment.runner

    @property
    def coordinates(self) -> bool:
        """The master, or a process running alone: it writes the runs."""
        return not isinstance(self.runner, WorkerRunner)

    # -- the target ------------------------------------------------------------------------

    def find_target(self) -> None:
        """The stack file, else --host, else a local stack started for the session (its
        state under the runs directory, kept after the session with its logs)."""
        if self.options.stack_file:
            self.target_for_test()
            return
        if self.environment.host:
            return
        state_dir = Path(self.options.runs_dir) / f"stack-{time.strftime('%Y%m%d-%H%M%S')}"
        self.stack = LocalStackProcess(stack_arguments_from(self.options), state_dir=state_dir)
        try:
            self.stack_file = self.stack.start()
        except StackStartError as error:
            stop_forked_workers()
            raise SystemExit(f"chat-harness: {error}") from None
        self.environment.host = self.stack_file.websocket_url
        log.info("started a local stack for the session: %s (state in %s)",
                 self.environment.host, state_dir)

    def target_for_test(self) -> StackFile | None:
        """A stack file entered in the start form wins (its URL becomes the host); a host
        entered there that is not the stack's is a bare URL (no logs, no capacity report)."""
        if self.options.stack_file:
            self.stack_file = StackFile.read(Path(self.options.stack_file))
            self.environment.host = self.stack_file.websocket_url
            for user_class in self.environment.user_classes:  # set before this test's users
                user_class.host = self.environment.host
        if self.stack_file is None or self.environment.host != self.stack_file.websocket_url:
            return None
        return self.stack_file

    def target_authorizer(self) -> tuple[str | None, str]:
        """The authorizer on the target's $connect, and the stack it is on: a stack file's,
        else the session's own stack's (every process has its options: workers too)."""
        if self.options.stack_file:
            return StackFile.read(Path(self.options.stack_file)).authorizer, \
                self.options.stack_file
        return self.options.authorizer, "started for the session"

    # -- a test ----------------------------------------------------------------------------

    def start_test(self) -> None:
        """Every process: the users of this test record into a new ledger and use the
        options it was started with; the coordinator names the run for every worker."""
        if self.coordinates:  # workers get these with the test's options, as Locust sends them
            self.options.run_id = f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
            self.options.run_started_at = time.time()
        load = LoadParameters.from_options(self.options)
        # One start time for every process: each stops chatting settle_s before the end.
        self.run = TestRun(self.options.run_id, load, self.options.run_started_at,
                           self.target_for_test() if self.coordinates else None)
        ChatUser.ledger = self.run.ledger
        ChatUser.live = FanoutDelta()
        ChatUser.run_id = self.run.run_id
        ChatUser.heartbeat_s = load.heartbeat_s
        ChatUser.messages_per_minute = load.messages_per_minute
        ChatUser.poisson = load.schedule == "poisson"
        ChatUser.stop_sending_at = (self.run.started_at + load.duration_s - load.settle_s
                                    if load.duration_s is not None else float("inf"))
        ChatUser.token_secret = token_secret(*self.target_authorizer())
        if isinstance(self.runner, MasterRunner):
            self.run.workers = self.runner.worker_count
        self.live = LiveFanout(load.settle_s)
        if not self.monitor.running and not isinstance(self.runner, MasterRunner):
            self.monitor.start()  # for the session: each run reads its own window

    def own_snapshot(self, run: TestRun) -> dict:
        """This process's part of the run; its clock is the reference unless it is a
        worker, whose estimates against the master's go with it."""
        clock = (self.clock_probe.offsets().since(run.started_at)
                 if self.clock_probe is not None else REFERENCE_CLOCK)
        return {"run_id": run.run_id, "ledger": run.ledger.snapshot(),
                "generator": self.monitor.report(), "clock": clock.to_snapshot()}

    def stop_test(self) -> None:
        if self.run is None:
            return
        if isinstance(self.runner, WorkerRunner):
            self.runner.send_message(SNAPSHOT_MESSAGE, self.own_snapshot(self.run))
            return
        if isinstance(self.runner, MasterRunner):
            # Not the count now alone: a worker that has stopped is out of the count until it
            # reports ready again, though its snapshot is on its way.
            self.run.workers = max(self.run.workers, self.runner.worker_count)
        self.ending, self.run = self.run, None
        self.finishing = gevent.spawn(self.write_run, self.ending)

    def stop_and_write(self) -> None:
        self.runner.stop()
        if self.finishing is not None:
            self.finishing.join(SNAPSHOT_WAIT_S + run_directory.LOGS_SETTLE_LIMIT_S + 120)

    def received_snapshot(self, node_id: str, data: dict) -> None:
        for run in (self.run, self.ending):
            if run is not None and run.run_id == data["run_id"]:
                run.snapshots[node_id] = data

    # -- a run directory -------------------------------------------------------------------

    def run_dir_for(self, run: TestRun) -> Path:
        if self.options.run_dir and not self.runs:
            return Path(self.options.run_dir)
        return Path(self.options.runs_dir) / run.run_id

    def write_run(self, run: TestRun) -> None:
        """Once every worker's snapshot is in and the stack's last $disconnects are logged:
        the run directory, then the RUN_WRITTEN hooks (the capacity report)."""
        deadline = time.monotonic() + SNAPSHOT_WAIT_S
        while len(run.snapshots) < run.workers and time.monotonic() < deadline:
            gevent.sleep(0.1)  # workers' snapshots arrive as messages, after their test_stop
        if len(run.snapshots) < run.workers:
            log.warning("only %d of %d workers sent their fan-out snapshot",
                        len(run.snapshots), run.workers)
        stack = run.stack
        if stack is not None and (problem := run_directory.wait_until_settled(
                stack, run.started_at, sleep=gevent.sleep)):
            log.warning("the run's logs may lack its last invocations: %s", problem)
        run_dir = self.run_dir_for(run)
        run_dir.mkdir(parents=True, exist_ok=True)
        parts = list(run.snapshots.values())
        if not isinstance(self.runner, MasterRunner):
            parts.append(self.own_snapshot(run))
        summary, report = self.summary(run, parts, stack)
        run_directory.write_json(run_dir / run_directory.SUMMARY, summary)
        histograms = {name: getattr(report, name).encode()
                      for name in ("fanout", "last_recipient", "sender_echo")}
        run_directory.write_json(run_dir / run_directory.HISTOGRAMS, histograms)
        run_directory.write_locust_files(self.environment, run_dir, stats.PERCENTILES_TO_REPORT)
        if stack is not None:
            run_directory.copy_stack_logs(stack, run_dir, summary["started_at"],
                                          summary["ended_at"])
        for problem in run_directory.finish(run_dir):
            log.warning("no capacity report: %s", problem)
        self.runs.append({"name": run_dir.name, "directory": run_dir,
                          "delivery_ratio": summary["delivery_ratio"],
                          "messages_sent": summary["messages_sent"],
                          "saturated": summary["generator"]["saturated"]})
        log.info("Run directory: %s", run_dir)

    def summary(self, run: TestRun, parts: list[dict],
                stack: StackFile | None) -> tuple[dict, FanoutReport]:
        """summary.json: the run's fan-out figures, per step, per worker, and what it ran;
        and the merged report whose histograms it summarises. Every figure is on the
        master's clock: each worker's times are moved onto it with its offset estimates."""
        clocks = [ClockOffsets.from_snapshot(part["clock"]) for part in parts]
        snapshots = onto_reference_clock([part["ledger"] for part in parts],
                                         [clock.offset_at for clock in clocks])
        generators = [part["generator"] for part in parts]
        settle = run.load.settle_s
        report = FanoutLedger.merge(snapshots, settle_s=settle)
        users_peak = max(run.load.steps) if run.load.steps else (self.options.num_users or 1)
        steps = []
        for step in run.steps(users_peak):
            window = (run.started_at + step.starts_at, run.started_at + step.ends_at)
            figures = FanoutLedger.merge(snapshots, settle_s=settle, sent_between=window)
            steps.append({
                "users": step.users, "starts_at_s": step.starts_at, "ends_at_s": step.ends_at,
                **{key: value for key, value in figures.to_dict().items()
                   if key not in ("sender_echo_ms", "duplicated", "out_of_order")},
                "generator": generator_health(generators, window),
            })
        return {
            "run_id": run.run_id, "users_peak": users_peak, **report.to_dict(),
            "generator": generator_health(generators, (run.started_at, time.time())),
            "started_at": run.started_at, "ended_at": time.time(), "steps": steps,
            "latency_uncertainty_ms": latency_uncertainty_ms(clocks),
            "workers": [{"process": generator["process"], "messages_sent": alone.messages_sent,
                         "receipts": alone.fanout.count, **clock.summary()}
                        for generator, clock, alone in zip(
                            generators, clocks,
                            (FanoutLedger.merge([s], settle_s=settle) for s in snapshots),
                            strict=True)],
            "load": run.load.to_summary(),
            "stack": run_directory.stack_summary(stack, self.environment.host),
        }, report

    # -- the web UI ------------------------------------------------------------------------

    def fold_own_news(self) -> None:
        """Without workers, this process's users are the news."""
        while True:
            self.live.add(ChatUser.live.take())
            self.generators["local"] = generator_health([self.monitor.report()], _recent())
            gevent.sleep(LIVE_REPORT_EVERY_S)

    def tab_rows(self) -> list[dict]:
        rows = self.live.rows(self.runner.user_count, time.time())
        processes = [p for health in self.generators.values() for p in health["processes"]]
        if processes:
            saturated = [p["process"] for p in processes if p["saturated"]]
            rows.append({"figure": f"generator (last {LIVE_HEALTH_WINDOW_S:.0f} s): "
                                   "CPU % max / loop lag ms max",
                         "value": f"{max(p['cpu_percent_max'] for p in processes):.0f} / "
                                  f"{max(p['loop_lag_ms_max'] for p in processes):.0f}"
                                  + (f"  SATURATED: {', '.join(saturated)}" if saturated
                                     else "")})
        return rows

    def runs_document(self) -> dict:
        """The session's runs, newest first, for the list under the Fan-out tab."""
        return {"writing": self.finishing is not None and not self.finishing.ready(),
                "runs": [{"name": run["name"], "messages_sent": run["messages_sent"],
                          "delivery_ratio": run["delivery_ratio"],
                          "saturated": run["saturated"],
                          "report": f"{RUNS_ROUTE}/{run['name']}/report.html"
                          if (run["directory"] / "report.html").exists() else None,
                          "summary": f"{RUNS_ROUTE}/{run['name']}/summary.json"}
                         for run in reversed(self.runs)]}

    def run_file(self, name: str, path: str) -> flask.Response:
        run = next((r for r in self.runs if r["name"] == name), None)
        if run is None:
            flask.abort(404)
        return flask.send_from_directory(run["directory"].resolve(), path)


def load_from_form(options, form) -> LoadParameters:
    """The parameters a start form asks for, converted as Locust converts them (to the
    type of the option's current value); ValueError, in one line, if they are wrong."""
    values = dict(vars(options))
    for name, text in form.items():
        if name in values and name in LOAD_FIELDS and values[name] is not None:
            try:
                values[name] = type(values[name])(text)
            except ValueError:
                raise ValueError(f"{name} must be a number, not {text!r}") from None
    return LoadParameters.from_options(argparse.Namespace(**values))


def _recent() -> tuple[float, float]:
    return (time.time() - LIVE_HEALTH_WINDOW_S, time.time())


# Locust's tabs show tables of text, and poll only while a test runs: the list of runs
# (with links to each report) is the page's own, under the Fan-out tab, and polls
# RUNS_ROUTE.json itself.
_RUNS_SCRIPT = """<script>
(() => {
  const box = document.createElement("section");
  box.id = "chat-harness-runs";
  box.style.cssText = "margin: 16px 24px; font-family: Roboto, Helvetica, Arial, sans-serif";
  let runs = {writing: false, runs: []};
  const render = () => {
    const rows = runs.runs.map(r =>
      `<li>${r.report ? `<a href="${r.report}">${r.name}: report</a>` : `${r.name}: no report`}
       (<a href="${r.summary}">summary</a>), ${r.messages_sent} messages,
       delivery ${r.delivery_ratio.toFixed(4)}${r.saturated ? " <b>GENERATOR SATURATED</b>" : ""}</li>`);
    box.innerHTML = "<h3>Runs of this session</h3>" +
      (runs.writing ? "<p>Writing the last run's directory and report...</p>" : "") +
      (rows.length ? `<ul>${rows.join("")}</ul>` : "<p>None yet: each test is a run.</p>");
  };
  const place = () => {
    const onTab = new URLSearchParams(location.search).get("tab") === "fanout";
    const table = document.querySelector("main table");
    const anchor = table && table.closest(".MuiTableContainer-root, .MuiPaper-root");
    if (onTab && anchor && box.previousElementSibling !== anchor) anchor.after(box);
    if (!onTab && box.isConnected) box.remove();
  };
  const poll = async () => {
    try { runs = await (await fetch("RUNS_ROUTE.json")).json(); render(); } catch (e) {}
  };
  new MutationObserver(place).observe(document.body, {childList: true, subtree: true});
  setInterval(() => { poll(); place(); }, 2000);
  render(); poll();
})();
</script>""".replace("RUNS_ROUTE", RUNS_ROUTE)


def _add_web_ui(session: Session) -> None:
    """A Fan-out tab refreshed with the stats; under it the session's runs, whose files
    the web UI serves."""
    web_ui = session.environment.web_ui
    web_ui.template_args["extended_tabs"] = [{"title": "Fan-out", "key": "fanout"}]
    web_ui.template_args["extended_tables"] = [{"key": "fanout", "structure": [
        {"key": "figure", "title": "Figure"}, {"key": "value", "title": "Value"}]}]
    web_ui.app.add_url_rule(f"{RUNS_ROUTE}/<name>/<path:path>", "chat_harness_run_file",
                            web_ui.auth_required_if_enabled(session.run_file))
    web_ui.app.add_url_rule(f"{RUNS_ROUTE}.json", "chat_harness_runs",
                            web_ui.auth_required_if_enabled(
                                lambda: flask.jsonify(session.runs_document())))

    @web_ui.app.before_request
    def _refuse_bad_settings():
        """A start whose chat settings are wrong is refused with a one-line message
        (the UI shows it) instead of failing inside the test."""
        if flask.request.path != "/swarm" or flask.request.method != "POST":
            return None
        try:
            load_from_form(session.options, flask.request.form)
        except ValueError as error:
            return flask.jsonify({"success": False, "message": str(error),
                                  "host": session.environment.host})
        return None

    @web_ui.app.after_request
    def _extend(response):
        if flask.request.path == "/" and response.mimetype == "text/html":
            response.direct_passthrough = False
            response.set_data(response.get_data(as_text=True)
                              .replace("</body>", _RUNS_SCRIPT + "</body>"))
        elif flask.request.path == "/stats/requests" and response.is_json:
            response.set_data(flask.json.dumps(
                {**response.json, "extended_stats": [{"key": "fanout",
                                                      "data": session.tab_rows()}]}))
        return response


def stop_forked_workers() -> None:
    """The workers ``--processes`` forked from this master, told to quit (SIGTERM) when it
    exits before any test: Locust's own exit hook takes a child still running for one that
    has ended, so they would wait a minute for a master that is gone, holding the session's
    output open. A process that forked no workers has no children here."""
    for child in psutil.Process().children():
        with contextlib.suppress(psutil.NoSuchProcess):
            child.terminate()


def _interrupt_main() -> None:
    """Ctrl-C as Locust's main expects it, a KeyboardInterrupt where it waits for the test,
    but delivered by the event loop. Python's own handler raises it in whichever greenlet
    runs at that moment; one that caught it lost the Ctrl-C (the web UI went on running)."""
    gevent.get_hub().parent.throw(KeyboardInterrupt)


_session: Session | None = None


@events.init.add_listener
def _init(environment, **_) -> None:
    global _session
    try:
        shift_wall_clock_from_environment()
    except ValueError as error:
        raise SystemExit(f"chat-harness: {error}") from None
    _session = Session(environment)
    runner = environment.runner
    if not isinstance(runner, WorkerRunner):  # Locust's workers quit with their master
        gevent.signal_handler(signal.SIGINT, _interrupt_main)
    if isinstance(runner, MasterRunner):
        runner.register_message(SNAPSHOT_MESSAGE,
                                lambda environment, msg, **_: _session.received_snapshot(
                                    msg.node_id, msg.data))
        answer_probes(runner)  # before the stack starts: workers probe from their start
    if isinstance(runner, WorkerRunner):
        _session.clock_probe = ClockProbe(runner)
        _session.clock_probe.start()
    if _session.coordinates:
        _session.find_target()
    if environment.web_ui is not None:
        _add_web_ui(_session)
    if not isinstance(runner, MasterRunner | WorkerRunner):
        gevent.spawn(_session.fold_own_news)


@events.report_to_master.add_listener
def _report_to_master(client_id, data, **_) -> None:
    data["fanout"] = ChatUser.live.take()
    data["generator"] = generator_health([_session.monitor.report()], _recent())


@events.worker_report.add_listener
def _worker_report(client_id, data, **_) -> None:
    if "fanout" in data:
        _session.live.add(data["fanout"])
    if "generator" in data:
        _session.generators[client_id] = data["generator"]


@events.test_start.add_listener
def _test_start(environment, **_) -> None:
    _session.start_test()


@events.test_stop.add_listener
def _test_stop(environment, **_) -> None:
    _session.stop_test()


@events.reset_stats.add_listener
def _reset_stats(**_) -> None:
    """The tab's live figures start again with Locust's; the run's report is the whole test's."""
    _session.live = LiveFanout(_session.live.settle_s)


@events.quitting.add_listener
def _quitting(environment, **_) -> None:
    """A quit that came before the test's stop (Ctrl-C, SIGTERM; Locust quits a headless
    master when its last worker leaves) stops the users, then writes the run."""
    if _session.run is not None and _session.coordinates:
        _session.runner.stop()  # the users stop before the run is written and the stack stops
        if _session.run is not None:  # the runner had stopped already (its last worker left)
            _session.stop_test()
    if _session.finishing is not None:
        _session.finishing.join(SNAPSHOT_WAIT_S + run_directory.LOGS_SETTLE_LIMIT_S + 120)
    _session.monitor.stop()
    if _session.clock_probe is not None:
        _session.clock_probe.stop()
    if _session.stack is not None:
        _session.stack.stop()
