"""The fan-out benchmark's figures: what one broadcast did, what a strategy did at one N,
the goals the issue sets, and the tables printed. Pure (values in, values and text out):
benchmarks/fanout.py measures, this module counts.

A client that missed a broadcast missed it for one of three reasons, told apart by what
the stack's control API says of its connection (``posts_delivered``: the @connections
posts that went out to it):

- ``closed``: its socket closed (or the stack no longer knows the connection);
- ``never sent``: its posts_delivered did not grow during the broadcast: the handler (or
  the batch) never posted to it, e.g. it timed out first;
- ``sent but not read``: it grew, but the frame did not reach the client before the
  broadcast's timeout.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

from system.routes import DEFAULT_TIMEOUT_S

CLOSED = "closed"
NEVER_SENT = "never sent"
SENT_NOT_READ = "sent but not read"
MISS_REASONS = (CLOSED, NEVER_SENT, SENT_NOT_READ)

BROADCASTING_FUNCTION = "SendMessageHandler"
FANOUT_FUNCTION = "FanoutHandler"
COUNTED_FUNCTIONS = (BROADCASTING_FUNCTION, FANOUT_FUNCTION)
MISS_EXAMPLES = 3

# The goals, on this project's 2-core machine (ratios: absolute times vary by day).
GOAL_CLIENTS = 1000
GOAL_RATE_RATIO = 1.5  # batched deliveries/s >= 1.5 x threads'
GOAL_P50_RATIO = 0.67  # batched time to the last recipient p50 <= 0.67 x threads'
GOAL_LARGE_CLIENTS = 5000  # batched: every client gets every broadcast
# With the AWS latency model, sequential at N = 1,000 passes Lambda's default timeout.
GOAL_SEQUENTIAL_PASSES_S = DEFAULT_TIMEOUT_S


def miss_reason(closed: bool, posts_at_start: int, posts_now: int | None) -> str:
    """Why a client missed a broadcast: ``closed`` (its socket closed, or the control API
    no longer knows its connection: ``posts_now`` None), else whether the stack posted to
    it during the broadcast."""
    if closed or posts_now is None:
        return CLOSED
    return SENT_NOT_READ if posts_now > posts_at_start else NEVER_SENT


def percentile(values: list[float], percent: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(percent / 100 * len(ordered)) - 1)]


@dataclass(frozen=True)
class Invocation:
    """One line of the stack's invocations log, and whether it was a timeout."""

    function: str
    request_id: str
    duration_ms: float
    failed: bool
    timed_out: bool


@dataclass(frozen=True)
class Miss:
    client: int  # the client's number, in order of connection
    connection_id: str
    reason: str


@dataclass(frozen=True)
class BroadcastResult:
    """One broadcast to ``recipients`` clients (the sender is one of them)."""

    recipients: int
    delivered: int
    last_arrival_s: float | None  # from the send to the last arrival; None: none arrived
    misses: tuple[Miss, ...] = ()
    invocations: tuple[Invocation, ...] = ()

    @property
    def complete(self) -> bool:
        return self.delivered == self.recipients

    @property
    def timeouts(self) -> int:
        return sum(1 for i in self.invocations if i.timed_out)

    @property
    def passed_timeout(self) -> bool:
        """Its broadcasting invocation timed out or ran longer than Lambda's default
        timeout, or it reached its last recipient later than that."""
        broadcasting = [i for i in self.invocations if i.function == BROADCASTING_FUNCTION]
        if any(i.timed_out or i.duration_ms > GOAL_SEQUENTIAL_PASSES_S * 1000
               for i in broadcasting):
            return True
        return self.complete and self.last_arrival_s > GOAL_SEQUENTIAL_PASSES_S


@dataclass(frozen=True)
class SizeResult:
    """The measured broadcasts of one strategy at one N, with the model on or off."""

    latency: bool
    strategy: str
    clients: int
    broadcasts: tuple[BroadcastResult, ...]

    @property
    def complete_times(self) -> list[float]:
        return [b.last_arrival_s for b in self.broadcasts if b.complete]

    @property
    def p50_s(self) -> float | None:
        times = self.complete_times
        return percentile(times, 50) if times else None

    @property
    def p95_s(self) -> float | None:
        times = self.complete_times
        return percentile(times, 95) if times else None

    @property
    def delivered(self) -> int:
        return sum(b.delivered for b in self.broadcasts)

    @property
    def deliveries_per_s(self) -> float | None:
        """Deliveries over the sum of each broadcast's send-to-last-arrival time."""
        seconds = sum(b.last_arrival_s for b in self.broadcasts if b.last_arrival_s)
        return self.delivered / seconds if seconds else None

    @property
    def delivery_ratio(self) -> float:
        expected = sum(b.recipients for b in self.broadcasts)
        return self.delivered / expected if expected else 0.0

    @property
    def invocations(self) -> Counter:
        return Counter(i.function for b in self.broadcasts for i in b.invocations)

    @property
    def timeouts(self) -> Counter:
        return Counter(i.function for b in self.broadcasts for i in b.invocations
                       if i.timed_out)

    @property
    def misses(self) -> Counter:
        return Counter(m.reason for b in self.broadcasts for m in b.misses)

    def miss_examples(self, per_reason: int = MISS_EXAMPLES) -> dict[str, list[str]]:
        examples: dict[str, list[str]] = {}
        for number, broadcast in enumerate(self.broadcasts, 1):
            for miss in broadcast.misses:
                found = examples.setdefault(miss.reason, [])
                if len(found) < per_reason:
                    found.append(f"broadcast {number}: client {miss.client} "
                                 f"({miss.connection_id})")
        return examples

    def as_json(self) -> dict:
        def rounded(value: float | None, digits: int = 3) -> float | None:
            return None if value is None else round(value, digits)

        return {
            "aws_latency": self.latency, "strategy": self.strategy, "clients": self.clients,
            "broadcasts": len(self.broadcasts),
            "complete_broadcasts": len(self.complete_times),
            "time_to_last_s": {"p50": rounded(self.p50_s), "p95": rounded(self.p95_s),
                               "each": [rounded(b.last_arrival_s) for b in self.broadcasts]},
            "deliveries_per_s": rounded(self.deliveries_per_s, 1),
            "delivered": self.delivered,
            "delivery_ratio": round(self.delivery_ratio, 5),
            "invocations": dict(self.invocations), "timeouts": dict(self.timeouts),
            "misses": {reason: self.misses[reason] for reason in MISS_REASONS},
            "miss_examples": self.miss_examples(),
        }


# -- text ------------------------------------------------------------------------------------


def latency_label(latency: bool) -> str:
    return "AWS latency model on" if latency else "AWS latency model off"


def ratio_text(value: float) -> str:
    """A delivery ratio: '1' only when every delivery was made."""
    return "1" if value == 1 else f"{min(value, 0.9999):.4f}"


def seconds(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.3f} s" if value < 1 else f"{value:.2f} s"


def time_to_last(result: SizeResult) -> str:
    """'p50 / p95', or why there is none: no broadcast reached every client."""
    complete = len(result.complete_times)
    if not complete:
        return f"incomplete (0 of {len(result.broadcasts)})"
    text = f"{seconds(result.p50_s)} / {seconds(result.p95_s)}"
    if complete < len(result.broadcasts):
        text += f" ({complete} of {len(result.broadcasts)})"
    return text


def invocations_text(counts: Counter) -> str:
    return " + ".join(str(counts[f]) for f in COUNTED_FUNCTIONS)


TABLE_HEADER = ("strategy", "N", "last recipient p50 / p95", "deliveries/s", "delivery ratio",
                "invocations (send + fan-out)", "timeouts",
                "missed: closed / never sent / not read")


def table_rows(results: list[SizeResult]) -> list[tuple[str, ...]]:
    rows = []
    for r in results:
        rate = r.deliveries_per_s
        rows.append((
            r.strategy, f"{r.clients:,}", time_to_last(r),
            "-" if rate is None else f"{rate:,.0f}",
            ratio_text(r.delivery_ratio),
            invocations_text(r.invocations), invocations_text(r.timeouts),
            " / ".join(str(r.misses[reason]) for reason in MISS_REASONS),
        ))
    return rows


def table_lines(results: list[SizeResult]) -> list[str]:
    """A plain-text table, one row per strategy x N, columns aligned."""
    rows = [TABLE_HEADER, *table_rows(results)]
    widths = [max(len(row[c]) for row in rows) for c in range(len(TABLE_HEADER))]
    return ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip()
            for row in rows]


def miss_lines(results: list[SizeResult]) -> list[str]:
    """For each strategy x N with misses: counts per reason and a few examples."""
    lines = []
    for r in results:
        counts = r.misses
        if not counts:
            continue
        lines.append(f"{r.strategy} at N = {r.clients:,}: " + ", ".join(
            f"{counts[reason]} {reason}" for reason in MISS_REASONS if counts[reason]))
        for reason, examples in r.miss_examples().items():
            lines.append(f"  {reason}: {'; '.join(examples)}")
    return lines


# -- the goals -----------------------------------------------------------------------


@dataclass(frozen=True)
class GoalCheck:
    claim: str
    value: str
    goal: str
    met: bool | None  # None: not measured, or nothing to compare

    @property
    def verdict(self) -> str:
        return {True: "met", False: "NOT MET", None: "n/a"}[self.met]

    def line(self) -> str:
        return f"{self.claim}: {self.value}  goal {self.goal}  {self.verdict}"

    def as_json(self) -> dict:
        return {"claim": self.claim, "value": self.value, "goal": self.goal, "met": self.met}


def find(results: list[SizeResult], latency: bool, strategy: str,
         clients: int) -> SizeResult | None:
    return next((r for r in results if (r.latency, r.strategy, r.clients)
                 == (latency, strategy, clients)), None)


def goal_checks(results: list[SizeResult]) -> list[GoalCheck]:
    """The issue's Must-show, from one run's results: batched against threads at N = 1,000
    (model off), batched's delivery ratio at N = 5,000 (model off), and sequential at
    N = 1,000 with the model on."""
    n = f"N = {GOAL_CLIENTS:,}"
    batched = find(results, False, "batched", GOAL_CLIENTS)
    threads = find(results, False, "threads", GOAL_CLIENTS)
    checks = []

    claim = f"{n}, model off: batched / threads deliveries/s"
    goal = f">= {GOAL_RATE_RATIO}"
    if batched is None or threads is None:
        checks.append(GoalCheck(claim, "needs batched and threads at that N", goal, None))
    elif not (batched.deliveries_per_s and threads.deliveries_per_s):
        checks.append(GoalCheck(claim, "no deliveries to compare", goal, None))
    else:
        ratio = batched.deliveries_per_s / threads.deliveries_per_s
        checks.append(GoalCheck(claim, f"{ratio:.2f} ({batched.deliveries_per_s:,.0f} / "
                                f"{threads.deliveries_per_s:,.0f})", goal,
                                ratio >= GOAL_RATE_RATIO))

    claim = f"{n}, model off: batched / threads time to the last recipient p50"
    goal = f"<= {GOAL_P50_RATIO}"
    if batched is None or threads is None:
        checks.append(GoalCheck(claim, "needs batched and threads at that N", goal, None))
    elif batched.p50_s is None:
        checks.append(GoalCheck(claim, "batched reached every client in none of its "
                                "broadcasts", goal, False))
    elif threads.p50_s is None:
        checks.append(GoalCheck(claim, f"threads reached every client in none of its "
                                f"broadcasts (batched p50 {seconds(batched.p50_s)})", goal,
                                None))
    else:
        ratio = batched.p50_s / threads.p50_s
        checks.append(GoalCheck(claim, f"{ratio:.2f} ({seconds(batched.p50_s)} / "
                                f"{seconds(threads.p50_s)})", goal, ratio <= GOAL_P50_RATIO))

    large = find(results, False, "batched", GOAL_LARGE_CLIENTS)
    claim = f"N = {GOAL_LARGE_CLIENTS:,}, model off: batched delivery ratio"
    if large is None:
        checks.append(GoalCheck(claim, "needs batched at that N", "1", None))
    else:
        checks.append(GoalCheck(claim, f"{ratio_text(large.delivery_ratio)} ({large.delivered:,} of "
                                f"{large.clients * len(large.broadcasts):,})", "1",
                                large.delivery_ratio == 1))

    sequential = find(results, True, "sequential", GOAL_CLIENTS)
    claim = f"{n}, model on: sequential's predicted time"
    goal = f"passes {GOAL_SEQUENTIAL_PASSES_S:g} s"
    if sequential is None:
        checks.append(GoalCheck(claim, "needs sequential at that N with the model on", goal,
                                None))
    else:
        timeouts = sequential.timeouts[BROADCASTING_FUNCTION]
        count = len(sequential.broadcasts)
        value = (f"timed out ({timeouts} timeouts of {count} broadcasts)" if timeouts else
                 f"{time_to_last(sequential)} to the last recipient")
        passed = sum(1 for b in sequential.broadcasts if b.passed_timeout)
        if 0 < passed < count:
            value += f"; {passed} of {count} broadcasts passed it"
        checks.append(GoalCheck(claim, value, goal, passed == count))
    return checks
