"""The benchmark's count of receipts in a window, from Locust's counts per whole second."""

import pytest
from heartbeat_users import receipts_between


def test_whole_seconds_inside_the_window_count_whole_and_outside_not_at_all():
    counts = {99: 7, 100: 10, 101: 20, 102: 5}
    assert receipts_between(counts, 100.0, 102.0) == 30


def test_a_second_the_window_cuts_counts_for_the_part_inside():
    counts = {100: 10, 101: 20}
    assert receipts_between(counts, 100.5, 101.25) == pytest.approx(10 * 0.5 + 20 * 0.25)


def test_no_receipts_in_an_empty_window():
    assert receipts_between({100: 10}, 100.5, 100.5) == 0
