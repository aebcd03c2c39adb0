"""Step load: hold each number of users for a while, to measure latency and capacity against N."""

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
    """The run's steps (set by locustfile.py from --steps and --step-hold); each step
    spawns up to its users at ``spawn_rate`` per second, then holds."""

    steps: tuple[Step, ...] = ()
    spawn_rate: float = 50.0

    def tick(self) -> tuple[int, float] | None:
        step = step_at(self.steps, self.get_run_time())
        return None if step is None else (step.users, self.spawn_rate)
