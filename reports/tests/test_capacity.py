"""The arithmetic of the capacity analysis: peaks, the capacity a run needed, Scan pages,
how storage grows."""

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from reports.capacity import (
    Analysis,
    Target,
    carries,
    required_rate,
    scan_read_units,
    sliding_peak,
)
from reports.fit import linear_fit
from reports.pricing import BYTES_PER_GB, SECONDS_PER_MONTH, PriceTable, ReportPrices
from reports.tests.conftest import a_local_run

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


def write(route: str, invocation: str, op: str, table: str, stored_bytes: int | None) -> dict:
    """An operations-log entry of a write (system/local/dynamodb_proxy.py)."""
    return {"t": 1_010.0, "op": op, "invocation": invocation, "route": route,
            "tables": [table], "error": None, "measured": {table: {"read": 0.0, "write": 1.0}},
            "modelled": {table: {"read": 0.0, "write": 1.0}}, "items": 1, "bytes": 0,
            "stored_bytes": stored_bytes}


def a_run_that_stores(stored_bytes_logged: bool = True):
    """Each message stores 300 bytes; each session 180 in SessionHistory (put, then grown
    by its $disconnect) and 170 in ActiveConnections, which its $disconnect frees."""
    def stored(n: int) -> int | None:
        return n if stored_bytes_logged else None
    operations = []
    for i in range(4):
        operations.append(write("sendmessage", f"m{i}", "PutItem", "MessageHistory", stored(300)))
    for i in range(2):
        operations += [write("$connect", f"c{i}", "PutItem", "ActiveConnections", stored(170)),
                       write("$connect", f"c{i}", "PutItem", "SessionHistory", stored(120)),
                       write("$disconnect", f"d{i}", "DeleteItem", "ActiveConnections",
                             stored(-170)),
                       write("$disconnect", f"d{i}", "UpdateItem", "SessionHistory", stored(60))]
    return a_local_run(users=1000, operations=operations)


def test_storage_grows_by_what_each_message_and_session_keeps():
    run = a_run_that_stores()
    target = Target.of_run(run, session_minutes=30)
    analysis = Analysis(run, target, ReportPrices(PriceTable.load()))
    growth = analysis.storage(analysis.route_costs())
    messages_per_s = 1000 * 6 / 60
    sessions_per_s = 1000 / (30 * 60)
    assert growth["gb_per_month"] == pytest.approx({
        "MessageHistory": messages_per_s * 300 * SECONDS_PER_MONTH / BYTES_PER_GB,
        "SessionHistory": sessions_per_s * 180 * SECONDS_PER_MONTH / BYTES_PER_GB,
        "ActiveConnections": 0})


def test_storage_is_not_priced_from_a_log_that_did_not_measure_it():
    run = a_run_that_stores(stored_bytes_logged=False)
    analysis = Analysis(run, Target.of_run(run), ReportPrices(PriceTable.load()))
    assert analysis.storage(analysis.route_costs()) is None
