"""Warm Lambda worker processes per function, a concurrency limit and a timeout per call.

As in Lambda: an execution environment imports the handler once (the init) and
serves one invocation at a time, then waits warm for the next; a function runs
at most ``concurrency`` environments at once (further invocations wait for a
free one); an invocation that passes the function's timeout is ended by killing
its environment ("Task timed out after 3.00 seconds"), and the next invocation
gets a fresh one.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import time
import uuid
from pathlib import Path

import system
from system.local.lambda_runtime.logs import FunctionLogs
from system.local.lambda_runtime.outcome import Outcome
from system.local.processes import die_with_parent
from system.routes import FunctionSpec

log = logging.getLogger("chat_harness.lambda")

# An event carries a message of up to 128 KB, JSON-escaped: allow long lines.
_LINE_LIMIT = 8 * 1024 * 1024
# Run by path, with -P (no script folder on sys.path), so that, as in Lambda, the handler's
# code alone decides what it imports: a code folder holding its own ``system`` package
# (a deployment zip unpacked) is not shadowed by the harness's.
WORKER_SCRIPT = Path(__file__).resolve().with_name("worker.py")


class EnvironmentFailed(Exception):
    """An execution environment that failed its init or died: Lambda's error document."""

    def __init__(self, document: dict) -> None:
        super().__init__(document.get("errorMessage"))
        self.document = document


class _Worker:
    """One execution environment: a child process speaking JSON lines."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    async def call(self, request: dict) -> dict:
        self.process.stdin.write((json.dumps(request) + "\n").encode())
        await self.process.stdin.drain()
        return await self._answer()

    async def _answer(self) -> dict:
        line = await self.process.stdout.readline()
        if not line:
            code = await self.process.wait()
            raise EnvironmentFailed(
                {"errorType": "Runtime.ExitError",
                 "errorMessage": f"Runtime exited with error: exit status {code}"}
            )
        return json.loads(line)

    async def stop(self) -> None:
        if self.process.returncode is None:
            self.process.stdin.close()
            try:
                await asyncio.wait_for(self.process.wait(), 2)
            except TimeoutError:
                self.kill()
                await self.process.wait()

    def kill(self) -> None:
        if self.process.returncode is None:
            self.process.kill()


class FunctionWorkers:
    """The execution environments of one function."""

    def __init__(self, spec: FunctionSpec, environment: dict[str, str], concurrency: int,
                 logs: FunctionLogs) -> None:
        self.spec = spec
        self.environment = environment
        self.logs = logs
        self._slots = asyncio.Semaphore(concurrency)
        self._idle: list[_Worker] = []
        self._all: set[_Worker] = set()
        self._stderr_tasks: set[asyncio.Task] = set()

    async def _spawn(self) -> _Worker:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-P", str(WORKER_SCRIPT), self.spec.handler,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, env=self.environment, limit=_LINE_LIMIT,
            preexec_fn=die_with_parent,
        )
        worker = _Worker(process)
        self._all.add(worker)
        task = asyncio.create_task(self._relay_stderr(process))
        self._stderr_tasks.add(task)
        task.add_done_callback(self._stderr_tasks.discard)
        try:
            ready = await asyncio.wait_for(worker._answer(), self.spec.timeout_s + 10)
        except (TimeoutError, EnvironmentFailed):
            self._discard(worker)
            raise
        if "init_error" in ready:
            self.logs.init(self.spec.name, ready.get("log", ""), 0.0)
            self._discard(worker)
            raise EnvironmentFailed(ready["init_error"])
        self.logs.init(self.spec.name, ready.get("log", ""), ready["init_ms"])
        return worker

    async def _relay_stderr(self, process: asyncio.subprocess.Process) -> None:
        """Output written below Python's sys.stdout (C code, subprocesses) is still log."""
        while line := await process.stderr.readline():
            log.info("%s: %s", self.spec.name, line.decode(errors="replace").rstrip())

    def _discard(self, worker: _Worker) -> None:
        worker.kill()
        self._all.discard(worker)

    async def warm(self) -> None:
        async with self._slots:
            self._idle.append(await self._spawn())

    async def invoke(self, event: dict) -> Outcome:
        request_id = str(uuid.uuid4())
        async with self._slots:
            started = time.perf_counter()
            try:
                worker = self._idle.pop() if self._idle else await self._spawn()
            except (EnvironmentFailed, TimeoutError) as error:
                return self._failed(request_id, started, error, during_init=True)
            started = time.perf_counter()
            deadline_ms = int(time.time() * 1000 + self.spec.timeout_s * 1000)
            request = {"event": event, "request_id": request_id, "deadline_ms": deadline_ms}
            try:
                answer = await asyncio.wait_for(worker.call(request), self.spec.timeout_s)
            except (TimeoutError, EnvironmentFailed) as error:
                self._discard(worker)
                return self._failed(request_id, started, error, during_init=False)
            self._idle.append(worker)
        outcome = Outcome(request_id, _ms_since(started), result=answer.get("result"),
                          error=answer.get("error"))
        self.logs.invocation(self.spec.name, outcome, answer.get("log", ""), self.spec.memory_mb,
                             answer.get("max_memory_mb"))
        return outcome

    def _failed(self, request_id: str, started: float, error: EnvironmentFailed | TimeoutError,
                *, during_init: bool) -> Outcome:
        """The logged outcome of an invocation that got no answer from a worker: its init
        failed or timed out, it passed the function's timeout, or its process died
        mid-invocation. Such an invocation has no log of its own."""
        if isinstance(error, EnvironmentFailed):
            document = error.document
        elif during_init:
            document = {"errorType": "Runtime.InitTimeout", "errorMessage": "init timed out"}
        else:
            document = {"errorType": "TimedOut",
                        "errorMessage": f"Task timed out after {self.spec.timeout_s:.2f} seconds"}
        outcome = Outcome(request_id, _ms_since(started), error=document)
        self.logs.invocation(self.spec.name, outcome, "", self.spec.memory_mb, None)
        return outcome

    async def stop(self) -> None:
        await asyncio.gather(*(worker.stop() for worker in list(self._all)))
        self._all.clear()
        self._idle.clear()
        for task in list(self._stderr_tasks):
            task.cancel()


def _ms_since(started: float) -> float:
    return (time.perf_counter() - started) * 1000


def lambda_environment(spec: FunctionSpec, region: str, stack_environment: dict[str, str]) -> dict:
    """The environment Lambda gives a function, plus the stack's endpoints and the
    function's own variables. Nothing from the user's shell leaks in but PATH."""
    task_root = str(spec.code_dir or Path(system.__file__).resolve().parent.parent)
    stream = time.strftime("%Y/%m/%d") + "/[$LATEST]" + uuid.uuid4().hex
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "en_US.UTF-8",
        "TZ": ":UTC",
        "PYTHONPATH": task_root,
        "PYTHONUNBUFFERED": "1",
        "LAMBDA_TASK_ROOT": task_root,
        "AWS_EXECUTION_ENV": f"AWS_Lambda_python{sys.version_info.major}.{sys.version_info.minor}",
        "AWS_LAMBDA_FUNCTION_NAME": spec.name,
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{spec.name}",
        "AWS_LAMBDA_LOG_STREAM_NAME": stream,
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
        **stack_environment,
        **spec.environment,
    }


class LambdaRuntime:
    """All functions of a stack, invoked by name."""

    def __init__(self, specs: dict[str, FunctionSpec], region: str,
                 stack_environment: dict[str, str], concurrency: int, logs: FunctionLogs) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {concurrency}")
        self.logs = logs
        self._running: set[asyncio.Task] = set()
        self.functions = {
            name: FunctionWorkers(spec, lambda_environment(spec, region, stack_environment),
                                  concurrency, logs)
            for name, spec in specs.items()
        }

    async def warm(self) -> None:
        """Start one environment per function so the first requests skip the cold start."""
        results = await asyncio.gather(
            *(workers.warm() for workers in self.functions.values()), return_exceptions=True
        )
        for name, result in zip(self.functions, results):
            if isinstance(result, Exception):
                log.warning("function %s failed to initialise: %s", name, result)

    async def invoke(self, function: str, event: dict) -> Outcome:
        """Run ``function`` on ``event``. The invocation runs to completion (and is logged)
        even if the caller stops waiting, as a Lambda does when its client goes away."""
        task = asyncio.create_task(self.functions[function].invoke(event))
        self._running.add(task)
        task.add_done_callback(self._running.discard)
        return await asyncio.shield(task)

    async def stop(self) -> None:
        await asyncio.gather(*self._running, return_exceptions=True)
        await asyncio.gather(*(workers.stop() for workers in self.functions.values()))
        self.logs.close()
