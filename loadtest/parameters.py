"""The load's parameters, defined once: their command-line options (``chat-harness load``
and Locust's own parser), the Locust command line that carries them to every process,
and their ``summary.json`` form, from which a run is replayed (``chat-harness verify``).
"""

from __future__ import annotations

import argparse
from dataclasses import asdict, dataclass, fields
from typing import Literal

from system.options import non_negative_float, positive_float, positive_int

Schedule = Literal["constant", "poisson"]
SCHEDULES: tuple[Schedule, ...] = ("constant", "poisson")


def parse_steps(text: str) -> tuple[int, ...]:
    """'100,250,500' -> (100, 250, 500): users per step, each at least one."""
    try:
        steps = tuple(int(part) for part in text.split(","))
    except ValueError:
        steps = ()
    if not steps or any(users < 1 for users in steps):
        raise argparse.ArgumentTypeError(
            f"steps must be user counts separated by commas, e.g. 25,50, not {text!r}")
    return steps


@dataclass(frozen=True)
class LoadParameters:
    """What shapes the load: a step shape of chat users, what each sends, how it is judged."""

    steps: tuple[int, ...] = (25, 50)
    step_hold_s: float = 30.0
    step_spawn_rate: float = 50.0
    messages_per_minute: float = 6.0
    schedule: Schedule = "constant"
    heartbeat_s: float = 30.0
    settle_s: float = 5.0
    processes: int = 1

    @property
    def duration_s(self) -> float:
        return len(self.steps) * self.step_hold_s

    @property
    def users_peak(self) -> int:
        return max(self.steps)

    # -- command-line options ------------------------------------------------------------

    @classmethod
    def add_options(cls, parser, *, processes: bool = True) -> None:
        """The options, on an argparse parser or group (Locust's parser is one too);
        ``processes`` is for ``chat-harness load``, which starts Locust's workers."""
        d = cls()
        add = parser.add_argument
        add("--steps", type=parse_steps, default=d.steps, metavar="N,N,...",
            help="users per step, e.g. 100,250,500 (default 25,50)")
        add("--step-hold", dest="step_hold_s", type=positive_float, default=d.step_hold_s,
            metavar="SECONDS", help="seconds each step lasts (default %(default)s)")
        add("--step-spawn-rate", type=positive_float, default=d.step_spawn_rate,
            metavar="PER_SECOND", help="users started per second (default %(default)s)")
        add("--messages-per-minute", type=non_negative_float, default=d.messages_per_minute,
            metavar="M", help="chat messages per user per minute (default %(default)s)")
        add("--schedule", choices=SCHEDULES, default=d.schedule,
            help="when each user sends: evenly or as a Poisson process (default %(default)s)")
        add("--heartbeat-s", type=positive_float, default=d.heartbeat_s, metavar="SECONDS",
            help="heartbeat interval (default %(default)s)")
        add("--settle-s", type=non_negative_float, default=d.settle_s, metavar="SECONDS",
            help="a connection closing this soon after a send is not expected to get it "
                 "(default %(default)s)")
        if processes:
            add("--processes", type=positive_int, default=d.processes,
                help="Locust worker processes (default %(default)s)")

    @classmethod
    def from_options(cls, options) -> LoadParameters:
        """From parsed options (``processes`` stays 1 where the parser had no such option)."""
        return cls(**{f.name: getattr(options, f.name) for f in fields(cls)
                      if hasattr(options, f.name)})

    def locust_arguments(self) -> list[str]:
        """The options on a ``locust`` command line (every process parses the same)."""
        return ["--steps", ",".join(map(str, self.steps)), "--step-hold", f"{self.step_hold_s}",
                "--step-spawn-rate", f"{self.step_spawn_rate}",
                "--messages-per-minute", f"{self.messages_per_minute}",
                "--schedule", self.schedule, "--heartbeat-s", f"{self.heartbeat_s}",
                "--settle-s", f"{self.settle_s}"]

    # -- summary.json ------------------------------------------------------------------------

    def to_summary(self) -> dict:
        return {**asdict(self), "steps": list(self.steps)}

    @classmethod
    def from_summary(cls, document: dict) -> LoadParameters:
        """The parameters a run recorded; a run from before a parameter existed gets its
        default."""
        known = {f.name for f in fields(cls)}
        values = {key: value for key, value in document.items() if key in known}
        if "steps" in values:
            values["steps"] = tuple(values["steps"])
        return cls(**values)
