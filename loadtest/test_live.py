"""The web UI's running fan-out figures."""

from loadtest.live import FanoutDelta, LiveFanout


def test_deliveries_and_last_recipient_as_reports_come_in():
    live, worker_a, worker_b = LiveFanout(settle_s=5), FanoutDelta(), FanoutDelta()
    worker_a.opened += [1.0]
    worker_b.opened += [2.0]
    worker_b.receipts += [("m1", 0.030)]  # a receipt may reach the master before its send
    live.add(worker_b.take())
    worker_a.sent += [("m1", 3.0)]
    worker_a.receipts += [("m1", 0.020)]
    live.add(worker_a.take())
    rows = {row["figure"]: row["value"] for row in live.rows(connected=2, now=8.0)}
    assert rows["deliveries received / expected (sent over 5 s ago)"] == "2 / 2"
    assert rows["delivery ratio"] == "1.0000"
    assert live.last_recipient.count == 1 and 29 < live.last_recipient.max < 31
    assert worker_a.take() == {"opened": [], "closed": [], "sent": [], "receipts": []}


def test_a_message_sent_before_a_connection_opened_is_not_expected_there():
    live, delta = LiveFanout(settle_s=5), FanoutDelta()
    delta.opened += [1.0, 5.0]
    delta.closed += [2.0]
    delta.sent += [("early", 1.5), ("late", 6.0)]
    live.add(delta.take())
    assert live.connected_at(1.5) == 1 and live.connected_at(6.0) == 1
    rows = {row["figure"]: row["value"] for row in live.rows(connected=1, now=11.0)}
    assert rows["deliveries received / expected (sent over 5 s ago)"] == "0 / 2"


def test_messages_still_in_flight_are_not_counted_as_lost():
    live, delta = LiveFanout(settle_s=5), FanoutDelta()
    delta.opened += [1.0, 1.0]
    delta.sent += [("delivered", 2.0), ("in flight", 9.0)]
    delta.receipts += [("delivered", 0.01), ("delivered", 0.02)]
    live.add(delta.take())
    rows = {row["figure"]: row["value"] for row in live.rows(connected=2, now=10.0)}
    assert rows["messages sent"] == 2
    assert rows["deliveries received / expected (sent over 5 s ago)"] == "2 / 2"
    assert rows["delivery ratio"] == "1.0000"
    rows = {row["figure"]: row["value"] for row in live.rows(connected=2, now=14.0)}
    assert rows["deliveries received / expected (sent over 5 s ago)"] == "2 / 4"
