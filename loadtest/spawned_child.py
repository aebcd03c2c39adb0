"""For tests: a function run in a spawned child process, talked to through a pipe.

Code that runs under Locust's gevent needs a process that gevent has monkey-patched, and
pytest's own process must not be (asyncio tests run there): such tests run that code in a
spawned child. ``with SpawnedChild(name, target, *args) as child:`` starts
``target(channel, *args)``; ``child.ask(command, timeout)`` sends a command and returns
the child's answer. Leaving the block closes the pipe (the child's next read ends, and it
quits) and joins the child, killing it if it does not end in time.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from typing import Any, Self

JOIN_S = 30


class SpawnedChild:
    def __init__(self, name: str, target: Callable[..., None], *args: object) -> None:
        self.name = name
        context = multiprocessing.get_context("spawn")
        self.channel, child_end = context.Pipe()
        self.process = context.Process(target=target, args=(child_end, *args), name=name,
                                       daemon=True)
        self.process.start()
        child_end.close()

    def receive(self, timeout: float) -> Any:
        if not self.channel.poll(timeout):
            raise AssertionError(f"the {self.name} did not answer in {timeout:g} s")
        return self.channel.recv()

    def ask(self, command: object, timeout: float) -> Any:
        self.channel.send(command)
        return self.receive(timeout)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.channel.close()
        self.process.join(JOIN_S)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
