"""The Lambda runtime emulation on its own: warm reuse, concurrency, timeouts, errors, logs."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from system.local.lambda_runtime.logs import FunctionLogs
from system.local.lambda_runtime.pool import LambdaRuntime
from system.routes import FunctionSpec

PROBES = Path(__file__).parent / "handlers"


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
    ]
    runtime = LambdaRuntime({s.name: s for s in specs}, "eu-west-1", {"STACK": "local"},
                            concurrency=2, logs=FunctionLogs(tmp_path / "logs", tmp_path / "m.jsonl"))
    yield runtime
    await runtime.stop()


async def test_environment_is_imported_once_and_reused(runtime):
    first = await runtime.invoke("Pid", {"env": ["OWN", "STACK", "AWS_REGION", "HOME"]})
    second = await runtime.invoke("Pid", {})
    assert first.result["pid"] == second.result["pid"]
    assert first.result["env"] == {"OWN": "mine", "STACK": "local", "AWS_REGION": "eu-west-1",
                                   "HOME": None}
    assert first.request_id != second.request_id


async def test_concurrency_is_limited_per_function(runtime):
    outcomes = await asyncio.gather(*(runtime.invoke("Hold", {"seconds": 0.3}) for _ in range(5)))
    assert all(not o.failed for o in outcomes)
    assert len({o.result["pid"] for o in outcomes}) == 2


async def test_timeout_kills_the_environment(runtime):
    before = await runtime.invoke("Hold", {"seconds": 0})
    timed_out = await runtime.invoke("Hold", {"seconds": 5})
    assert timed_out.error["errorType"] == "TimedOut"
    assert timed_out.error["errorMessage"] == "Task timed out after 1.00 seconds"
    after = await runtime.invoke("Hold", {"seconds": 0})
    assert after.result["pid"] != before.result["pid"]


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
