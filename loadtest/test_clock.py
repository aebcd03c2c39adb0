"""Property and example tests of the clock-offset core (loadtest/clock.py) and of the
wall-clock shift a test worker runs with (loadtest/clock_exchange.py)."""

from __future__ import annotations

import math
import time
from itertools import combinations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from loadtest.clock import (
    REFERENCE_CLOCK,
    ClockOffsets,
    ClockSample,
    OffsetEstimate,
    best_estimate,
    latency_uncertainty_ms,
)
from loadtest.clock_exchange import CLOCK_SHIFT_VARIABLE, shift_wall_clock_from_environment

epochs = st.floats(min_value=1e9, max_value=2e9)
true_offsets = st.floats(min_value=-100, max_value=100)
delays = st.floats(min_value=0, max_value=5)
holds = st.floats(min_value=0, max_value=0.1)  # the master's time between receipt and reply


def probe(sent: float, true_offset: float, out: float, back: float, hold: float) -> ClockSample:
    """The readings of one probe whose trip out takes ``out`` and back ``back`` seconds,
    where the master's clock reads the worker's plus ``true_offset``."""
    master_received = sent + true_offset + out
    master_replied = master_received + hold
    return ClockSample(sent, master_received, master_replied,
                       master_replied - true_offset + back)


def resolution(sample: ClockSample) -> float:
    """The float rounding of epoch readings (a few ulps of the largest, ~1 µs)."""
    return 8 * math.ulp(max(abs(sample.sent), abs(sample.master_received)))


@given(epochs, true_offsets, delays, delays, holds)
def test_the_true_offset_lies_within_the_estimate_and_its_uncertainty(
        sent: float, true_offset: float, out: float, back: float, hold: float) -> None:
    sample = probe(sent, true_offset, out, back, hold)
    estimate = best_estimate([sample])
    tolerance = resolution(sample)
    assert abs(estimate.offset_s - true_offset) <= estimate.uncertainty_s + tolerance
    assert estimate.uncertainty_s == pytest.approx((out + back) / 2, abs=tolerance)


@given(epochs, true_offsets, st.lists(st.tuples(delays, delays, holds), min_size=1, max_size=8))
def test_the_best_sample_is_the_smallest_round_trip_and_still_bounds_the_offset(
        sent: float, true_offset: float, trips: list[tuple[float, float, float]]) -> None:
    samples = [probe(sent + 10 * i, true_offset, out, back, hold)
               for i, (out, back, hold) in enumerate(trips)]
    estimate = best_estimate(samples)
    tolerance = max(map(resolution, samples))
    assert estimate.uncertainty_s == min(s.round_trip_s for s in samples) / 2
    assert abs(estimate.offset_s - true_offset) <= estimate.uncertainty_s + tolerance


def test_a_sample_with_a_negative_round_trip_is_skipped() -> None:
    stepped = ClockSample(sent=100.0, master_received=100.5, master_replied=100.5, received=99.0)
    good = ClockSample(sent=200.0, master_received=200.375, master_replied=200.375,
                       received=200.25)
    assert best_estimate([stepped]) is None
    assert best_estimate([stepped, good]) == OffsetEstimate(at=200.125, offset_s=0.25,
                                                            uncertainty_s=0.125)
    assert best_estimate([]) is None


estimate_lists = st.lists(
    st.builds(OffsetEstimate, st.integers(0, 100).map(float), st.floats(-1, 1),
              st.floats(0, 0.01)),
    min_size=1, max_size=6, unique_by=lambda estimate: estimate.at)


@given(estimate_lists, st.floats(-10, 110))
def test_a_reading_takes_the_offset_of_the_estimate_nearest_in_time(
        estimates: list[OffsetEstimate], t: float) -> None:
    nearest = min(estimates, key=lambda estimate: (abs(estimate.at - t), estimate.at))
    assert ClockOffsets(estimates).offset_at(t) == nearest.offset_s


@given(estimate_lists, st.floats(-10, 110))
def test_a_run_keeps_the_estimate_before_its_start_and_every_later_one(
        estimates: list[OffsetEstimate], start: float) -> None:
    kept = ClockOffsets(estimates).since(start).estimates
    before = [e for e in estimates if e.at < start]
    assert set(kept) == {e for e in estimates if e.at >= start} | (
        {max(before, key=lambda e: e.at)} if before else set())


@given(st.lists(estimate_lists | st.just([]), max_size=5))
def test_the_latency_uncertainty_is_the_worst_pair_of_processes(
        processes: list[list[OffsetEstimate]]) -> None:
    clocks = [ClockOffsets(estimates) for estimates in processes]
    worst = max((a.uncertainty_s + b.uncertainty_s for a, b in combinations(clocks, 2)),
                default=0.0)
    expected = round(worst * 1000, 3) if math.isfinite(worst) else None
    assert latency_uncertainty_ms(clocks) == expected


def test_the_reference_clock_is_exact_and_one_process_has_no_uncertainty() -> None:
    assert REFERENCE_CLOCK.offset_at(1.7e9) == 0.0
    assert REFERENCE_CLOCK.summary() == {"clock_offset_ms": 0.0, "clock_uncertainty_ms": 0.0}
    assert latency_uncertainty_ms([REFERENCE_CLOCK]) == 0.0


def test_a_worker_without_estimates_is_uncorrected_and_its_uncertainty_unknown() -> None:
    unknown = ClockOffsets([])
    assert unknown.offset_at(1.7e9) == 0.0
    assert unknown.summary() == {"clock_offset_ms": None, "clock_uncertainty_ms": None}
    assert latency_uncertainty_ms([unknown, REFERENCE_CLOCK]) is None


def test_the_summary_gives_the_latest_offset_and_the_largest_uncertainty() -> None:
    clock = ClockOffsets([OffsetEstimate(20.0, -0.2501, 0.0004),
                          OffsetEstimate(10.0, -0.2499, 0.0009)])
    assert clock.summary() == {"clock_offset_ms": -250.1, "clock_uncertainty_ms": 0.9}
    assert ClockOffsets.from_snapshot(clock.to_snapshot()).estimates == clock.estimates


# -- the injected wall-clock shift -----------------------------------------------------------


@pytest.fixture
def wall_clock(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """``time.time`` restored after the test, whatever the shift did to it."""
    monkeypatch.setattr(time, "time", time.time)
    return monkeypatch


def test_without_the_variable_the_clock_is_untouched(wall_clock: pytest.MonkeyPatch) -> None:
    wall_clock.delenv(CLOCK_SHIFT_VARIABLE, raising=False)
    unshifted = time.time
    assert shift_wall_clock_from_environment() == 0.0
    assert time.time is unshifted


def test_the_variable_shifts_every_wall_clock_reading(wall_clock: pytest.MonkeyPatch) -> None:
    wall_clock.setenv(CLOCK_SHIFT_VARIABLE, "0.25")
    unshifted = time.time
    assert shift_wall_clock_from_environment() == 0.25
    before, shifted, after = unshifted(), time.time(), unshifted()
    assert before + 0.25 <= shifted <= after + 0.25


def test_a_shift_that_is_not_seconds_is_refused_in_one_line(
        wall_clock: pytest.MonkeyPatch) -> None:
    wall_clock.setenv(CLOCK_SHIFT_VARIABLE, "250ms")
    with pytest.raises(ValueError, match=r"^CHAT_HARNESS_CLOCK_SHIFT_S must be seconds"):
        shift_wall_clock_from_environment()
