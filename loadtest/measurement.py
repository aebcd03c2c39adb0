"""The fan-out measurement core: payloads, HDR latency histograms, and the delivery ledger.

Pure bookkeeping (stdlib and HdrHistogram only, no sockets, no Locust, no gevent), so it
can be property-tested on its own and so every Locust process (workers and master) can
run the same code. The principles it follows:

* Open schedule. Latency is measured from the time the schedule *intended* a message to
  leave, not from when it actually left, so a slow system (or a lagging generator) cannot
  hide its slowness by sending less (coordinated omission).
* Every chat message carries its own run id, message id, sender, sequence number and
  intended/actual send times, so receivers need no shared state to measure it.
* Latencies go into HDR histograms that are merged across workers, never averaged:
  percentiles of averages mean nothing.
* The sender's own receipt of its broadcast is measured on one clock, so it is free of
  clock skew between machines. A latency between two processes (two machines) subtracts
  one clock from another: ``onto_reference_clock`` moves each process's times onto the
  master's with that process's estimated offset (``loadtest/clock.py``) before the merge,
  so it is right to within the two estimates' uncertainty.
"""

from __future__ import annotations

import json
import math
from bisect import bisect_left, insort
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from hdrh.histogram import HdrHistogram

__all__ = [
    "ChatPayload",
    "FanoutLedger",
    "FanoutReport",
    "LatencyHistogram",
    "merge_histograms",
    "onto_reference_clock",
]

# -- payload -------------------------------------------------------------------------------

_PAYLOAD_KEY = "lt"
_PAYLOAD_PREFIX = '{"lt":'


def _to_the_microsecond(seconds: float) -> float:
    """``seconds`` rounded to the microsecond (round(x, 6) costs ten times as much)."""
    return round(seconds * 1_000_000) / 1_000_000


def _is_time(value: object) -> bool:
    """A JSON number that can be an epoch time (bool is an int in Python: reject it)."""
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value))


@dataclass(frozen=True, slots=True)
class ChatPayload:
    """What one chat message carries, so any receiver can measure it without shared state.

    ``sender`` is the sending *user's* key (a user may reconnect, so it is not a
    connection key); ``seq`` counts that user's messages from 0 so receivers can spot
    reordering. ``intended_at`` is when the open schedule wanted the message sent and
    ``sent_at`` when it actually was (epoch seconds): latency counts from the former so
    that lateness of the generator or the system is never forgiven.
    """

    run_id: str
    message_id: str
    sender: str
    seq: int
    intended_at: float
    sent_at: float

    def __post_init__(self) -> None:
        # Validate here so encode() can never produce a text that decode() would reject.
        if not isinstance(self.seq, int) or isinstance(self.seq, bool) or self.seq < 0:
            raise ValueError(f"seq must be a non-negative int, not {self.seq!r}")
        if not (_is_time(self.intended_at) and _is_time(self.sent_at)):
            raise ValueError("intended_at and sent_at must be finite numbers")

    def encode(self) -> str:
        """The chat text: compact JSON, ASCII only (so no transport can mangle it),
        times rounded to the microsecond (more digits would only lengthen the frame)."""
        body = [self.run_id, self.message_id, self.sender, self.seq,
                round(float(self.intended_at), 6), round(float(self.sent_at), 6)]
        return json.dumps({_PAYLOAD_KEY: body}, separators=(",", ":"), allow_nan=False)

    @staticmethod
    def decode(text: str, run_id: str) -> ChatPayload | None:
        """The payload in ``text`` if it is one of ours from run ``run_id``, else None.

        Receivers see every chat text in the room (other runs, humans, other tools), so
        this must never raise, whatever arrives; a cheap prefix test skips parsing texts
        that cannot be ours.
        """
        if not isinstance(text, str) or not text.startswith(_PAYLOAD_PREFIX):
            return None
        try:
            document = orjson.loads(text)  # several times cheaper than json: every receipt
        except orjson.JSONDecodeError:  # not JSON, too deep, or an int beyond 64 bits
            return None
        if not isinstance(document, dict):
            return None
        body = document.get(_PAYLOAD_KEY)
        if not isinstance(body, list) or len(body) != 6:
            return None
        run, message_id, sender, seq, intended_at, sent_at = body
        if run != run_id or not isinstance(message_id, str) or not isinstance(sender, str):
            return None
        try:  # the constructor checks seq and the times
            return ChatPayload(run, message_id, sender, seq, intended_at, sent_at)
        except ValueError:
            return None


# -- histograms ----------------------------------------------------------------------------

_LOWEST_US = 1
_HIGHEST_US = 10 * 60 * 1_000_000  # ten minutes: anything later is a failure, not a latency
_SIGNIFICANT_DIGITS = 3


class LatencyHistogram:
    """Latencies in milliseconds, held as integer microseconds in an HDR histogram.

    HDR histograms keep 3 significant digits over the whole range in fixed memory and add
    exactly, which is what merging across workers needs. Values the histogram cannot hold
    are clamped rather than dropped, so counts stay honest: above ten minutes to the
    maximum (counted in ``over_range``), below zero (clock skew between machines) to zero
    (counted in ``negative``). Those two counters are not part of the HDR encoding
    (``encode`` stays a plain HDR histoblob that other HDR tools read);
    ``FanoutLedger.snapshot`` ships them alongside.
    """

    __slots__ = ("_hdr", "negative", "over_range")

    def __init__(self) -> None:
        self._hdr = HdrHistogram(_LOWEST_US, _HIGHEST_US, _SIGNIFICANT_DIGITS)
        self.over_range = 0
        self.negative = 0

    def record(self, ms: float) -> None:
        """Record one latency in milliseconds (clamped into range, see the class doc)."""
        if 0 <= ms <= _HIGHEST_US / 1000:  # nearly every one (a NaN is neither)
            self._hdr.record_value(round(ms * 1000))
            return
        if math.isnan(ms):
            raise ValueError("cannot record a NaN latency")
        if ms > _HIGHEST_US / 1000:
            self.over_range += 1
            us = _HIGHEST_US
        else:
            self.negative += 1
            us = 0
        self._hdr.record_value(us)

    def merge(self, other: LatencyHistogram) -> None:
        """Add ``other``'s counts to this histogram (exact: bucket counts add)."""
        self._hdr.add(other._hdr)
        self.over_range += other.over_range
        self.negative += other.negative

    def encode(self) -> str:
        """HDR's compressed, base64 V2 encoding: small enough to ship from workers."""
        return self._hdr.encode().decode("ascii")

    @staticmethod
    def decode(text: str) -> LatencyHistogram:
        """The histogram ``encode`` produced; ValueError if ``text`` is not one.

        ``over_range``/``negative`` start at 0: they are not part of the encoding.
        """
        histogram = LatencyHistogram()
        try:
            histogram._hdr.add(HdrHistogram.decode(text))
        except Exception as error:  # base64, zlib, cookie, size errors: one clear contract
            raise ValueError(f"not an encoded HDR histogram: {error}") from error
        return histogram

    @property
    def count(self) -> int:
        """How many latencies were recorded."""
        return self._hdr.get_total_count()

    def percentile(self, p: float) -> float:
        """The latency (ms) at percentile ``p`` in [0, 100]; 0.0 when empty."""
        if not 0 <= p <= 100:
            raise ValueError(f"percentile must be in [0, 100], not {p}")
        if self.count == 0:
            return 0.0
        return self._hdr.get_value_at_percentile(p) / 1000

    @property
    def max(self) -> float:
        """The largest latency (ms), to HDR precision (its bucket's highest value)."""
        return self._hdr.get_max_value() / 1000

    def summary(self) -> dict[str, float | int]:
        """``{"count", "p50", "p95", "p99", "max"}`` in ms to 3 decimals (zeros when empty)."""
        count = self.count
        if count == 0:
            return {"count": 0, "p50": 0.0, "p95": 0.0, "p99": 0.0, "max": 0.0}
        values = self._hdr.get_percentile_to_value_dict([50.0, 95.0, 99.0])
        return {
            "count": count,
            "p50": round(values[50.0] / 1000, 3),
            "p95": round(values[95.0] / 1000, 3),
            "p99": round(values[99.0] / 1000, 3),
            "max": round(self.max, 3),
        }

    def __repr__(self) -> str:
        return f"LatencyHistogram({self.summary()})"

    # The snapshot form: the HDR text plus the clamping counters it cannot carry.
    def _to_snapshot(self) -> dict[str, Any]:
        return {"hdr": self.encode(), "over_range": self.over_range, "negative": self.negative}

    @staticmethod
    def _from_snapshot(data: dict[str, Any]) -> LatencyHistogram:
        histogram = LatencyHistogram.decode(data["hdr"])
        histogram.over_range = int(data.get("over_range", 0))
        histogram.negative = int(data.get("negative", 0))
        return histogram


def merge_histograms(encoded: list[str]) -> LatencyHistogram:
    """One histogram holding every encoded histogram's counts (the master's live merge)."""
    merged = LatencyHistogram()
    for text in encoded:
        merged.merge(LatencyHistogram.decode(text))
    return merged


# -- the ledger ----------------------------------------------------------------------------

SNAPSHOT_FORMAT = "chat-harness/fanout-ledger/1"


@dataclass
class FanoutReport:
    """The run's fan-out outcome, merged over every worker.

    ``fanout`` holds one latency per (message, connection) first receipt, on any
    connection: a delivery outside the expected set is still a real delivery latency.
    ``last_recipient`` holds, per message, the latest first receipt among its expected
    recipients minus its intended time, and only for messages that reached *every*
    expected recipient (and had at least one): for a message with losses the true
    last-recipient time is unknown (infinite), so it is counted in ``lost`` instead of
    being reported as a misleadingly early latency.
    """

    messages_sent: int
    deliveries_expected: int
    deliveries_received: int
    lost: int
    duplicated: int
    out_of_order: int
    unexpected: int
    delivery_ratio: float
    fanout: LatencyHistogram
    last_recipient: LatencyHistogram
    sender_echo: LatencyHistogram

    def to_dict(self) -> dict[str, Any]:
        """The summary.json shape (plus ``unexpected``, so it is not silently dropped)."""
        return {
            "messages_sent": self.messages_sent,
            "deliveries_expected": self.deliveries_expected,
            "deliveries_received": self.deliveries_received,
            "lost": self.lost,
            "duplicated": self.duplicated,
            "out_of_order": self.out_of_order,
            "unexpected": self.unexpected,
            "delivery_ratio": self.delivery_ratio,
            "fanout_ms": self.fanout.summary(),
            "last_recipient_ms": self.last_recipient.summary(),
            "sender_echo_ms": self.sender_echo.summary(),
        }


class FanoutLedger:
    """One Locust process's record of its connections, sends and receipts.

    Everything that can be decided locally is decided at receipt time, because a
    connection lives in exactly one process: duplicates (a second receipt of a message on
    one connection), reordering (on one connection, a lower ``seq`` from a sender after a
    higher one), and the latency histograms. What needs every process (who was open when
    a message was sent, so who should have got it) waits for ``merge``, which the master
    runs over every worker's ``snapshot``.

    Connection keys name connections, not users; a key opened again after closing starts
    a new connection (a new open interval), and receipts go to a key's latest one. Keys
    must be unique across workers only in the sense that each worker's snapshot is kept
    apart: merging never matches connections by key.
    """

    def __init__(self) -> None:
        # Connection intervals, by index: the key, opened at, closed at (None: still open).
        self._keys: list[str] = []
        self._opened: list[float] = []
        self._closed: list[float | None] = []
        self._current: dict[str, int] = {}
        # Per connection index: each sender's highest seq seen so far.
        self._highest_seq: list[dict[str, int]] = []
        # Messages this process sent: id -> (sender, seq, intended_at, sent_at).
        self._sent: dict[str, tuple[str, int, float, float]] = {}
        # First receipts: message id -> {connection index: seconds after intended_at}.
        self._receipts: dict[str, dict[int, float]] = {}
        self.duplicated = 0
        self.out_of_order = 0
        self.fanout = LatencyHistogram()
        self.sender_echo = LatencyHistogram()

    # -- recording -------------------------------------------------------------------------

    def connection_opened(self, connection: str, at: float) -> None:
        """A connection is open from ``at``; reopening a still-open key closes it first."""
        index = self._current.get(connection)
        if index is not None and self._closed[index] is None:
            self._closed[index] = at
        self._new_connection(connection, at)

    def connection_closed(self, connection: str, at: float) -> None:
        """A connection ended at ``at`` (the first close wins; unknown keys are ignored)."""
        index = self._current.get(connection)
        if index is not None and self._closed[index] is None:
            self._closed[index] = at

    def message_sent(self, payload: ChatPayload) -> None:
        """The sender's side: the message left at ``payload.sent_at`` (first record wins)."""
        if payload.message_id not in self._sent:
            self._sent[payload.message_id] = (payload.sender, payload.seq,
                                              payload.intended_at, payload.sent_at)

    def received(self, connection: str, payload: ChatPayload, at: float, *,
                 own: bool = False) -> float:
        """Record a receipt on ``connection`` at ``at``; return its latency in ms.

        Latency counts from ``payload.intended_at`` (coordinated omission: a late send is
        the system's or the generator's lateness, and must show). Only the first receipt
        of a message on a connection goes into the histograms; later ones are counted as
        duplicates. ``own`` marks the sending user's own connection: those receipts also
        go into ``sender_echo``, whose two timestamps share one clock. A receipt on a key
        never opened registers a connection opened at ``at`` (so it is never expected for
        earlier messages) rather than being lost.
        """
        latency_ms = (at - payload.intended_at) * 1000
        index = self._current.get(connection)
        if index is None:
            index = self._new_connection(connection, at)
        firsts = self._receipts.get(payload.message_id)
        if firsts is None:
            firsts = self._receipts[payload.message_id] = {}
        elif index in firsts:
            self.duplicated += 1
            return latency_ms
        delay_s = _to_the_microsecond(at - payload.intended_at)
        firsts[index] = delay_s
        highest = self._highest_seq[index]
        seen = highest.get(payload.sender)
        if seen is None or payload.seq > seen:
            highest[payload.sender] = payload.seq
        elif payload.seq < seen:
            self.out_of_order += 1
        self.fanout.record(delay_s * 1000)
        if own:
            self.sender_echo.record(delay_s * 1000)
        return latency_ms

    def _new_connection(self, connection: str, at: float) -> int:
        index = len(self._keys)
        self._keys.append(connection)
        self._opened.append(at)
        self._closed.append(None)
        self._highest_seq.append({})
        self._current[connection] = index
        return index

    # -- shipping and merging --------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """Everything ``merge`` needs from this process, JSON- and msgpack-serialisable.

        Compact for ~10^6 receipts: receipts are grouped per message as two parallel lists
        (connection indices into ``connections``, seconds after intended_at to the µs).
        Take it after the process's connections are closed: a connection still open
        counts as open for ever, so its missing receipts of the last messages are losses.
        """
        return {
            "format": SNAPSHOT_FORMAT,
            "connections": [[key, opened, closed] for key, opened, closed
                            in zip(self._keys, self._opened, self._closed, strict=True)],
            "sent": [[message_id, sender, seq, intended_at, sent_at]
                     for message_id, (sender, seq, intended_at, sent_at) in self._sent.items()],
            "receipts": {message_id: [list(firsts), list(firsts.values())]
                         for message_id, firsts in self._receipts.items()},
            "duplicated": self.duplicated,
            "out_of_order": self.out_of_order,
            "histograms": {"fanout": self.fanout._to_snapshot(),
                           "sender_echo": self.sender_echo._to_snapshot()},
        }

    @staticmethod
    def merge(snapshots: list[dict], *, settle_s: float = 5.0,
              sent_between: tuple[float, float] | None = None) -> FanoutReport:
        """Merge every process's snapshot into the run's report.

        A message's expected recipients are the connections, across all snapshots, opened
        at or before its ``sent_at`` and not closed before ``sent_at + settle_s``. One open
        at the send that closed within ``[sent_at, sent_at + settle_s)`` may or may not
        have been delivered to before it went, so it is neither expected (nor lost) nor
        unexpected. Any other receipt (on a connection opened after the send or closed
        before it, or of a message no snapshot recorded as sent) is ``unexpected``.
        Unexpected and duplicate receipts do not count towards ``deliveries_received``.

        With ``sent_between=(start, end)`` only messages sent in that window count (one
        step of a step run): their fan-out histogram is rebuilt from their receipts, and
        the sender-echo histogram, which receipts do not distinguish, stays empty.
        """
        if settle_s < 0:
            raise ValueError("settle_s must not be negative")
        sends = _ConnectionsAndSends.gather(snapshots, sent_between)
        expected = _expected_counts(sends.sent_at, sends.intervals, settle_s)
        whole_run = sent_between is None
        tally = _tally_receipts(snapshots, sends, settle_s, unsent_is_unexpected=whole_run)
        receipt_time = (_ReceiptTimeCounts.of_whole_run(snapshots) if whole_run
                        else _ReceiptTimeCounts.of_window(snapshots, sends.sent_at))
        return _assemble_report(len(sends.sent_at), expected, tally, receipt_time)


def onto_reference_clock(snapshots: list[dict],
                         offsets_at: Sequence[Callable[[float], float]]) -> list[dict]:
    """The snapshots with their times moved onto one reference clock (the master's), for
    ``FanoutLedger.merge``: ``offsets_at[i](t)`` is what to add to reading ``t`` of
    snapshot i's process's clock (``ClockOffsets.offset_at``).

    Connection and send times move by their own process's offset. A first receipt's delay
    (the receiver's clock at receipt less the sender's at the intended time) moves by the
    receiver's offset at the receipt less the sender's at the intended time, where the two
    are different processes; on the sender's own process both readings are one clock, so
    the delay stays as measured and gains no estimation error. A receipt of a message no
    snapshot sent has no known sender clock and stays as measured too. The fan-out
    histogram is rebuilt from the moved delays (the same values the ledger recorded, moved);
    the sender echo, one clock, stays.
    """
    senders: dict[str, tuple[int, float]] = {}  # message id -> (sending snapshot, intended_at)
    for index, snapshot in enumerate(snapshots):
        for message_id, _sender, _seq, intended_at, _sent in snapshot["sent"]:
            senders.setdefault(message_id, (index, intended_at))
    moved = []
    for index, snapshot in enumerate(snapshots):
        offset_at = offsets_at[index]
        receipts: dict[str, list[list]] = {}
        fanout = LatencyHistogram()
        for message_id, (connections, delays) in snapshot["receipts"].items():
            sending, intended_at = senders.get(message_id, (index, 0.0))  # unknown: stays
            if sending != index:
                sender_offset = offsets_at[sending](intended_at)
                delays = [_to_the_microsecond(delay + offset_at(intended_at + delay) - sender_offset)
                          for delay in delays]
            receipts[message_id] = [connections, delays]
            for delay in delays:
                fanout.record(delay * 1000)
        moved.append({
            **snapshot,
            "connections": [[key, opened + offset_at(opened),
                             None if closed is None else closed + offset_at(closed)]
                            for key, opened, closed in snapshot["connections"]],
            "sent": [[message_id, sender, seq, intended_at + offset_at(intended_at),
                      sent + offset_at(sent)]
                     for message_id, sender, seq, intended_at, sent in snapshot["sent"]],
            "receipts": receipts,
            "histograms": {**snapshot["histograms"], "fanout": fanout._to_snapshot()},
        })
    return moved


@dataclass
class _ConnectionsAndSends:
    """Every snapshot's connections and the messages sent in the window, before any
    receipt is looked at.

    A receipt names its connection by its index within its own snapshot, so each
    snapshot's connections are laid end to end in ``intervals`` and ``offsets`` says
    where each snapshot's connections begin.
    """

    intervals: list[tuple[float, float]]  # (opened, closed or +inf)
    offsets: list[int]
    sent_at: dict[str, float]  # message id -> when it left (the first record wins)

    @staticmethod
    def gather(snapshots: list[dict],
               sent_between: tuple[float, float] | None) -> _ConnectionsAndSends:
        sends = _ConnectionsAndSends([], [], {})
        for snapshot in snapshots:
            if snapshot.get("format") != SNAPSHOT_FORMAT:
                raise ValueError(f"not a fan-out ledger snapshot: {snapshot.get('format')!r}")
            sends.offsets.append(len(sends.intervals))
            for _key, opened, closed in snapshot["connections"]:
                sends.intervals.append(
                    (float(opened), math.inf if closed is None else float(closed)))
            for message_id, _sender, _seq, _intended_at, sent in snapshot["sent"]:
                if sent_between is None or sent_between[0] <= sent < sent_between[1]:
                    sends.sent_at.setdefault(message_id, float(sent))
        return sends


@dataclass
class _ReceiptTimeCounts:
    """What the processes decided at receipt time: duplicates, reordering, histograms."""

    duplicated: int = 0
    out_of_order: int = 0
    fanout: LatencyHistogram = field(default_factory=LatencyHistogram)
    sender_echo: LatencyHistogram = field(default_factory=LatencyHistogram)

    @staticmethod
    def of_whole_run(snapshots: list[dict]) -> _ReceiptTimeCounts:
        """The processes' own counts and histograms, added up."""
        counts = _ReceiptTimeCounts()
        for snapshot in snapshots:
            counts.duplicated += snapshot["duplicated"]
            counts.out_of_order += snapshot["out_of_order"]
            histograms = snapshot["histograms"]
            counts.fanout.merge(LatencyHistogram._from_snapshot(histograms["fanout"]))
            counts.sender_echo.merge(LatencyHistogram._from_snapshot(histograms["sender_echo"]))
        return counts

    @staticmethod
    def of_window(snapshots: list[dict], sent_at: dict[str, float]) -> _ReceiptTimeCounts:
        """Only the fan-out histogram, rebuilt from the window's messages' first receipts:
        the snapshots keep duplicates, reordering and sender echoes as run totals only."""
        counts = _ReceiptTimeCounts()
        for snapshot in snapshots:
            for message_id, (_connections, delays) in snapshot["receipts"].items():
                if message_id in sent_at:
                    for delay in delays:
                        counts.fanout.record(delay * 1000)
        return counts


@dataclass
class _ReceiptTally:
    """First receipts sorted by the expected-recipient rule (see ``FanoutLedger.merge``)."""

    received: dict[str, int]  # message id -> first receipts on expected recipients
    latest: dict[str, float]  # message id -> the latest of those, seconds after intended_at
    unexpected: int


def _tally_receipts(snapshots: list[dict], sends: _ConnectionsAndSends, settle_s: float, *,
                    unsent_is_unexpected: bool) -> _ReceiptTally:
    """Receipts of messages outside ``sends.sent_at`` count as unexpected only if
    ``unsent_is_unexpected``: in a window, they may have been sent in another step."""
    tally = _ReceiptTally({}, {}, 0)
    for snapshot, offset in zip(snapshots, sends.offsets, strict=True):
        for message_id, (connections, delays) in snapshot["receipts"].items():
            sent = sends.sent_at.get(message_id)
            if sent is None:
                if unsent_is_unexpected:
                    tally.unexpected += len(connections)
                continue
            deadline = sent + settle_s
            count, last = 0, -math.inf
            for index, delay in zip(connections, delays, strict=True):
                opened, closed = sends.intervals[offset + index]
                if opened > sent or closed < sent:
                    tally.unexpected += 1
                elif closed >= deadline:
                    count += 1
                    last = max(last, delay)
                # else: open at the send, closed within the settle window: not counted.
            if count:
                tally.received[message_id] = tally.received.get(message_id, 0) + count
                tally.latest[message_id] = max(tally.latest.get(message_id, -math.inf), last)
    return tally


def _last_recipient(expected: dict[str, int], tally: _ReceiptTally) -> LatencyHistogram:
    """Only messages that reached every one (and at least one) of their expected
    recipients: a loss makes the true last-recipient time unknown (see FanoutReport)."""
    histogram = LatencyHistogram()
    for message_id, wanted in expected.items():
        if wanted and tally.received.get(message_id, 0) == wanted:
            histogram.record(tally.latest[message_id] * 1000)
    return histogram


def _assemble_report(messages_sent: int, expected: dict[str, int], tally: _ReceiptTally,
                     receipt_time: _ReceiptTimeCounts) -> FanoutReport:
    deliveries_expected = sum(expected.values())
    deliveries_received = sum(tally.received.values())
    return FanoutReport(
        messages_sent=messages_sent,
        deliveries_expected=deliveries_expected,
        deliveries_received=deliveries_received,
        lost=deliveries_expected - deliveries_received,
        duplicated=receipt_time.duplicated,
        out_of_order=receipt_time.out_of_order,
        unexpected=tally.unexpected,
        delivery_ratio=(deliveries_received / deliveries_expected
                        if deliveries_expected else 1.0),
        fanout=receipt_time.fanout,
        last_recipient=_last_recipient(expected, tally),
        sender_echo=receipt_time.sender_echo,
    )


def _expected_counts(sent_at: dict[str, float], intervals: list[tuple[float, float]],
                     settle_s: float) -> dict[str, int]:
    """Per message, how many intervals have ``opened <= sent`` and ``closed >= sent + settle``.

    A sweep in send order instead of messages x connections: connections join a sorted
    list of close times as the sweep passes their open time, and a bisection counts those
    closing late enough. O((M + C) log C) apart from the insertions' memmove.
    """
    by_opening = sorted(intervals)
    closes: list[float] = []
    joined = 0
    counts: dict[str, int] = {}
    for message_id, sent in sorted(sent_at.items(), key=lambda item: item[1]):
        while joined < len(by_opening) and by_opening[joined][0] <= sent:
            insort(closes, by_opening[joined][1])
            joined += 1
        counts[message_id] = len(closes) - bisect_left(closes, sent + settle_s)
    return counts
