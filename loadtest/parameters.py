"""The load's parameters, defined once: their command-line options (``chat-harness load``
and Locust's own parser), the Locust command line that carries them to every process,
and their ``summary.json`` form, from which a run is replayed (``chat-harness verify``).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, fields
from typing import Literal

from system.options import non_negative_float, positive_float, positive_int

Schedule = Literal["constant", "poisson"]
SCHEDULES: tuple[Schedule, ...] = ("constant", "poisson")


def parse_steps(text: str) -> tuple[int, ...]:
    """'100,250,500' -> (100, 250, 500): users per step, each at least one; '' -> () (no
    steps: Locust's own user count and spawn rate)."""
    if not text.strip():
        return ()
    try:
        steps = tuple(int(part) for part in text.split(","))
    except ValueError:
        steps = ()
    if not steps or any(users < 1 for users in steps):
        raise ValueError(f"steps must be user counts separated by commas, e.g. 25,50 "
                         f"(or nothing, for a plain ramp), not {text!r}")
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

    def __post_init__(self) -> None:
        for name in ("step_hold_s", "step_spawn_rate", "heartbeat_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        for name in ("messages_per_minute", "settle_s"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be 0 or more, got {getattr(self, name)}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {', '.join(SCHEDULES)}, "
                             f"not {self.schedule!r}")
        if self.processes < 1:
            raise ValueError(f"processes must be at least 1, got {self.processes}")

    @property
    def duration_s(self) -> float | None:
        """How long the step shape lasts; None without steps (until stopped)."""
        return len(self.steps) * self.step_hold_s if self.steps else None

    # -- command-line options ------------------------------------------------------------

    @classmethod
    def add_options(cls, parser, *, locust: bool = False) -> None:
        """The options, on an argparse parser (``chat-harness load``, with ``--processes``
        for Locust's workers) or on Locust's own (``locust``: each shown in the web UI's
        start form, whose values Locust converts to the default's type)."""
        d = cls()

        def add(*names, **options) -> None:
            if locust:  # the web UI shows help as written
                options["help"] = options["help"].replace("%(default)s", str(options["default"]))
                options["include_in_web_ui"] = True
            parser.add_argument(*names, **options)

        add("--steps", default=",".join(map(str, d.steps)), metavar="N,N,...",
            help="users per step, e.g. 100,250,500 (default %(default)s); empty for a plain "
                 "ramp to the user count at the spawn rate")
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
        if not locust:  # Locust has its own --processes
            add("--processes", type=positive_int, default=d.processes,
                help="Locust worker processes (default %(default)s)")

    @classmethod
    def from_options(cls, options) -> LoadParameters:
        """From parsed options (``processes`` stays 1 where the parser had no such option);
        ValueError, in one line, for a value the form or command line got wrong."""
        values = {f.name: getattr(options, f.name) for f in fields(cls) if hasattr(options, f.name)}
        values["steps"] = parse_steps(str(values.get("steps", "")))
        # Locust's own --processes: None (one process) or -1 (one per core).
        processes = values.get("processes") or 1
        values["processes"] = os.cpu_count() or 1 if processes == -1 else processes
        return cls(**values)

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


def token_secret(authorizer: str | None, stack: str | os.PathLike) -> str | None:
    """The key users mint their tokens with, where the stack's $connect has the chat's JWT
    authorizer: JWT_SECRET of this process's environment (every worker's, on every
    machine)."""
    if authorizer != "jwt":
        return None
    if not os.environ.get("JWT_SECRET"):
        raise ValueError(f"the stack {stack} has the jwt authorizer on $connect: set "
                         f"JWT_SECRET (its key) so that each user can mint its token")
    return os.environ["JWT_SECRET"]
