"""Run the local stack (``python -m system.local``) as a child process until it is ready.

Used by the test suites and load runs that need a stack for their duration:
the child writes a stack file and prints its ready line; ``stop`` sends SIGINT, as a
user's Ctrl-C would, and waits for every process of the stack to end.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from system.fanout_strategies import FANOUT_STRATEGIES
from system.local.processes import die_with_parent
from system.stackfile import StackFile

# The stack's last line of start-up output (system.local.command prints it): it is up.
READY_LINE = "Ready. Press Ctrl-C to stop."
START_TIMEOUT_S = 120
STOP_TIMEOUT_S = 30


def add_stack_arguments(parser, **parser_options) -> None:
    """The options of a local stack the harness starts (for a load run, its replays, the web
    UI's session), defined once; ``parser_options`` go to each (Locust's
    ``include_in_web_ui``)."""
    parser.add_argument("--dynamodb", default="dynalite", metavar="dynalite|moto|URL",
                        help="the DynamoDB of the local stack started for the run "
                             "(default %(default)s)", **parser_options)
    parser.add_argument("--fanout", choices=FANOUT_STRATEGIES, metavar="STRATEGY",
                        help="the local stack's fan-out strategy: sequential, threads or "
                             "batched (default: the routes file's, else threads)",
                        **parser_options)
    parser.add_argument("--aws-latency", action="store_true",
                        help="run the local stack with the AWS latency model, so the report "
                             "predicts AWS's fan-out times", **parser_options)
    parser.add_argument("--authorizer", metavar="NAME",
                        help="the local stack's $connect authorizer (the chat's: jwt, with "
                             "JWT_SECRET in the environment; each user then connects with a "
                             "token of its own)", **parser_options)


def stack_arguments_from(args) -> list[str]:
    """``python -m system.local``'s arguments for the options ``add_stack_arguments`` added."""
    return ["--dynamodb", args.dynamodb, *(["--fanout", args.fanout] if args.fanout else []),
            *(["--aws-latency"] if args.aws_latency else []),
            *(["--authorizer", args.authorizer] if args.authorizer else [])]


class StackStartError(RuntimeError):
    """The stack did not start: one line (its own last line says why); ``output`` has
    all that it printed."""

    def __init__(self, message: str, output: str) -> None:
        super().__init__(message)
        self.output = output


class LocalStackProcess:
    """``with LocalStackProcess(["--dynamodb", "moto"]) as stack:`` -> a StackFile."""

    def __init__(self, arguments: list[str] | None = None, state_dir: Path | None = None) -> None:
        self.arguments = list(arguments or [])
        self._temporary = None if state_dir else tempfile.TemporaryDirectory(prefix="chat-stack-")
        self.state_dir = Path(state_dir or self._temporary.name)
        self.process: subprocess.Popen | None = None
        self.output: list[str] = []
        self._output_changed = threading.Condition()
        self.file: StackFile | None = None
        self._ready = False  # the stack printed its ready line

    @property
    def stack_path(self) -> Path:
        """Where the stack writes its stack file."""
        return self.state_dir / "stack.json"

    def start(self) -> StackFile:
        stack_path = self.stack_path
        command = [sys.executable, "-m", "system.local", "--port", "0",
                   "--management-port", "0", "--state-dir", str(self.state_dir),
                   "--stack-file", str(stack_path), *self.arguments]
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, text=True, bufsize=1,
                                        # the stack ends with us, even if we are killed
                                        preexec_fn=die_with_parent)  # noqa: PLW1509 - prctl only
        settled = threading.Event()  # the ready line, or the end of the output
        reader = threading.Thread(target=self._read_output, args=(settled,), daemon=True)
        reader.start()
        settled.wait(START_TIMEOUT_S)
        # The ready line, not poll(), says it started: a stack that printed its error and
        # closed its output may not have exited yet.
        if not self._ready or self.process.poll() is not None:
            output = "".join(self.output)
            last = next((line.strip() for line in reversed(self.output) if line.strip()), "")
            what = "exited" if settled.is_set() else f"did not start in {START_TIMEOUT_S} s"
            self.stop()
            raise StackStartError(f"the local stack {what}: {last}", output)
        self.file = StackFile.read(stack_path)
        return self.file

    def _read_output(self, settled: threading.Event) -> None:
        for line in self.process.stdout:
            with self._output_changed:
                self.output.append(line)
                self._output_changed.notify_all()
            if line.strip() == READY_LINE:
                self._ready = True
                settled.set()
        settled.set()  # the output ended: the stack is gone (or going)

    def wait_for_output(self, text: str, timeout: float = 10) -> str:
        """The first line of the stack's output containing ``text``, once it is printed."""
        with self._output_changed:
            found = self._output_changed.wait_for(
                lambda: next((line for line in self.output if text in line), None), timeout
            )
        if found is None:
            raise TimeoutError(f"the stack printed no line with {text!r} in {timeout} s")
        return found

    def stop(self) -> int | None:
        """Ctrl-C the stack and wait for it; kill it if it does not end in time."""
        process, self.process = self.process, None
        code = None
        if process is not None:
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
                try:
                    process.wait(STOP_TIMEOUT_S)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            code = process.returncode
        if self._temporary is not None:
            self._temporary.cleanup()
            self._temporary = None
        return code

    def __enter__(self) -> StackFile:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
