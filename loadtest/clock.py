"""Clock offsets between the load test's processes, NTP's way: values in, estimates out.

A per-recipient latency subtracts the sender's clock (the intended send time in the
payload) from the receiver's (the receipt); on two machines the clocks differ, and the
difference lands in the latency. So each worker probes the master, whose clock is the
reference, with round trips over Locust's own messages (``loadtest/clock_exchange.py``):
the worker sends at t0, the master receives at t1 and replies at t2, the worker receives
at t3. If the master's clock reads the worker's plus θ, and the delays out and back are
``d_out, d_back >= 0``, then ``t1 = t0 + θ + d_out`` and ``t3 = t2 − θ + d_back``, so

    offset     = ((t1 − t0) + (t2 − t3)) / 2 = θ + (d_out − d_back) / 2
    round trip = (t3 − t0) − (t2 − t1)       = d_out + d_back

and ``|offset − θ| <= round trip / 2`` however lopsided the delays: half the round trip
is the estimate's uncertainty. Of a round of probes the one with the smallest round trip
bounds θ tightest (NTP's clock filter keeps it for the same reason).

Pure arithmetic (stdlib only, no sockets, no Locust), so that the bound is
property-tested on its own and every process can read the estimates it is shipped.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = [
    "REFERENCE_CLOCK",
    "ClockOffsets",
    "ClockSample",
    "OffsetEstimate",
    "best_estimate",
    "latency_uncertainty_ms",
]


@dataclass(frozen=True, slots=True)
class ClockSample:
    """One probe's four readings (epoch s): ``sent`` and ``received`` on the worker's
    clock, ``master_received`` and ``master_replied`` on the master's."""

    sent: float
    master_received: float
    master_replied: float
    received: float

    @property
    def round_trip_s(self) -> float:
        """Time on the wire both ways: the round trip less the master's own time."""
        return (self.received - self.sent) - (self.master_replied - self.master_received)

    @property
    def offset_s(self) -> float:
        """What to add to the worker's clock to read the master's (NTP's sign)."""
        return ((self.master_received - self.sent) + (self.master_replied - self.received)) / 2


@dataclass(frozen=True, slots=True)
class OffsetEstimate:
    """The master's clock is the worker's plus ``offset_s``, give or take ``uncertainty_s``,
    around worker time ``at``."""

    at: float
    offset_s: float
    uncertainty_s: float


def best_estimate(samples: Iterable[ClockSample]) -> OffsetEstimate | None:
    """The estimate of the sample with the smallest round trip; None without one.

    A negative round trip cannot happen on steady clocks (a clock stepped during the
    probe does it), so such a sample says nothing and is skipped.
    """
    usable = [sample for sample in samples if sample.round_trip_s >= 0]
    if not usable:
        return None
    best = min(usable, key=lambda sample: sample.round_trip_s)
    return OffsetEstimate(at=(best.sent + best.received) / 2, offset_s=best.offset_s,
                          uncertainty_s=best.round_trip_s / 2)


class ClockOffsets:
    """One process's clock against the reference over a run: its estimates in time order.

    A reading is corrected with the estimate nearest to it in time, not with one offset
    for the whole run: a clock that drifts (tens of ppm unsynchronised: tens of ms an
    hour) or that NTP steps during a long run is followed window by window, and the
    correction is then off by that estimate's uncertainty plus what the clock drifts in
    half the time between two rounds (at 50 ppm, about 0.1 ms). The latest estimate alone
    would be simpler, and wrong for every reading made before a drift or a step. With no
    estimate at all (no probe came back) the offset is taken as 0 and the uncertainty is
    unknown (infinite).
    """

    __slots__ = ("_at", "estimates")

    def __init__(self, estimates: Iterable[OffsetEstimate]) -> None:
        self.estimates = tuple(sorted(estimates, key=lambda estimate: estimate.at))
        self._at = [estimate.at for estimate in self.estimates]

    def offset_at(self, t: float) -> float:
        """What to add to this process's reading ``t`` to read the reference clock."""
        if not self.estimates:
            return 0.0
        after = bisect_left(self._at, t)
        if after == 0:
            return self.estimates[0].offset_s
        if after == len(self._at) or t - self._at[after - 1] <= self._at[after] - t:
            return self.estimates[after - 1].offset_s
        return self.estimates[after].offset_s

    @property
    def uncertainty_s(self) -> float:
        """The largest uncertainty of the estimates: it bounds every correction made."""
        return max((estimate.uncertainty_s for estimate in self.estimates), default=math.inf)

    def since(self, t: float) -> ClockOffsets:
        """The estimates a run from ``t`` on uses: the last one made before ``t`` (it
        covers the run's start) and every later one."""
        first = max(0, bisect_left(self._at, t) - 1)
        return ClockOffsets(self.estimates[first:])

    def summary(self) -> dict[str, float | None]:
        """summary.json's figures: the latest offset and the uncertainty (null: unknown), ms."""
        return {"clock_offset_ms": round(self.estimates[-1].offset_s * 1000, 3)
                if self.estimates else None,
                "clock_uncertainty_ms": _milliseconds(self.uncertainty_s)}

    def to_snapshot(self) -> list[list[float]]:
        return [[estimate.at, estimate.offset_s, estimate.uncertainty_s]
                for estimate in self.estimates]

    @staticmethod
    def from_snapshot(rows: Sequence[Sequence[float]]) -> ClockOffsets:
        return ClockOffsets(OffsetEstimate(*map(float, row)) for row in rows)


# The reference's own clock: offset exactly 0 at any time.
REFERENCE_CLOCK = ClockOffsets([OffsetEstimate(at=0.0, offset_s=0.0, uncertainty_s=0.0)])


def latency_uncertainty_ms(clocks: Sequence[ClockOffsets]) -> float | None:
    """How far a corrected latency between two of these processes can be off (ms; None:
    unknown): the receiver's correction and the sender's each err by at most their
    uncertainty, so the worst pair's sum, the two largest; 0 for one process, whose
    latencies are on one clock and are not corrected at all."""
    largest = sorted((clock.uncertainty_s for clock in clocks), reverse=True)[:2]
    return _milliseconds(sum(largest) if len(largest) == 2 else 0.0)


def _milliseconds(seconds: float) -> float | None:
    return round(seconds * 1000, 3) if math.isfinite(seconds) else None
