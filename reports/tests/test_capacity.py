"""The arithmetic of the capacity analysis: peaks, the capacity a run needed, Scan pages."""

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from reports.capacity import carries, required_rate, scan_read_units, sliding_peak
from reports.fit import linear_fit

events = st.lists(st.tuples(st.floats(0, 20), st.sampled_from([0.5, 1.0, 2.0, 7.5, 40.0])),
                  min_size=1, max_size=40).map(sorted)


@given(events)
def test_the_needed_rate_is_the_lowest_that_carries_the_run(happened):
    rate = required_rate(happened)
    assert carries(rate, happened)
    assert not carries(rate - 0.02, happened) or rate <= 0.02


@given(events)
@example([(9.628157441108669e-20, 0.5), (1.0, 0.5), (2.0, 1.0)])  # 1 + 1e-19 == 1 in floats
def test_the_peak_is_the_busiest_one_second_window(happened):
    peak, start = sliding_peak(happened)
    brute = max(sum(u for t, u in happened if s <= t < s + 1) for s, _ in happened)
    assert peak == pytest.approx(brute)
    assert sum(u for t, u in happened if start <= t < start + 1) == pytest.approx(peak)


def test_a_full_scan_is_rounded_per_1_mb_page():
    assert scan_read_units(0) == 0.5  # an empty page still costs the minimum
    assert scan_read_units(4096) == 0.5
    assert scan_read_units(4097) == 1.0
    assert scan_read_units(1024 * 1024) == 128.0
    assert scan_read_units(1024 * 1024 + 1) == 128.5  # a second page, rounded on its own


def test_a_linear_fit_reports_its_error():
    fit = linear_fit([1, 2, 3, 4], [10, 20, 30, 41])
    assert fit["slope"] == pytest.approx(10.3) and fit["r2"] > 0.99 and fit["rms_residual"] > 0
    assert linear_fit([5, 5], [1, 2]) is None  # no spread in x: nothing to fit
