"""Warm Lambda worker processes per function, a concurrency limit, a bounded queue and a
timeout per call.

As in Lambda: a function has no environment until it is first invoked (a cold start);
an execution environment imports the handler once (the init) and serves one
invocation at a time, then waits warm for the next; a function runs
at most ``concurrency`` environments at once. Lambda queues no synchronous
invocation: one beyond the concurrency is throttled (429 TooManyRequestsException).
A local stack runs a handful of environments where Lambda would run hundreds, so
here an invocation may wait for one, but only while fewer than ``queue_limit``
wait, only as long as its caller waits, and at most ``start_within`` seconds;
otherwise it is throttled, and an invocation that has not started then never
starts. An invocation that passes the function's timeout is ended by killing its
environment ("Task timed out after 3.00 seconds") with everything the handler
started (each environment leads its own process group). An environment that
dies, busy or idle, fails its init, or answers what Lambda would refuse is
discarded, and the next invocation gets a fresh one.

An asynchronous invocation (InvocationType=Event) is accepted at once into the
function's event queue, waits there for an environment however long it takes (Lambda's
queue keeps events for up to 6 hours), and a function error is retried up to the
function's ``async_retries`` times, after 1 and then 2 minutes, as Lambda retries.
With an AWS latency model (``system.local.aws_latency``), a new environment adds a
cold start, a warm one the invoke overhead, and an event its queue delay.

On Linux a new environment is forked from a fork server (``fork_server``) that has made
the worker's own imports once, else started as a process of its own; either way it
imports its handler afresh.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import sys
import time
import uuid
from pathlib import Path

import system
from system.local.aws_latency import AWS_LATENCY_OFF, AwsLatency
from system.local.lambda_runtime.fork_server import (
    FORKS_POSSIBLE,
    ForkedProcess,
    ForkServer,
    ForkServerGone,
    startup_environment,
)
from system.local.lambda_runtime.logs import FunctionLogs
from system.local.lambda_runtime.outcome import (
    Outcome,
    exit_error,
    init_timed_out,
    response_too_large,
    throttled,
    timed_out,
    unknown_error,
)
from system.local.processes import die_with_parent, kill_process_group
from system.routes import FunctionSpec

log = logging.getLogger("chat_harness.lambda")

# An answer holds the handler's response and its log, which the worker caps at CloudWatch
# Logs' 256 KB event: a longer line holds a response beyond Lambda's 6 MB, which Lambda
# refuses (Function.ResponseSizeTooLarge).
LINE_LIMIT = 8 * 1024 * 1024
# Lambda's default quota of concurrent executions per Region ("Lambda quotas"): unless
# configured, a function is throttled where AWS would throttle it, with this many
# invocations in flight (running here, or waiting for one of the few local environments).
LAMBDA_CONCURRENT_EXECUTIONS = 1000
# Lambda's waits before the retries of an asynchronous invocation whose function failed
# ("Error handling and automatic retries": one minute, then two).
ASYNC_RETRY_DELAYS_S = (60.0, 120.0)
# Events accepted and not yet finished, per stack: past it the Invoke API answers 429.
EVENT_QUEUE_LIMIT = 100_000
# Run by path, with -P (no script folder on sys.path), so that, as in Lambda, the handler's
# code alone decides what it imports: a code folder holding its own ``system`` package
# (a deployment zip unpacked) is not shadowed by the harness's.
WORKER_SCRIPT = Path(__file__).resolve().with_name("worker.py")


class EnvironmentFailed(Exception):
    """An execution environment that failed its init, died, or answered what Lambda would
    not accept: Lambda's error document for it."""

    def __init__(self, document: dict) -> None:
        super().__init__(document.get("errorMessage"))
        self.document = document


class _Worker:
    """One execution environment: a child process speaking JSON lines, leading its own
    process group so that whatever the handler starts ends with it."""

    def __init__(self, process: asyncio.subprocess.Process | ForkedProcess) -> None:
        self.process = process

    async def send(self, request: dict) -> bool:
        """Hand over an invocation; False if the process is gone (its exit seen, or its
        stdin closed), so it never got it."""
        stdin = self.process.stdin
        if self.process.returncode is not None or stdin.is_closing():
            return False
        stdin.write((json.dumps(request) + "\n").encode())
        try:
            await stdin.drain()
        except ConnectionError:
            return False
        return True

    async def answer(self, request_id: str | None) -> dict:
        """The next answer line, or EnvironmentFailed with Lambda's document for what came
        instead: the end of the process, a line over the limit, something not JSON."""
        try:
            line = await self.process.stdout.readline()
        except ValueError:  # asyncio's StreamReader: a line over the limit, dropped
            raise EnvironmentFailed(response_too_large()) from None
        if not line:
            raise EnvironmentFailed(exit_error(await self.end(), request_id))
        try:
            document = json.loads(line)
        except ValueError:
            document = None
        if not isinstance(document, dict):
            raise EnvironmentFailed(unknown_error("the runtime answered a line that is not "
                                                  "a JSON object"))
        return document

    def kill(self) -> None:
        kill_process_group(self.process.pid)

    async def end(self) -> int:
        """Kill the process group; the process's exit status (its own, if it had ended)."""
        self.kill()
        return await self.process.wait()

    async def stop(self) -> None:
        """Close its stdin, which ends the worker; past 2 s, or for what it left running,
        kill the group."""
        if self.process.returncode is None:
            self.process.stdin.close()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.process.wait(), 2)
        await self.end()


class FunctionWorkers:
    """The execution environments of one function."""

    def __init__(self, spec: FunctionSpec, environment: dict[str, str], concurrency: int,
                 queue_limit: int, logs: FunctionLogs, latency: AwsLatency,
                 fork_server: ForkServer | None = None) -> None:
        self.spec = spec
        self.environment = environment
        self.fork_server = fork_server
        self.queue_limit = queue_limit
        self.logs = logs
        self.latency = latency
        self._slots = asyncio.Semaphore(concurrency)
        self._waiting = 0
        self._idle: list[_Worker] = []
        self._all: set[_Worker] = set()
        self._stderr_tasks: set[asyncio.Task] = set()

    async def _start_process(self) -> asyncio.subprocess.Process | ForkedProcess:
        """A new environment's process: forked ready-imported where a fork server runs,
        else a worker of its own."""
        if self.fork_server is not None:
            with contextlib.suppress(ForkServerGone):
                return await self.fork_server.spawn(self.spec.handler, self.environment)
        return await asyncio.create_subprocess_exec(
            sys.executable, "-P", str(WORKER_SCRIPT), self.spec.handler,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, env=self.environment, limit=LINE_LIMIT,
            start_new_session=True, preexec_fn=die_with_parent,
        )

    async def _spawn(self, request_id: str) -> _Worker:
        process = await self._start_process()
        worker = _Worker(process)
        self._all.add(worker)
        task = asyncio.create_task(self._relay_stderr(process))
        self._stderr_tasks.add(task)
        task.add_done_callback(self._stderr_tasks.discard)
        try:
            ready = await asyncio.wait_for(worker.answer(request_id), self.spec.timeout_s + 10)
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
        while True:
            try:
                line = await process.stderr.readline()
            except ValueError:  # over the line limit: asyncio dropped it
                log.info("%s: (a line of output over %d bytes, dropped)", self.spec.name,
                         LINE_LIMIT)
                continue
            if not line:
                return
            log.info("%s: %s", self.spec.name, line.decode(errors="replace").rstrip())

    def _discard(self, worker: _Worker) -> None:
        worker.kill()
        self._all.discard(worker)

    @property
    def waiting(self) -> int:
        """Invocations waiting for one of the function's concurrency slots."""
        return self._waiting

    async def admit(self, start_within: float | None, *, queued: bool = False) -> bool:
        """Take one of the function's concurrency slots, waiting for one if none is free;
        False, logged, when the invocation is throttled instead: ``queue_limit``
        invocations already wait (unless it is ``queued``: an event, whose queue is
        Lambda's own), or no slot came free within ``start_within`` seconds. A caller
        cancelled while waiting leaves the queue: its invocation never starts."""
        if self._slots.locked() and self._waiting >= self.queue_limit and not queued:
            log.warning("%s throttled: %d invocations already wait for an environment "
                        "(queue limit)", self.spec.name, self._waiting)
            return False
        self._waiting += 1
        try:
            async with asyncio.timeout(start_within):
                await self._slots.acquire()
        except TimeoutError:
            log.warning("%s throttled: no environment came free within %s s", self.spec.name,
                        start_within)
            return False
        finally:
            self._waiting -= 1
        return True

    async def run(self, event: dict) -> Outcome:
        """One admitted invocation; its concurrency slot is freed when it ends."""
        try:
            return await self._run(str(uuid.uuid4()), event)
        finally:
            self._slots.release()

    async def _run(self, request_id: str, event: dict) -> Outcome:
        started = time.perf_counter()
        try:
            worker, started = await self._deliver(request_id, event)
        except (EnvironmentFailed, TimeoutError) as error:
            return self._failed(request_id, started, error, during_init=True)
        try:
            answer = await asyncio.wait_for(worker.answer(request_id), self.spec.timeout_s)
        except (TimeoutError, EnvironmentFailed) as error:
            self._discard(worker)
            return self._failed(request_id, started, error, during_init=False)
        self._idle.append(worker)
        outcome = Outcome(request_id, _ms_since(started), result=answer.get("result"),
                          error=answer.get("error"))
        self.logs.invocation(self.spec.name, outcome, answer.get("log", ""), self.spec.memory_mb,
                             answer.get("max_memory_mb"), self.spec.timeout_s)
        return outcome

    async def _deliver(self, request_id: str, event: dict) -> tuple[_Worker, float]:
        """Hand the invocation to a warm environment, else to a fresh one. A warm one found
        dead never got it: it is discarded (one log line) and the next one tried. Returns
        the environment and when the invocation started: after any init, which the
        function's timeout does not count, as in Lambda."""
        while True:
            warm = bool(self._idle)
            if warm:
                worker = self._idle.pop()
                await self.latency.wait("lambda_warm_invoke")
            else:
                worker = await self._spawn(request_id)
                await self.latency.wait("lambda_cold_start")
            started = time.perf_counter()
            request = {"event": event, "request_id": request_id,
                       "deadline_ms": int(time.time() * 1000 + self.spec.timeout_s * 1000)}
            if await worker.send(request):
                return worker, started
            self._discard(worker)
            document = exit_error(await worker.process.wait(), None if warm else request_id)
            if not warm:
                raise EnvironmentFailed(document)
            log.warning("%s: environment (pid %d) found dead while idle, discarded: %s",
                        self.spec.name, worker.process.pid, document["errorMessage"])

    def _failed(self, request_id: str, started: float, error: EnvironmentFailed | TimeoutError,
                *, during_init: bool) -> Outcome:
        """The logged outcome of an invocation that got no answer from a worker: its init
        failed or timed out, it passed the function's timeout, or its process died or
        answered what Lambda refuses. Such an invocation has no log of its own."""
        if isinstance(error, EnvironmentFailed):
            document = error.document
        elif during_init:
            document = init_timed_out()
        else:
            document = timed_out(self.spec.timeout_s)
        outcome = Outcome(request_id, _ms_since(started), error=document)
        self.logs.invocation(self.spec.name, outcome, "", self.spec.memory_mb, None,
                             self.spec.timeout_s)
        return outcome

    async def stop(self) -> None:
        workers = list(self._all)
        self._all.clear()
        self._idle.clear()
        await asyncio.gather(*(worker.stop() for worker in workers))
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
    """All functions of a stack, invoked by name. ``queue_limit`` invocations may wait per
    function (default: up to LAMBDA_CONCURRENT_EXECUTIONS in flight; 0 throttles as soon as
    the local concurrency is used up)."""

    def __init__(self, specs: dict[str, FunctionSpec], region: str,
                 stack_environment: dict[str, str], concurrency: int, logs: FunctionLogs,
                 queue_limit: int | None = None, latency: AwsLatency = AWS_LATENCY_OFF,
                 async_retry_delays_s: tuple[float, ...] = ASYNC_RETRY_DELAYS_S) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {concurrency}")
        if queue_limit is None:
            queue_limit = max(0, LAMBDA_CONCURRENT_EXECUTIONS - concurrency)
        if queue_limit < 0:
            raise ValueError(f"queue limit must be 0 or more, got {queue_limit}")
        self.logs = logs
        self.latency = latency
        self.async_retry_delays_s = async_retry_delays_s
        self._running: set[asyncio.Task] = set()
        self._events: set[asyncio.Task] = set()
        self._events_due = 0  # events accepted or due for a retry, not yet invoked
        fork_servers: dict[frozenset, ForkServer] = {}  # one per startup environment
        self.functions = {}
        for name, spec in specs.items():
            environment = lambda_environment(spec, region, stack_environment)
            fork_server = None
            if FORKS_POSSIBLE:
                startup = startup_environment(environment)
                fork_server = fork_servers.setdefault(
                    frozenset(startup.items()), ForkServer(WORKER_SCRIPT, startup, LINE_LIMIT))
            self.functions[name] = FunctionWorkers(spec, environment, concurrency, queue_limit,
                                                   logs, self.latency, fork_server)
        self._fork_servers = list(fork_servers.values())

    async def invoke(self, function: str, event: dict, *,
                     start_within: float | None = None, queued: bool = False) -> Outcome:
        """Run ``function`` on ``event``. Until it starts it waits only while the caller
        does and at most ``start_within`` seconds, else it is throttled (see
        FunctionWorkers.admit); work whose caller has gone is never started. Once started
        it runs to completion (and is logged) even if the caller stops waiting, as a
        Lambda does when its client goes away."""
        workers = self.functions[function]
        if not await workers.admit(start_within, queued=queued):
            return throttled(str(uuid.uuid4()))
        task = asyncio.create_task(workers.run(event))
        self._running.add(task)
        task.add_done_callback(self._running.discard)
        return await asyncio.shield(task)

    def accept_event(self, function: str, event: dict) -> asyncio.Task | None:
        """Queue an asynchronous invocation of ``function``: the task that makes its
        attempts, or None when EVENT_QUEUE_LIMIT events are unfinished already (the Invoke
        API then answers 429)."""
        if len(self._events) >= EVENT_QUEUE_LIMIT:
            log.warning("%s: event refused, %d events unfinished", function, len(self._events))
            return None
        self._events_due += 1
        task = asyncio.create_task(self._run_event(function, event))
        self._events.add(task)
        task.add_done_callback(self._events.discard)
        return task

    async def _run_event(self, function: str, event: dict) -> None:
        retries = self.functions[function].spec.async_retries
        for attempt in range(retries + 1):
            if attempt:
                await asyncio.sleep(self.async_retry_delays_s[attempt - 1])
                self._events_due += 1
            try:
                await self.latency.wait("lambda_async_delay")
            finally:
                self._events_due -= 1  # from here on it waits for an environment, or runs
            outcome = await self.invoke(function, event, queued=True)
            if not outcome.failed:
                return
            log.warning("%s: asynchronous invocation %s failed (%s), attempt %d of %d",
                        function, outcome.request_id, outcome.error.get("errorType"),
                        attempt + 1, retries + 1)

    def unfinished_invocations(self) -> int:
        """Invocations running or waiting for an environment, and events waiting to be
        invoked (not those waiting minutes for a retry)."""
        return (len(self._running) + self._events_due
                + sum(workers.waiting for workers in self.functions.values()))

    async def stop(self) -> None:
        """Events not started yet, or awaiting a retry, are dropped (one log line); what
        runs, finishes."""
        unfinished = list(self._events)
        for task in unfinished:
            task.cancel()
        await asyncio.gather(*unfinished, return_exceptions=True)
        if unfinished:
            log.info("stopping: %d asynchronous invocations unfinished; those not running are "
                     "dropped", len(unfinished))
        await asyncio.gather(*self._running, return_exceptions=True)
        await asyncio.gather(*(workers.stop() for workers in self.functions.values()))
        await asyncio.gather(*(server.stop() for server in self._fork_servers))
        self.logs.close()
