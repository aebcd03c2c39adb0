"""Property and example tests of the fan-out measurement core (loadtest/measurement.py).

The ledger is checked against a deliberately naive reference: every (message,
connection) pair tested against the expected-recipient rule one by one, which is
what the merge's sweep must agree with.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from dataclasses import dataclass, replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loadtest.clock import ClockOffsets, OffsetEstimate, latency_uncertainty_ms
from loadtest.measurement import (
    ChatPayload,
    FanoutLedger,
    FanoutReport,
    LatencyHistogram,
    merge_histograms,
    onto_reference_clock,
)

RUN = "run-1"
SETTLE = 3.0

finite_times = st.floats(min_value=0, max_value=4e9, allow_nan=False, allow_infinity=False)
payloads = st.builds(ChatPayload, st.text(), st.text(), st.text(),
                     st.integers(min_value=0, max_value=2**63), finite_times, finite_times)


def micro(payload: ChatPayload) -> ChatPayload:
    """The payload as it survives the wire: times rounded to the microsecond."""
    return replace(payload, intended_at=round(payload.intended_at, 6),
                   sent_at=round(payload.sent_at, 6))


# -- payload -------------------------------------------------------------------------------


@given(payloads)
def test_payload_round_trips(payload: ChatPayload) -> None:
    text = payload.encode()
    assert text != "ping"
    assert text.isascii()
    assert ChatPayload.decode(text, payload.run_id) == micro(payload)
    assert ChatPayload.decode(text, payload.run_id).encode() == text


@given(payloads, st.text())
def test_payload_of_another_run_is_ignored(payload: ChatPayload, other: str) -> None:
    if other != payload.run_id:
        assert ChatPayload.decode(payload.encode(), other) is None


def test_payload_is_short() -> None:
    payload = ChatPayload(RUN, "0" * 32, "1a2b3c4d-1234", 123456, 1764150000.123456789,
                          1764150000.2)
    assert len(payload.encode()) < 120


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)
almost_payloads = st.one_of(
    st.text(),
    st.text().map(lambda t: '{"lt":' + t),
    json_values.map(lambda v: json.dumps({"lt": v})),
    st.lists(json_values | st.just(RUN), min_size=6, max_size=6).map(
        lambda body: json.dumps({"lt": body})),
    st.tuples(st.sampled_from([RUN]), st.text(), st.text(), json_values, json_values,
              json_values).map(lambda body: json.dumps({"lt": list(body)})),
)


@given(almost_payloads)
def test_decode_never_raises(text: str) -> None:
    payload = ChatPayload.decode(text, RUN)
    if payload is not None:
        assert payload.run_id == RUN
        assert payload.seq >= 0
        assert math.isfinite(payload.intended_at) and math.isfinite(payload.sent_at)


@pytest.mark.parametrize("text", [
    "ping", "", '{"lt":' + "[" * 100_000, '{"lt":[' + "9" * 5000 + "]}",
    '{"lt":["run-1","m","s",true,1,2]}', '{"lt":["run-1","m","s",-1,1,2]}',
    '{"lt":["run-1","m","s",1,NaN,2]}', '{"lt":["run-1","m","s",1,1,Infinity]}',
    '{"lt":["run-1","m","s",1,1]}', '{"lt":["run-1",1,"s",1,1,2]}', '{"lt":"x"}',
])
def test_decode_rejects(text: str) -> None:
    assert ChatPayload.decode(text, RUN) is None


def test_decode_rejects_non_text() -> None:
    assert ChatPayload.decode(None, RUN) is None  # type: ignore[arg-type]
    assert ChatPayload.decode({"lt": []}, RUN) is None  # type: ignore[arg-type]


# -- histograms ----------------------------------------------------------------------------

latencies = st.floats(min_value=-5, max_value=700_000, allow_nan=False)
PERCENTILES = (0.0, 50.0, 90.0, 99.0, 99.9, 100.0)


def assert_same(a: LatencyHistogram, b: LatencyHistogram) -> None:
    assert a.count == b.count
    assert a.max == b.max
    assert [a.percentile(p) for p in PERCENTILES] == [b.percentile(p) for p in PERCENTILES]
    assert a.summary() == b.summary()


@given(st.lists(st.lists(latencies, max_size=30), min_size=1, max_size=4))
@settings(max_examples=60)
def test_histogram_merge_equals_recording_everything(parts: list[list[float]]) -> None:
    whole = LatencyHistogram()
    pieces = []
    for part in parts:
        piece = LatencyHistogram()
        for ms in part:
            piece.record(ms)
            whole.record(ms)
        pieces.append(piece)
    merged = LatencyHistogram()
    for piece in pieces:
        merged.merge(piece)
    assert_same(merged, whole)
    assert (merged.over_range, merged.negative) == (whole.over_range, whole.negative)
    assert_same(merge_histograms([piece.encode() for piece in pieces]), whole)


@given(st.lists(latencies, max_size=50))
@settings(max_examples=60)
def test_histogram_encoding_round_trips(values: list[float]) -> None:
    histogram = LatencyHistogram()
    for ms in values:
        histogram.record(ms)
    assert_same(LatencyHistogram.decode(histogram.encode()), histogram)


@given(st.lists(st.floats(min_value=0.001, max_value=600_000), min_size=1, max_size=50))
@settings(max_examples=60)
def test_histogram_keeps_three_significant_digits(values: list[float]) -> None:
    histogram = LatencyHistogram()
    for ms in values:
        histogram.record(ms)
    true_max = max(values)
    assert histogram.count == len(values)
    assert abs(histogram.max - true_max) <= true_max * 1e-3 + 1e-3
    assert histogram.percentile(100) == histogram.max


def test_histogram_clamps_and_counts_out_of_range() -> None:
    histogram = LatencyHistogram()
    for ms in (-2.0, 0.0, 12.5, 11 * 60 * 1000.0, math.inf):
        histogram.record(ms)
    assert histogram.count == 5
    assert (histogram.negative, histogram.over_range) == (1, 2)
    assert 600_000 <= histogram.max <= 600_000 * 1.001
    with pytest.raises(ValueError):
        histogram.record(math.nan)


def test_histogram_summary_when_empty() -> None:
    empty = LatencyHistogram()
    assert empty.summary() == {"count": 0, "p50": 0.0, "p95": 0.0, "p99": 0.0, "max": 0.0}
    assert empty.percentile(99) == 0.0
    assert LatencyHistogram.decode(empty.encode()).count == 0


def test_histogram_decode_rejects_garbage() -> None:
    with pytest.raises(ValueError):
        LatencyHistogram.decode("not a histogram")


# -- ledger: random scenarios against a naive reference -------------------------------------


@dataclass(frozen=True)
class Conn:
    key: str
    worker: int
    opened: float
    closed: float | None


@dataclass
class Scenario:
    workers: int
    conns: list[Conn]
    messages: list[tuple[ChatPayload, int]]  # payload, sending worker
    receipts: list[list[tuple[Conn, ChatPayload, float]]]  # per worker, in arrival order


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    workers = draw(st.integers(1, 3))
    conns = []
    for i in range(draw(st.integers(1, 6))):
        opened = draw(st.integers(0, 12))
        closed = draw(st.none() | st.integers(opened, 16))
        conns.append(Conn(f"c{i}", draw(st.integers(0, workers - 1)), float(opened),
                          None if closed is None else float(closed)))
    messages = []
    seqs: dict[str, int] = defaultdict(int)
    for j in range(draw(st.integers(0, 6))):
        sender = draw(st.sampled_from(conns))
        intended = float(draw(st.integers(0, 14)))
        lag = draw(st.sampled_from([0.0, 0.5, 1.0]))
        payload = ChatPayload(RUN, f"m{j}", sender.key, seqs[sender.key], intended,
                              intended + lag)
        seqs[sender.key] += 1
        messages.append((payload, sender.worker))
    receipts: list[list[tuple[Conn, ChatPayload, float]]] = [[] for _ in range(workers)]
    for payload, _ in messages:
        for conn in conns:  # any connection, so unexpected receipts occur too
            for _ in range(draw(st.integers(0, 2))):
                at = payload.sent_at + draw(st.integers(0, 4000)) / 1000
                receipts[conn.worker].append((conn, payload, at))
    receipts = [draw(st.permutations(arrivals)) for arrivals in receipts]
    return Scenario(workers, conns, messages, receipts)


def feed(ledger: FanoutLedger, scenario: Scenario, worker: int | None,
         clock_ahead: tuple[float, ...] = ()) -> None:
    """Replay the scenario's events of ``worker`` (None: all of them) into ``ledger``, each
    worker w's clock ``clock_ahead[w]`` seconds ahead of the true time (none: all true).
    A payload carries its sender's clock, as it does on the wire."""
    def mine(w: int) -> bool:
        return worker is None or w == worker

    def ahead(w: int) -> float:
        return clock_ahead[w] if clock_ahead else 0.0

    sent_by = {payload.message_id: w for payload, w in scenario.messages}

    def as_sent(payload: ChatPayload) -> ChatPayload:
        shift = ahead(sent_by[payload.message_id])
        return replace(payload, intended_at=payload.intended_at + shift,
                       sent_at=payload.sent_at + shift)

    for conn in scenario.conns:
        if mine(conn.worker):
            ledger.connection_opened(conn.key, conn.opened + ahead(conn.worker))
    for payload, w in scenario.messages:
        if mine(w):
            ledger.message_sent(as_sent(payload))
    for w, arrivals in enumerate(scenario.receipts):
        if mine(w):
            for conn, payload, at in arrivals:
                ledger.received(conn.key, as_sent(payload), at + ahead(w),
                                own=conn.key == payload.sender)
    for conn in scenario.conns:
        if mine(conn.worker) and conn.closed is not None:
            ledger.connection_closed(conn.key, conn.closed + ahead(conn.worker))


def reference(scenario: Scenario, settle_s: float,
              sent_between: tuple[float, float] | None = None) -> dict:
    """The report's counts, the slow obvious way; with ``sent_between=(start, end)``, the
    counts of the messages sent in ``[start, end)`` (duplicates, reordering and the sender
    echo stay whole-run counts here: a window's report leaves them out)."""
    first: dict[tuple[str, str], float] = {}  # (message, connection) -> first receipt time
    duplicated = out_of_order = 0
    for arrivals in scenario.receipts:
        highest: dict[tuple[str, str], int] = {}  # (connection, sender) -> highest seq
        for conn, payload, at in arrivals:
            pair = (payload.message_id, conn.key)
            if pair in first:
                duplicated += 1
                continue
            first[pair] = at
            seen = highest.get((conn.key, payload.sender))
            if seen is not None and payload.seq < seen:
                out_of_order += 1
            else:
                highest[(conn.key, payload.sender)] = max(payload.seq, seen or 0)
    expected = received = unexpected = 0
    fanout, sender_echo, last_recipient = (LatencyHistogram(), LatencyHistogram(),
                                           LatencyHistogram())
    messages = [payload for payload, _ in scenario.messages
                if sent_between is None or sent_between[0] <= payload.sent_at < sent_between[1]]
    for payload in messages:
        sent, wanted, got, latest = payload.sent_at, 0, 0, -math.inf
        for conn in scenario.conns:
            closed = math.inf if conn.closed is None else conn.closed
            is_expected = conn.opened <= sent and closed >= sent + settle_s
            excluded = conn.opened <= sent <= closed < sent + settle_s
            at = first.get((payload.message_id, conn.key))
            wanted += is_expected
            if at is None:
                continue
            delay_ms = round(at - payload.intended_at, 6) * 1000
            fanout.record(delay_ms)
            if conn.key == payload.sender:
                sender_echo.record(delay_ms)
            if is_expected:
                got += 1
                latest = max(latest, delay_ms)
            elif not excluded:
                unexpected += 1
        expected += wanted
        received += got
        if wanted and got == wanted:
            last_recipient.record(latest)
    return {
        "messages_sent": len(messages),
        "deliveries_expected": expected,
        "deliveries_received": received,
        "lost": expected - received,
        "duplicated": duplicated,
        "out_of_order": out_of_order,
        "unexpected": unexpected,
        "delivery_ratio": received / expected if expected else 1.0,
        "fanout_ms": fanout.summary(),
        "last_recipient_ms": last_recipient.summary(),
        "sender_echo_ms": sender_echo.summary(),
    }


def per_worker_snapshots(scenario: Scenario, through_json: bool = False,
                         clock_ahead: tuple[float, ...] = ()) -> list[dict]:
    snapshots = []
    for worker in range(scenario.workers):
        ledger = FanoutLedger()
        feed(ledger, scenario, worker, clock_ahead)
        snapshot = ledger.snapshot()
        snapshots.append(json.loads(json.dumps(snapshot)) if through_json else snapshot)
    return snapshots


def per_worker_report(scenario: Scenario, settle_s: float = SETTLE,
                      through_json: bool = False,
                      sent_between: tuple[float, float] | None = None) -> FanoutReport:
    return FanoutLedger.merge(per_worker_snapshots(scenario, through_json),
                              settle_s=settle_s, sent_between=sent_between)


@given(scenarios())
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_merge_agrees_with_the_reference(scenario: Scenario) -> None:
    report = per_worker_report(scenario, through_json=True)
    assert report.to_dict() == reference(scenario, SETTLE)
    assert (report.delivery_ratio == 1.0) == (report.lost == 0)
    assert report.deliveries_received <= report.deliveries_expected


@given(scenarios())
@settings(max_examples=75, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_workers_merged_equal_one_ledger_holding_everything(scenario: Scenario) -> None:
    one = FanoutLedger()
    feed(one, scenario, None)
    whole = FanoutLedger.merge([one.snapshot()], settle_s=SETTLE)
    assert per_worker_report(scenario).to_dict() == whole.to_dict()


# Half-second steps, so window edges fall on send times (whole or half seconds) as well
# as between them; an end at or before the start is an empty window.
windows = st.tuples(st.integers(-2, 34), st.integers(-2, 34)).map(
    lambda ends: (ends[0] / 2, ends[1] / 2))
WHOLE_RUN_ONLY = ("duplicated", "out_of_order", "sender_echo_ms")


@given(scenarios(), windows)
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_a_window_agrees_with_the_reference_restricted_to_its_sends(
        scenario: Scenario, window: tuple[float, float]) -> None:
    report = per_worker_report(scenario, through_json=True, sent_between=window).to_dict()
    assert (report["duplicated"], report["out_of_order"]) == (0, 0)
    assert report["sender_echo_ms"]["count"] == 0
    brute_force = reference(scenario, SETTLE, sent_between=window)
    for key in WHOLE_RUN_ONLY:
        del report[key], brute_force[key]
    assert report == brute_force


# -- ledger: workers' clocks moved onto the reference ----------------------------------------

# Clocks ahead by multiples of 1/64 s (up to a second either way): the scenarios' times
# shifted and shifted back stay exact in binary, so the merge must agree to the bit.
clocks_ahead = st.lists(st.integers(-64, 64).map(lambda k: k / 64), min_size=3, max_size=3)


@given(scenarios(), clocks_ahead)
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_skewed_workers_moved_by_their_true_offsets_give_the_true_report(
        scenario: Scenario, ahead: list[float]) -> None:
    snapshots = per_worker_snapshots(scenario, through_json=True, clock_ahead=tuple(ahead))
    moved = onto_reference_clock(snapshots, [lambda _t, a=a: -a for a in ahead])
    assert FanoutLedger.merge(moved, settle_s=SETTLE).to_dict() == reference(scenario, SETTLE)


@given(scenarios(), clocks_ahead, st.lists(st.tuples(st.floats(0, 0.05), st.floats(-1, 1)),
                                           min_size=3, max_size=3))
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_a_latency_moved_by_estimates_is_within_the_runs_latency_uncertainty(
        scenario: Scenario, ahead: list[float],
        estimates: list[tuple[float, float]]) -> None:
    """Each estimate errs by some fraction of its uncertainty; every first receipt's
    delay, moved, is then within the summary's latency uncertainty of the true one."""
    clocks = [ClockOffsets([OffsetEstimate(0.0, -a + fraction * uncertainty, uncertainty)])
              for a, (uncertainty, fraction) in zip(ahead, estimates, strict=True)
              ][:scenario.workers]
    moved = onto_reference_clock(per_worker_snapshots(scenario, clock_ahead=tuple(ahead)),
                                 [clock.offset_at for clock in clocks])
    bound_s = latency_uncertainty_ms(clocks) / 1000 + 1e-6  # delays are kept to the µs
    for true, skewed in zip(per_worker_snapshots(scenario), moved, strict=True):
        for message_id, (_connections, delays) in true["receipts"].items():
            for delay, moved_delay in zip(delays, skewed["receipts"][message_id][1],
                                          strict=True):
                assert abs(moved_delay - delay) <= bound_s


# -- ledger: one example per rule ----------------------------------------------------------


def chat(message_id: str, sender: str = "alice", seq: int = 0, sent_at: float = 10.0,
         intended_at: float | None = None) -> ChatPayload:
    return ChatPayload(RUN, message_id, sender, seq,
                       sent_at if intended_at is None else intended_at, sent_at)


def report_of(ledger: FanoutLedger, settle_s: float = SETTLE) -> FanoutReport:
    return FanoutLedger.merge([ledger.snapshot()], settle_s=settle_s)


def test_a_connection_opened_after_the_send_is_not_expected() -> None:
    ledger = FanoutLedger()
    ledger.connection_opened("early", 0.0)
    ledger.connection_opened("at-send", 10.0)  # at or before sent_at: expected
    ledger.connection_opened("late", 10.5)
    message = chat("m1")
    ledger.message_sent(message)
    ledger.received("early", message, 10.1)
    ledger.received("at-send", message, 10.2)
    ledger.received("late", message, 10.6)
    report = report_of(ledger)
    assert (report.deliveries_expected, report.deliveries_received) == (2, 2)
    assert (report.lost, report.unexpected) == (0, 1)
    assert report.delivery_ratio == 1.0
    assert report.fanout.count == 3  # every first receipt is a real delivery latency
    assert report.last_recipient.count == 1
    assert report.last_recipient.max == pytest.approx(200, rel=1e-3)


def test_a_connection_closing_within_settle_is_excluded() -> None:
    ledger = FanoutLedger()
    for key in ("stays", "leaves-soon", "leaves-quietly", "leaves-at-deadline", "gone-before"):
        ledger.connection_opened(key, 0.0)
    ledger.connection_closed("gone-before", 9.0)
    ledger.connection_closed("leaves-soon", 11.0)
    ledger.connection_closed("leaves-quietly", 10.0)
    ledger.connection_closed("leaves-at-deadline", 10.0 + SETTLE)  # not before: expected
    message = chat("m1")
    ledger.message_sent(message)
    ledger.received("stays", message, 10.1)
    ledger.received("leaves-soon", message, 10.2)  # neither expected nor unexpected
    ledger.received("gone-before", message, 10.3)  # closed before the send: unexpected
    report = report_of(ledger)
    assert report.deliveries_expected == 2  # stays, leaves-at-deadline
    assert report.deliveries_received == 1
    assert (report.lost, report.unexpected) == (1, 1)
    assert report.delivery_ratio == 0.5
    assert report.last_recipient.count == 0  # not every expected recipient got it


def test_a_duplicate_is_counted_once_and_not_measured_twice() -> None:
    ledger = FanoutLedger()
    ledger.connection_opened("bob/1", 0.0)
    message = chat("m1")
    ledger.message_sent(message)
    assert ledger.received("bob/1", message, 10.05) == pytest.approx(50)
    assert ledger.received("bob/1", message, 10.5) == pytest.approx(500)
    assert ledger.received("bob/1", message, 10.7) == pytest.approx(700)
    report = report_of(ledger)
    assert (report.deliveries_received, report.duplicated, report.lost) == (1, 2, 0)
    assert report.fanout.count == 1
    assert report.fanout.max == pytest.approx(50, rel=1e-3)


def test_an_out_of_order_pair() -> None:
    ledger = FanoutLedger()
    ledger.connection_opened("bob/1", 0.0)
    ledger.connection_opened("carol/1", 0.0)
    first, second, third = (chat(f"m{n}", seq=n, sent_at=10.0 + n) for n in range(3))
    other = chat("x0", sender="dave", seq=0, sent_at=10.5)
    for message in (first, second, third, other):
        ledger.message_sent(message)
    ledger.received("bob/1", third, 13.0)
    ledger.received("bob/1", other, 13.1)  # another sender: no order relation
    ledger.received("bob/1", first, 13.2)  # after seq 2: out of order
    ledger.received("bob/1", second, 13.3)  # after seq 2: out of order
    ledger.received("bob/1", first, 13.4)  # a duplicate, not reordering again
    for message in (first, second, third, other):  # in order on another connection
        ledger.received("carol/1", message, 14.0)
    report = report_of(ledger)
    assert (report.out_of_order, report.duplicated, report.lost) == (2, 1, 0)


def test_the_sender_echo_is_its_own_histogram() -> None:
    ledger = FanoutLedger()
    ledger.connection_opened("alice/1", 0.0)
    ledger.connection_opened("bob/1", 0.0)
    message = chat("m1", sent_at=10.2, intended_at=10.0)  # sent late: counted from intended
    ledger.message_sent(message)
    ledger.received("alice/1", message, 10.3, own=True)
    ledger.received("bob/1", message, 10.4)
    report = report_of(ledger)
    assert report.sender_echo.count == 1
    assert report.sender_echo.max == pytest.approx(300, rel=1e-3)
    assert report.fanout.count == 2
    assert report.last_recipient.max == pytest.approx(400, rel=1e-3)


def test_a_receipt_of_a_message_nobody_sent_is_unexpected() -> None:
    ledger = FanoutLedger()
    ledger.connection_opened("bob/1", 0.0)
    ledger.received("bob/1", chat("ghost"), 10.1)
    report = report_of(ledger)
    assert (report.messages_sent, report.deliveries_expected, report.unexpected) == (0, 0, 1)
    assert report.delivery_ratio == 1.0


def test_a_reopened_key_is_a_new_connection() -> None:
    ledger = FanoutLedger()
    before, after = chat("m1", sent_at=1.0), chat("m2", seq=1, sent_at=21.0)
    ledger.message_sent(before)
    ledger.message_sent(after)
    ledger.connection_opened("bob", 0.0)
    ledger.received("bob", before, 1.1)
    ledger.connection_closed("bob", 5.0)
    ledger.connection_opened("bob", 20.0)
    ledger.received("bob", before, 20.1)  # on the new connection, opened after m1: unexpected
    ledger.received("bob", after, 21.1)
    report = report_of(ledger)
    assert (report.deliveries_expected, report.deliveries_received, report.lost) == (2, 2, 0)
    assert (report.unexpected, report.duplicated) == (1, 0)


def test_merging_nothing() -> None:
    report = FanoutLedger.merge([])
    assert report.to_dict()["delivery_ratio"] == 1.0
    assert report.to_dict()["fanout_ms"]["count"] == 0
    with pytest.raises(ValueError):
        FanoutLedger.merge([{"format": "something else"}])
