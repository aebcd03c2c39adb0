"""The fan-out benchmark's arithmetic (fanout_results.py), without a stack:
``python -m pytest benchmarks/test_fanout_results.py``."""

from fanout_results import (
    BROADCASTING_FUNCTION,
    CLOSED,
    FANOUT_FUNCTION,
    NEVER_SENT,
    SENT_NOT_READ,
    BroadcastResult,
    Invocation,
    Miss,
    SizeResult,
    goal_checks,
    miss_reason,
    table_lines,
)


def send(duration_ms: float = 100.0, timed_out: bool = False) -> Invocation:
    return Invocation(BROADCASTING_FUNCTION, "r", duration_ms, timed_out, timed_out)


def batch() -> Invocation:
    return Invocation(FANOUT_FUNCTION, "b", 50.0, False, False)


def complete(clients: int, seconds: float, *invocations: Invocation) -> BroadcastResult:
    return BroadcastResult(clients, clients, seconds, (), invocations or (send(),))


def test_miss_reasons():
    assert miss_reason(closed=True, posts_at_start=3, posts_now=4) == CLOSED
    assert miss_reason(closed=False, posts_at_start=3, posts_now=None) == CLOSED
    assert miss_reason(closed=False, posts_at_start=3, posts_now=3) == NEVER_SENT
    assert miss_reason(closed=False, posts_at_start=3, posts_now=4) == SENT_NOT_READ


def test_figures_of_one_size():
    partial = BroadcastResult(10, 7, 2.0, (Miss(8, "a", NEVER_SENT), Miss(9, "b", NEVER_SENT),
                                           Miss(3, "c", CLOSED)), (send(3000, timed_out=True),))
    result = SizeResult(False, "threads", 10, (complete(10, 1.0), complete(10, 3.0), partial))
    assert result.p50_s == 1.0 and result.p95_s == 3.0  # the incomplete one left out
    assert result.deliveries_per_s == 27 / 6.0
    assert result.delivery_ratio == 27 / 30
    assert result.invocations == {BROADCASTING_FUNCTION: 3}
    assert result.timeouts == {BROADCASTING_FUNCTION: 1}
    assert result.misses == {NEVER_SENT: 2, CLOSED: 1}
    assert result.miss_examples(1) == {NEVER_SENT: ["broadcast 3: client 8 (a)"],
                                       CLOSED: ["broadcast 3: client 3 (c)"]}
    assert "incomplete" not in table_lines([result])[1]


def test_no_complete_broadcast_has_no_time_to_last():
    missed = BroadcastResult(10, 0, None, (), (send(3000, timed_out=True),))
    result = SizeResult(True, "sequential", 10, (missed,))
    assert result.p50_s is None and result.deliveries_per_s is None
    assert "incomplete (0 of 1)" in table_lines([result])[1]


def test_goals_met_and_not():
    results = [
        SizeResult(False, "threads", 1000, (complete(1000, 4.0),)),
        SizeResult(False, "batched", 1000, (complete(1000, 2.0, send(), batch()),)),
        SizeResult(False, "batched", 5000, (complete(5000, 9.0, send(), batch()),)),
        SizeResult(True, "sequential", 1000,
                   (BroadcastResult(1000, 120, 3.0, (), (send(3000, timed_out=True),)),)),
    ]
    assert [c.met for c in goal_checks(results)] == [True, True, True, True]
    results[1] = SizeResult(False, "batched", 1000, (complete(1000, 3.0, send(), batch()),))
    assert [c.met for c in goal_checks(results)] == [False, False, True, True]


def test_goals_not_measured_without_their_rows():
    assert [c.met for c in goal_checks([])] == [None, None, None, None]


def test_sequential_under_the_timeout_does_not_pass_it():
    quick = SizeResult(True, "sequential", 1000, (complete(1000, 2.5, send(2400)),))
    assert goal_checks([quick])[-1].met is False
