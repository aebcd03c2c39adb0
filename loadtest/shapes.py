"""Step load: hold each number of users for a while, to measure latency and capacity against N;
or, with no steps, Locust's own user count and spawn rate (a plain ramp, held until stopped)."""

from __future__ import annotations

from dataclasses import dataclass

from locust import LoadTestShape


@dataclass(frozen=True)
class Step:
    users: int
    starts_at: float  # seconds into the run
    ends_at: float


def steps_from(users: list[int], hold_s: float) -> list[Step]:
    """[100, 250] held 60 s each -> Step(100, 0, 60), Step(250, 60, 120)."""
    if not users or any(n < 1 for n in users) or hold_s <= 0:
        raise ValueError("steps need positive user counts and a positive hold time")
    return [Step(n, i * hold_s, (i + 1) * hold_s) for i, n in enumerate(users)]


def step_at(steps: tuple[Step, ...] | list[Step], elapsed_s: float) -> Step | None:
    return next((s for s in steps if s.starts_at <= elapsed_s < s.ends_at), None)


class StepShape(LoadTestShape):
    """Each step spawns up to its users at ``spawn_rate`` per second, then holds; after the
    last, the test ends. Without steps, Locust's user count and spawn rate (the web UI
    shows them: ``use_common_options``) hold until the test is stopped.

    ``configure`` is called whenever a test starts (``reset_time``), so each test uses
    the options its start form gave."""

    abstract = True  # the locustfile's subclass is the run's shape
    use_common_options = True
    steps: tuple[Step, ...] = ()
    spawn_rate: float = 50.0
    plain: tuple[int, float] | None = None  # (users, spawn rate) without steps

    def configure(self) -> None:
        """Overridden by the locustfile: set ``steps`` and ``spawn_rate``, or ``plain``."""

    def reset_time(self) -> None:
        self.configure()
        super().reset_time()

    def tick(self) -> tuple[int, float] | None:
        if not self.steps:
            return self.plain
        step = step_at(self.steps, self.get_run_time())
        return None if step is None else (step.users, self.spawn_rate)
