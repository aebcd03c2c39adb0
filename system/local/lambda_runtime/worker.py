"""One warm Lambda execution environment: import the handler once, then serve invocations.

Run by the pool as ``python -P .../worker.py HANDLER``, with the function's environment
(standard library and boto3 only: it must not import the harness), as the leader of its
own process group. Invocations arrive as JSON lines on stdin; answers go back as JSON
lines on a private copy of stdout, while the handler's own stdout, stderr and logging
output are captured per invocation as the function's log, as Lambda sends them to
CloudWatch Logs (up to one log event's 256 KB).

Or forked ready-made: ``python -P .../worker.py --fork-server FD``, started once with the
environment Python starts with (the same for the functions it serves), makes the worker's
own imports (boto3, for ``tag_dynamodb_requests``: a third of a worker's start) and reads
the botocore models of the services a WebSocket app calls (``read_models``), then for
each request on the Unix socket FD (a JSON document: the function's environment and
handler, with the environment's stdin, stdout and stderr as file descriptors) forks a
process that takes them and the environment, leads its own process group, and runs as
above: the handler itself is imported afresh in each. It answers each request with the
child's pid, and reports each child's end with its exit status.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib
import io
import json
import logging
import os
import resource
import select
import signal
import socket
import sys
import time
import traceback
from collections.abc import Callable

# Headers on every DynamoDB request a handler makes, so that the local stack's DynamoDB
# proxy can tell which invocation and route consumed the capacity.
INVOCATION_HEADER = "X-Chat-Harness-Invocation"
ROUTE_HEADER = "X-Chat-Harness-Route"
# The services whose models the fork server reads once for its environments (read_models):
# a broadcast app's table, its @connections posts, and the invocations of a fan-out function.
PRELOADED_SERVICES = ("dynamodb", "apigatewaymanagementapi", "lambda")
# Linux's prctl options used here (sys/prctl.h).
PR_SET_PDEATHSIG = 1
PR_SET_NAME = 15
# CloudWatch Logs' largest log event (PutLogEvents: 256 KB). An invocation's captured log
# is kept up to this, so a handler printing megabytes costs neither memory nor an answer
# line the pool would refuse.
LOG_EVENT_BYTES = 256 * 1024


class LambdaContext:
    """The ``context`` argument, with the attributes and method Lambda's Python runtime has."""

    def __init__(self, request_id: str, deadline_ms: int) -> None:
        name = os.environ["AWS_LAMBDA_FUNCTION_NAME"]
        region = os.environ["AWS_REGION"]
        self.function_name = name
        self.function_version = os.environ["AWS_LAMBDA_FUNCTION_VERSION"]
        self.invoked_function_arn = f"arn:aws:lambda:{region}:000000000000:function:{name}"
        self.memory_limit_in_mb = os.environ["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"]
        self.aws_request_id = request_id
        self.log_group_name = os.environ["AWS_LAMBDA_LOG_GROUP_NAME"]
        self.log_stream_name = os.environ["AWS_LAMBDA_LOG_STREAM_NAME"]
        self.identity = None
        self.client_context = None
        self._deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self) -> int:
        return max(0, self._deadline_ms - int(time.time() * 1000))

    def __repr__(self) -> str:
        return (
            f"LambdaContext([aws_request_id={self.aws_request_id},"
            f"log_group_name={self.log_group_name},log_stream_name={self.log_stream_name},"
            f"function_name={self.function_name},memory_limit_in_mb={self.memory_limit_in_mb},"
            f"function_version={self.function_version},"
            f"invoked_function_arn={self.invoked_function_arn},client_context=None,identity=None])"
        )


class _CurrentStdout(io.TextIOBase):
    """Logging's stream: whatever sys.stdout is now, so log records are captured too."""

    def write(self, text: str) -> int:
        return sys.stdout.write(text)


class CappedLog(io.TextIOBase):
    """Captured output, kept up to ``limit`` bytes of UTF-8; the rest is only counted, and
    a marker at the end says how much was dropped."""

    def __init__(self, limit: int = LOG_EVENT_BYTES) -> None:
        self._parts: list[str] = []
        self._room = limit
        self._dropped = 0

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        kept = text[: self._room]  # a character takes at least one byte
        if kept:
            data = kept.encode("utf-8", "replace")
            if len(data) > self._room:
                kept = data[: self._room].decode("utf-8", "ignore")
                data = kept.encode("utf-8", "replace")
            self._parts.append(kept)
            self._room -= len(data)
        self._dropped += len(text) - len(kept)
        return len(text)

    def getvalue(self) -> str:
        text = "".join(self._parts)
        if self._dropped:
            text += (f"\n[log truncated: {self._dropped} more characters dropped; a CloudWatch "
                     f"Logs event holds at most {LOG_EVENT_BYTES} bytes]\n")
        return text


def error_document(error: BaseException, error_type: str | None = None) -> dict:
    return {
        "errorMessage": str(error),
        "errorType": error_type or type(error).__name__,
        "stackTrace": traceback.format_tb(error.__traceback__),
    }


def load_handler(path: str):
    module_name, _, function_name = path.rpartition(".")
    if not module_name:
        raise ImportError(f"handler must be module.function, not {path!r}")
    return getattr(importlib.import_module(module_name), function_name)


def read_models():
    """A botocore loader that has read the models of the services a WebSocket app's
    handlers call (their API, endpoint rules, and what every client needs): the fork
    server's, which each forked environment's boto3 clients then use, where building the
    chat's two clients would read and parse them again for 0.15 s of CPU (0.03 s so)."""
    import boto3  # noqa: F401 - the worker's own import (tag_dynamodb_requests), made once
    import botocore.session

    models = botocore.session.get_session().get_component("data_loader")
    for service in PRELOADED_SERVICES:
        for kind in ("service-2", "endpoint-rule-set-1"):
            models.load_service_model(service, kind)
    for name in ("endpoints", "partitions", "sdk-default-configuration", "_retry"):
        models.load_data(name)
    return models


def tag_dynamodb_requests(invocation: dict[str, str], models=None) -> None:
    """Add the current invocation's id and route to the DynamoDB requests of every boto3
    client the handler creates from the default session; the handler's code is untouched.
    ``models``: ``read_models``'s loader, for that session, unless the function's
    environment points botocore at models of its own (AWS_DATA_PATH)."""
    import boto3
    import botocore.session

    def add_headers(request, **_) -> None:
        request.headers[INVOCATION_HEADER] = invocation["request_id"]
        request.headers[ROUTE_HEADER] = invocation["route"]

    core = botocore.session.get_session()
    if models is not None and "AWS_DATA_PATH" not in os.environ:
        core.register_component("data_loader", models)
    boto3.setup_default_session(botocore_session=core)
    boto3.DEFAULT_SESSION.events.register("before-send.dynamodb", add_headers)


def main(models=None) -> None:
    """The environment's life; ``models``: the fork server's (``read_models``)."""
    signal.signal(signal.SIGTERM, _end_process_group)
    _prctl(PR_SET_NAME, os.environ["AWS_LAMBDA_FUNCTION_NAME"].encode()[:15])  # for ps, top
    answers = _answer_channel()
    invocation = {"request_id": "", "route": ""}
    _log_as_lambda_does(invocation)
    tag_dynamodb_requests(invocation, models)
    handler, ready = initialise(sys.argv[1])
    answer(answers, ready)
    if handler is None:
        return
    for line in sys.stdin:
        answer(answers, invoke(handler, json.loads(line), invocation))


def _end_process_group(signum, frame) -> None:
    """SIGTERM comes when the stack that started us dies (PR_SET_PDEATHSIG): take down
    our process group, the handler's own child processes with it."""
    os.killpg(0, signal.SIGKILL)


def _answer_channel() -> io.TextIOBase:
    """A private copy of stdout for the answers; file descriptor 1 then points at stderr,
    so output written below Python's sys.stdout (C code, subprocesses) cannot break a JSON
    line and reaches the pool's stderr relay instead."""
    answers = os.fdopen(os.dup(sys.stdout.fileno()), "w", encoding="utf-8")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    return answers


def _log_as_lambda_does(invocation: dict[str, str]) -> None:
    """Log records in the Python runtime's format, UTC, with the current request id, to
    whatever sys.stdout is at the time, so they are captured with the invocation's log."""
    logging.basicConfig(
        stream=_CurrentStdout(),
        format="[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s",
        datefmt="%Y-%m-%dT%H:%M:%S",
    )
    old_factory = logging.getLogRecordFactory()

    def record_factory(*args, **kwargs):
        record = old_factory(*args, **kwargs)
        record.aws_request_id = invocation["request_id"]
        return record

    logging.setLogRecordFactory(record_factory)
    logging.Formatter.converter = time.gmtime


def answer(answers: io.TextIOBase, document: dict) -> None:
    """Send ``document`` to the pool as one JSON line; a result that is not JSON becomes
    the invocation's Runtime.MarshalError, as in Lambda."""
    try:
        text = json.dumps(document)
    except (TypeError, ValueError) as error:  # the handler returned something not JSON
        text = json.dumps({"error": error_document(error, "Runtime.MarshalError"),
                           "log": document.get("log", "")})
    answers.write(text + "\n")
    answers.flush()


def initialise(path: str) -> tuple[Callable | None, dict]:
    """Import the handler at ``path`` once, its output captured as the init log; returns
    the handler (None if it failed) and the answer to the pool: ``ready`` with the init
    duration, or ``init_error`` (Runtime.ImportModuleError, as Lambda reports it)."""
    started = time.perf_counter()
    init_log = CappedLog()
    try:
        with contextlib.redirect_stdout(init_log), contextlib.redirect_stderr(init_log):
            handler = load_handler(path)
    except Exception as error:  # noqa: BLE001 - reported as Lambda does: Runtime.ImportModuleError
        return None, {"init_error": error_document(error, "Runtime.ImportModuleError"),
                      "log": init_log.getvalue()}
    return handler, {"ready": True, "init_ms": (time.perf_counter() - started) * 1000,
                     "log": init_log.getvalue()}


def invoke(handler: Callable, request: dict, invocation: dict[str, str]) -> dict:
    """Run one invocation with its output captured as its log; the answer to the pool:
    ``result`` or ``error``, the log, and the environment's peak memory so far."""
    invocation["request_id"] = request["request_id"]
    invocation["route"] = request["event"].get("requestContext", {}).get("routeKey", "")
    context = LambdaContext(request["request_id"], request["deadline_ms"])
    log = CappedLog()
    document: dict
    with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
        try:
            document = {"result": handler(request["event"], context)}
        except Exception as error:  # noqa: BLE001 - any handler error is the invocation's error
            document = {"error": error_document(error)}
            print(f"[ERROR] {type(error).__name__}: {error}")
            traceback.print_exc()
    document["log"] = log.getvalue()
    document["max_memory_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    return document


def serve_forks(control: socket.socket) -> None:
    """The fork server's loop, until the stack closes the control socket."""
    models = read_models()
    wakeup_read, wakeup_write = os.pipe()
    os.set_blocking(wakeup_write, False)
    signal.set_wakeup_fd(wakeup_write)
    signal.signal(signal.SIGCHLD, lambda signum, frame: None)
    while True:
        ready, _, _ = select.select([control, wakeup_read], [], [])
        if wakeup_read in ready:
            os.read(wakeup_read, 4096)
            _report_ends(control)
        if control in ready:
            message, fds, _, _ = socket.recv_fds(control, 1 << 20, 3)
            if not message:
                return
            pid = os.fork()
            if pid == 0:
                os.close(wakeup_read)
                os.close(wakeup_write)
                _become_environment(control, fds, json.loads(message), models)
            for fd in fds:
                os.close(fd)
            control.send(json.dumps({"pid": pid}).encode())


def _report_ends(control: socket.socket) -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        control.send(json.dumps({"ended": pid,
                                 "returncode": os.waitstatus_to_exitcode(status)}).encode())


def _become_environment(control: socket.socket, fds: list[int], request: dict,
                        models) -> None:
    """In the forked child: the fork server's signal handling and socket undone, stdin,
    stdout and stderr taken from ``fds``, the function's environment, a process group of
    its own, ended with the fork server (as an exec'd worker is with the stack); then the
    worker, and the process ends as the worker's would."""
    signal.set_wakeup_fd(-1)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    control.close()
    os.setsid()
    _end_with_parent()
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
        os.close(fd)
    os.environ.clear()
    os.environ.update(request["environment"])
    sys.argv = [sys.argv[0], request["handler"]]
    code = 0
    try:
        main(models)
    except SystemExit as end:  # as the interpreter maps sys.exit's argument
        code = 0 if end.code is None else end.code if isinstance(end.code, int) else 1
    except BaseException:  # noqa: BLE001 - as an uncaught error ends a process: traceback, 1
        traceback.print_exc()
        code = 1
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(code)


def _end_with_parent() -> None:
    """SIGTERM when the fork server ends (the harness's own helper for it is not ours to
    import): ``main`` then ends the process group."""
    parent = os.getppid()
    _prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:  # the fork server ended before the request took effect
        os.kill(os.getpid(), signal.SIGTERM)


def _prctl(option: int, argument) -> None:
    """Linux's prctl; nothing elsewhere."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(option, argument)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--fork-server"]:
        serve_forks(socket.socket(fileno=int(sys.argv[2])))
    else:
        main()
