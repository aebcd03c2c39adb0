"""The Lambda runtime emulation on its own: warm reuse, concurrency, throttling, timeouts,
errors, environments that fail, logs."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from pathlib import Path

import psutil
import pytest

from system.local.lambda_runtime.fork_server import FORKS_POSSIBLE
from system.local.lambda_runtime.logs import FunctionLogs
from system.local.lambda_runtime.outcome import THROTTLED, exit_error, response_too_large
from system.local.lambda_runtime.pool import LINE_LIMIT, LambdaRuntime
from system.local.lambda_runtime.worker import LOG_EVENT_BYTES, CappedLog
from system.routes import FunctionSpec

PROBES = Path(__file__).parent / "handlers"
CONCURRENCY = 2
QUEUE_LIMIT = 4
# Bounds only a wait that would otherwise hang a failing test; no timing is asserted.
HANG_GUARD_S = 30


def spec(name: str, handler: str, **kwargs) -> FunctionSpec:
    return FunctionSpec(name=name, handler=handler, code_dir=PROBES, **kwargs)


@pytest.fixture
async def runtime(tmp_path):
    specs = [
        spec("Pid", "runtime_probe.pid", environment={"OWN": "mine"}),
        spec("Hold", "runtime_probe.hold", timeout_s=1.0),
        spec("Chatty", "runtime_probe.chatty"),
        spec("Crash", "runtime_probe.crash"),
        spec("NotJson", "runtime_probe.not_json"),
        spec("Broken", "broken_probe.handler"),
        spec("Blocked", "runtime_probe.blocked"),
        spec("Orphan", "runtime_probe.leave_a_child", timeout_s=1.0),
        spec("Sized", "runtime_probe.sized"),
        spec("Flood", "runtime_probe.flood"),
        spec("OwnModels", "runtime_probe.client_of", timeout_s=HANG_GUARD_S,
             environment={"AWS_DATA_PATH": str(PROBES / "models")}),
    ]
    runtime = LambdaRuntime({s.name: s for s in specs}, "eu-west-1", {"STACK": "local"},
                            concurrency=CONCURRENCY, queue_limit=QUEUE_LIMIT,
                            logs=FunctionLogs(tmp_path / "logs", tmp_path / "m.jsonl"))
    yield runtime
    await runtime.stop()


class Rendezvous:
    """A loopback port where probe handlers report that they run by connecting; the test
    holds each connection (a Blocked invocation waits until it is closed)."""

    def __init__(self) -> None:
        self._arrivals: asyncio.Queue = asyncio.Queue()
        self._held: list[asyncio.StreamWriter] = []

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._arrive, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _arrive(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._held.append(writer)
        await self._arrivals.put(reader)

    async def arrival(self) -> asyncio.StreamReader:
        """The next handler to connect (its invocation is running)."""
        return await asyncio.wait_for(self._arrivals.get(), HANG_GUARD_S)

    def release(self) -> None:
        """Hang up on every handler that connected."""
        for writer in self._held:
            writer.close()

    async def stop(self) -> None:
        self.release()
        self._server.close()
        await self._server.wait_closed()


@pytest.fixture
async def rendezvous():
    meeting = Rendezvous()
    await meeting.start()
    yield meeting
    await meeting.stop()


async def hold_every_environment(runtime, rendezvous) -> list[asyncio.Task]:
    """Blocked invocations on all of the function's concurrency, returned once they run."""
    held = [asyncio.create_task(runtime.invoke("Blocked", {"port": rendezvous.port}))
            for _ in range(CONCURRENCY)]
    for _ in held:
        await rendezvous.arrival()
    return held


async def test_environment_is_imported_once_and_reused(runtime):
    first = await runtime.invoke("Pid", {"env": ["OWN", "STACK", "AWS_REGION", "HOME"]})
    second = await runtime.invoke("Pid", {})
    assert first.result["pid"] == second.result["pid"]
    assert first.result["env"] == {"OWN": "mine", "STACK": "local", "AWS_REGION": "eu-west-1",
                                   "HOME": None}
    assert first.request_id != second.request_id


async def test_an_environment_leads_its_own_process_group_named_after_its_function(runtime):
    outcome = await runtime.invoke("Pid", {})
    pid = outcome.result["pid"]
    assert os.getpgid(pid) == pid
    assert Path(f"/proc/{pid}/comm").read_text().strip() == "Pid"


@pytest.mark.skipif(not FORKS_POSSIBLE, reason="environments are forked on Linux only")
async def test_environments_are_forked_and_without_their_fork_server_start_on_their_own(
        runtime):
    """Forked from the fork server (the worker's own imports made once); a server that
    has ended leaves its functions their environments, each a process of its own."""
    first = await runtime.invoke("Pid", {})
    server = psutil.Process(first.result["pid"]).parent()
    assert "--fork-server" in server.cmdline()
    await killed(server.pid)
    after = await runtime.invoke("Sized", {"bytes": 1})
    assert not after.failed and psutil.Process(after.result["pid"]).ppid() == os.getpid()


async def test_a_function_with_botocore_models_of_its_own_has_clients_of_them(runtime):
    """AWS_DATA_PATH in a function's environment adds to botocore's models, in a forked
    environment too (whose fork server read the common models for it beforehand)."""
    outcome = await runtime.invoke("OwnModels", {"service": "chatprobe"})
    assert outcome.result == {"api_version": "2026-12-06"}, outcome


async def test_concurrency_is_limited_per_function(runtime):
    outcomes = await asyncio.gather(*(runtime.invoke("Hold", {"seconds": 0.3}) for _ in range(5)))
    assert all(not o.failed for o in outcomes)
    assert len({o.result["pid"] for o in outcomes}) == CONCURRENCY


async def test_timeout_kills_the_environment(runtime, tmp_path):
    before = await runtime.invoke("Hold", {"seconds": 0})
    timed_out = await runtime.invoke("Hold", {"seconds": 5})
    assert timed_out.error["errorType"] == "TimedOut"
    assert timed_out.error["errorMessage"] == "Task timed out after 1.00 seconds"
    after = await runtime.invoke("Hold", {"seconds": 0})
    assert after.result["pid"] != before.result["pid"]
    lines = (tmp_path / "logs" / "invocations.jsonl").read_text().splitlines()
    assert [json.loads(line)["error_type"] for line in lines] == [None, "TimedOut", None]


async def test_handler_errors_are_lambda_error_documents(runtime):
    crashed = await runtime.invoke("Crash", {})
    assert crashed.error["errorType"] == "ValueError"
    assert crashed.error["errorMessage"] == "probe crashed"
    assert crashed.error["stackTrace"]
    assert (await runtime.invoke("NotJson", {})).error["errorType"] == "Runtime.MarshalError"
    broken = await runtime.invoke("Broken", {})
    assert broken.error["errorType"] == "Runtime.ImportModuleError"
    assert "cannot load" in broken.error["errorMessage"]


async def test_output_is_the_functions_log_and_emf_lines_are_metrics(runtime, tmp_path):
    outcome = await runtime.invoke("Chatty", {})
    assert outcome.result == "done"
    log = (tmp_path / "logs" / "Chatty.log").read_text()
    assert f"START RequestId: {outcome.request_id} Version: $LATEST" in log
    assert "printed line" in log
    assert "[INFO]" in log and f"{outcome.request_id}\tlogged line" in log
    assert f"END RequestId: {outcome.request_id}" in log
    assert f"REPORT RequestId: {outcome.request_id}\tDuration:" in log
    [metric] = [json.loads(line) for line in (tmp_path / "m.jsonl").read_text().splitlines()]
    assert metric["Things"] == 3


async def test_an_invocation_outlives_a_caller_that_stops_waiting(runtime, tmp_path):
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(runtime.invoke("Hold", {"seconds": 0.5}), 0.05)
    await runtime.stop()  # waits for what is still running
    log = (tmp_path / "logs" / "Hold.log").read_text()
    assert log.count("REPORT RequestId") == 1 and "Task timed out" not in log


async def test_invocations_beyond_the_queue_limit_are_throttled(runtime, rendezvous, caplog):
    held = await hold_every_environment(runtime, rendezvous)
    limit = runtime.functions["Blocked"].queue_limit
    queued = [asyncio.create_task(runtime.invoke("Blocked", {})) for _ in range(limit)]
    # Tasks start in the order they were made: the queue is full when this one asks.
    throttled = await asyncio.wait_for(runtime.invoke("Blocked", {}), HANG_GUARD_S)
    assert throttled.status_code == THROTTLED and throttled.rejected
    assert throttled.error["errorType"] == "TooManyRequestsException"
    assert throttled.error["errorMessage"] == "Rate Exceeded."
    assert [r.getMessage() for r in caplog.records if "throttled" in r.getMessage()] == [
        f"Blocked throttled: {limit} invocations already wait for an environment (queue limit)"]
    rendezvous.release()
    outcomes = await asyncio.gather(*held, *queued)
    assert not any(o.failed for o in outcomes)


@pytest.mark.parametrize("caller", ["start_within", "timeout"])
async def test_an_invocation_not_started_when_its_caller_gives_up_never_runs(
        runtime, rendezvous, tmp_path, caller):
    held = await hold_every_environment(runtime, rendezvous)
    late = {"touch": str(tmp_path / "late")}
    if caller == "start_within":
        assert (await runtime.invoke("Blocked", late, start_within=0)).status_code == THROTTLED
    else:
        with pytest.raises(TimeoutError):  # the environments are held: it cannot start
            await asyncio.wait_for(runtime.invoke("Blocked", late), 0.1)
    rendezvous.release()
    await asyncio.gather(*held)
    control = await runtime.invoke("Blocked", {"touch": str(tmp_path / "control")})
    await runtime.stop()  # waits for whatever is still running
    assert not control.failed and (tmp_path / "control").exists()
    assert not (tmp_path / "late").exists()


async def killed(pid: int) -> None:
    """SIGKILL ``pid``; return once it has exited (its pidfd turns readable)."""
    loop = asyncio.get_running_loop()
    exited = loop.create_future()
    pidfd = os.pidfd_open(pid)
    try:
        loop.add_reader(pidfd, lambda: exited.done() or exited.set_result(None))
        os.kill(pid, signal.SIGKILL)
        await asyncio.wait_for(exited, HANG_GUARD_S)
    finally:
        loop.remove_reader(pidfd)
        os.close(pidfd)


@pytest.mark.skipif(not hasattr(os, "pidfd_open"), reason="sees the kill through a pidfd")
async def test_an_environment_killed_while_idle_is_replaced(runtime, caplog):
    before = await runtime.invoke("Pid", {})
    await killed(before.result["pid"])
    after = await runtime.invoke("Pid", {})
    assert not after.failed and after.result["pid"] != before.result["pid"]
    [line] = [r.getMessage() for r in caplog.records if "found dead" in r.getMessage()]
    assert line == (f"Pid: environment (pid {before.result['pid']}) found dead while idle, "
                    f"discarded: Runtime exited with error: signal: killed")


async def test_an_answer_over_the_line_limit_is_refused_and_its_environment_replaced(runtime):
    before = await runtime.invoke("Sized", {})
    oversize = await runtime.invoke("Sized", {"bytes": LINE_LIMIT + 1})
    assert oversize.error == response_too_large() and not oversize.rejected
    after = await runtime.invoke("Sized", {"bytes": 1})
    assert after.result == {"pid": after.result["pid"], "padding": "x"}
    assert after.result["pid"] != before.result["pid"]


async def test_an_environment_that_dies_mid_invocation_is_an_exit_error(runtime):
    died = await runtime.invoke("Pid", {"die": True})
    assert died.error == {"errorType": "Runtime.ExitError", "errorMessage":
                          f"RequestId: {died.request_id} Error: Runtime exited with error: "
                          f"signal: killed"}
    assert not (await runtime.invoke("Pid", {})).failed


def test_an_exit_status_is_worded_as_lambda_words_it():
    assert exit_error(1, None) == {"errorType": "Runtime.ExitError",
                                   "errorMessage": "Runtime exited with error: exit status 1"}


async def test_a_timeout_kills_what_the_handler_started(runtime, rendezvous):
    invocation = asyncio.create_task(runtime.invoke("Orphan", {"port": rendezvous.port}))
    child_line = await rendezvous.arrival()  # held open by the child alone
    child = int(await child_line.readline())
    assert (await invocation).error["errorType"] == "TimedOut"
    try:
        assert await asyncio.wait_for(child_line.read(), HANG_GUARD_S) == b""  # it is gone
    except TimeoutError:
        os.kill(child, signal.SIGKILL)
        raise


async def test_a_handler_printing_megabytes_leaves_a_capped_log(runtime, tmp_path):
    outcome = await runtime.invoke("Flood", {})
    assert outcome.result == "done"
    log = (tmp_path / "logs" / "Flood.log").read_text()
    assert LOG_EVENT_BYTES < len(log) < 2 * LOG_EVENT_BYTES
    assert "[log truncated: " in log and f"REPORT RequestId: {outcome.request_id}" in log


def test_the_capped_log_keeps_whole_characters_and_says_what_it_dropped():
    log = CappedLog(limit=5)
    log.write("ab\u20ac")  # 2 + 3 bytes: just fits
    log.write("cd")
    log.write("\u20ac")
    assert log.getvalue() == ("ab\u20ac\n[log truncated: 3 more characters dropped; a CloudWatch "
                              f"Logs event holds at most {LOG_EVENT_BYTES} bytes]\n")
    split = CappedLog(limit=4)
    split.write("ab\u20ac")  # the euro sign does not fit whole
    assert split.getvalue().startswith("ab\n[log truncated: 1 more characters dropped")


@pytest.mark.parametrize(("async_retries", "succeed_at", "attempts"), [
    (2, None, 3),  # Lambda's default: the first attempt and two retries, then it gives up
    (0, None, 1),  # the fan-out function's: never again
    (2, 2, 2),     # a retry that succeeds is the last
])
async def test_a_failed_event_is_tried_again_as_its_retries_say(tmp_path, caplog, async_retries,
                                                                succeed_at, attempts):
    failing = spec("Failing", "runtime_probe.fails_until", async_retries=async_retries)
    runtime = LambdaRuntime({"Failing": failing}, "eu-west-1", {}, concurrency=1,
                            logs=FunctionLogs(tmp_path / "logs", tmp_path / "m.jsonl"),
                            async_retry_delays_s=(0.01, 0.01))  # Lambda waits 1 and 2 minutes
    event = {"attempts": str(tmp_path / "attempts"),
             **({"succeed_at": succeed_at} if succeed_at else {})}
    try:
        await asyncio.wait_for(runtime.accept_event("Failing", event), HANG_GUARD_S)
    finally:
        await runtime.stop()
    assert len((tmp_path / "attempts").read_text()) == attempts
    failed = [r.getMessage() for r in caplog.records if "asynchronous invocation" in r.getMessage()]
    assert [m.rsplit(", ", 1)[1] for m in failed] == [
        f"attempt {n} of {async_retries + 1}" for n in range(1, attempts + 1)
        if n != succeed_at]
