"""The capacity governor: a table's provisioned RCU/WCU enforced per second, as DynamoDB does.

Pure state, consulted by the DynamoDB proxy. Each provisioned table has a read
and a write token bucket that fills at the provisioned units per second and
holds at most ``burst_s`` seconds of them (DynamoDB keeps up to 300 seconds of
unused capacity as burst credit; Developer Guide, "Burst capacity"). A request
is admitted while its bucket is not empty; what it consumed is charged after
the answer, so one large Scan page may take the bucket below zero, as DynamoDB
lets it, and the requests after it are throttled until the bucket refills.
A bucket starts with one second of capacity, no burst credit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from system.dynamodb_capacity import READ_OPERATIONS, WRITE_OPERATIONS
from system.provision import Capacity

DYNAMODB_BURST_SECONDS = 300.0
_PROVISIONED = re.compile(r"^([A-Za-z0-9_.-]{3,255})=(.+)$")


def parse_provisioned(text: str) -> tuple[str, Capacity]:
    """'MessageHistory=25/10' -> ('MessageHistory', Capacity(read=25, write=10))."""
    match = _PROVISIONED.match(text.strip())
    if match is None:
        raise ValueError(f"--provisioned must look like TABLE=RCU/WCU, e.g. "
                         f"MessageHistory=25/10, not {text!r}")
    return match[1], Capacity.parse(match[2])


@dataclass
class TokenBucket:
    rate: float
    burst_s: float
    tokens: float = field(init=False)
    updated: float | None = None

    def __post_init__(self) -> None:
        self.tokens = self.rate

    def _refill(self, now: float) -> None:
        if self.updated is not None:
            ceiling = self.rate * max(1.0, self.burst_s)
            self.tokens = min(ceiling, self.tokens + (now - self.updated) * self.rate)
        self.updated = now

    def admits(self, now: float) -> bool:
        self._refill(now)
        return self.tokens > 0

    def charge(self, units: float, now: float) -> None:
        self._refill(now)
        self.tokens -= units


@dataclass
class CapacityGovernor:
    """Per-table read and write buckets for the tables given a provisioned capacity."""

    provisioned: dict[str, Capacity]
    burst_s: float = DYNAMODB_BURST_SECONDS

    def __post_init__(self) -> None:
        self._buckets = {
            (table, kind): TokenBucket(units, self.burst_s)
            for table, capacity in self.provisioned.items()
            for kind, units in (("read", capacity.read), ("write", capacity.write))
        }

    def admits(self, operation: str, tables: list[str], now: float) -> bool:
        """False when any table's bucket for this kind of operation is empty."""
        if operation not in READ_OPERATIONS | WRITE_OPERATIONS:
            return True
        kind = "read" if operation in READ_OPERATIONS else "write"
        return all(self._buckets[(t, kind)].admits(now) for t in tables
                   if (t, kind) in self._buckets)

    def charge(self, table: str, read: float, write: float, now: float) -> None:
        for kind, units in (("read", read), ("write", write)):
            bucket = self._buckets.get((table, kind))
            if bucket is not None and units:
                bucket.charge(units, now)
