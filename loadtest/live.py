"""Fan-out figures while the run goes on, for Locust's web UI.

Workers ship what happened since their last report (connections opened and
closed, messages sent, first receipts with their delays); the master folds
it in. The live delivery ratio is over the messages sent at least the settle
window ago (the ones still in flight would read as lost), and counts a message's
expected recipients as the connections open when it was sent, so it can dip
briefly while connections come and go; the report at the end
(``FanoutLedger.merge``) is the exact one.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, field

from loadtest.measurement import LatencyHistogram


@dataclass
class FanoutDelta:
    """What one process saw since its previous report."""

    opened: list[float] = field(default_factory=list)
    closed: list[float] = field(default_factory=list)
    sent: list[tuple[str, float]] = field(default_factory=list)  # (message id, sent at)
    receipts: list[tuple[str, float]] = field(default_factory=list)  # (message id, delay s)

    def take(self) -> dict:
        """The delta as a message for the master; this one starts empty again."""
        data = {"opened": self.opened, "closed": self.closed, "sent": self.sent,
                "receipts": self.receipts}
        self.opened, self.closed, self.sent, self.receipts = [], [], [], []
        return data


class LiveFanout:
    """The master's running totals, from every process's deltas."""

    def __init__(self, settle_s: float) -> None:
        self.settle_s = settle_s
        self._sent_at: dict[str, float] = {}
        self._opened: list[float] = []
        self._closed: list[float] = []
        self._expected: dict[str, int] = {}
        self._received: dict[str, int] = {}
        self._latest: dict[str, float] = {}
        self._early: list[tuple[str, float]] = []  # receipts that came before their send
        self.per_recipient = LatencyHistogram()
        self.last_recipient = LatencyHistogram()

    def add(self, delta: dict) -> None:
        self._opened = sorted(self._opened + delta["opened"])
        self._closed = sorted(self._closed + delta["closed"])
        for message_id, sent_at in delta["sent"]:
            self._expected[message_id] = self.connected_at(sent_at)
            self._sent_at[message_id] = sent_at
        pending, self._early = self._early + [tuple(r) for r in delta["receipts"]], []
        for receipt in pending:
            self._receive(*receipt)

    def connected_at(self, at: float) -> int:
        return bisect_right(self._opened, at) - bisect_right(self._closed, at)

    def _receive(self, message_id: str, delay_s: float) -> None:
        expected = self._expected.get(message_id)
        if expected is None:  # its sender's report has not come in yet
            self._early.append((message_id, delay_s))
            return
        self.per_recipient.record(delay_s * 1000)
        count = self._received[message_id] = self._received.get(message_id, 0) + 1
        self._latest[message_id] = max(self._latest.get(message_id, delay_s), delay_s)
        if count == expected:
            self.last_recipient.record(self._latest.pop(message_id) * 1000)

    def rows(self, connected: int, now: float) -> list[dict]:
        """The table the web UI shows at ``now`` (epoch s)."""
        settled = [m for m, sent_at in self._sent_at.items() if sent_at <= now - self.settle_s]
        expected = sum(self._expected[m] for m in settled)
        received = sum(min(self._received.get(m, 0), self._expected[m]) for m in settled)
        rows = [
            {"figure": "connected users", "value": connected},
            {"figure": "messages sent", "value": len(self._expected)},
            {"figure": f"deliveries received / expected (sent over {self.settle_s:g} s ago)",
             "value": f"{received} / {expected}"},
            {"figure": "delivery ratio", "value": f"{received / expected:.4f}" if expected
             else "-"},
        ]
        for name, histogram in (("per-recipient", self.per_recipient),
                                ("last recipient", self.last_recipient)):
            s = histogram.summary()
            rows.append({"figure": f"{name} ms p50 / p95 / p99 / max",
                         "value": f"{s['p50']:.0f} / {s['p95']:.0f} / {s['p99']:.0f} / "
                                  f"{s['max']:.0f}  (n={s['count']})"})
        return rows
