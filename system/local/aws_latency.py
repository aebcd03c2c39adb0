"""The AWS latency model (``--aws-latency``): the delays AWS adds that the local stack does not.

On the local stack every call is sub-millisecond; in AWS a ``post_to_connection`` from a
Lambda takes tens of ms, DynamoDB a few, and Lambda adds invocation overhead, cold starts
and the asynchronous-invoke queue. With the model on, the stack's servers wait those
delays, so that a local run predicts what AWS does: a sequential broadcast to 1,000
recipients, ~1.3 s locally, no longer passes a 3 s Lambda timeout.

The figures live in ``aws_latency.toml`` (dated, each with its source). A delay is drawn
from a lognormal with the kind's median (p50) and 95th percentile, capped at
``CAP_FACTOR`` x p95 so that every delay is bounded. Pure: no I/O beyond reading the
table; the servers call ``wait`` where AWS would spend the time.
"""

from __future__ import annotations

import asyncio
import datetime
import math
import random
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_LATENCY_TABLE = Path(__file__).with_name("aws_latency.toml")

KINDS = (
    "post_to_connection",  # an @connections call, as the Lambda making it sees it
    "dynamodb_read",  # GetItem, BatchGetItem, Query, Scan, TransactGetItems
    "dynamodb_write",  # every other DynamoDB operation
    "lambda_warm_invoke",  # added to the start of every invocation on a warm environment
    "lambda_cold_start",  # added when a new environment initialises
    "lambda_async_delay",  # from an Event invoke being accepted to the invocation starting
    "lambda_invoke_api",  # the Invoke API call's own round trip, as its caller sees it
)
# The z-score of the 95th percentile of a standard normal.
_Z95 = 1.6448536269514722
# No delay exceeds this many times its kind's p95.
CAP_FACTOR = 4.0


class LatencyTableError(ValueError):
    """A latency table that cannot be used; the message names the file and what to fix."""


@dataclass(frozen=True)
class LatencyEntry:
    p50_ms: float
    p95_ms: float
    source: str

    @property
    def cap_ms(self) -> float:
        return CAP_FACTOR * self.p95_ms

    def sample_ms(self, rng: random.Random) -> float:
        """One delay: lognormal with median p50 and 95th percentile p95, at most the cap."""
        if self.p50_ms <= 0:
            return 0.0
        sigma = math.log(self.p95_ms / self.p50_ms) / _Z95
        return min(rng.lognormvariate(math.log(self.p50_ms), sigma), self.cap_ms)


@dataclass(frozen=True)
class LatencyTable:
    date: str
    entries: dict[str, LatencyEntry] = field(default_factory=dict)


def load_latency_table(path: Path = DEFAULT_LATENCY_TABLE) -> LatencyTable:
    """Read and check a latency table: a top-level ``date``, and for every kind in
    ``KINDS`` a table with ``p50_ms`` <= ``p95_ms`` and a ``source``."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        reason = getattr(error, "strerror", None) or error
        raise LatencyTableError(f"{path}: cannot read the AWS latency table ({reason}); "
                                f"give a readable TOML file") from None
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise LatencyTableError(f"{path}: not TOML ({error}); fix its syntax") from None
    return LatencyTable(date=_date(path, document.get("date")), entries=_entries(path, document))


def _date(path: Path, value: object) -> str:
    text = value.isoformat() if isinstance(value, datetime.date) else value
    try:
        return datetime.date.fromisoformat(text).isoformat()
    except (TypeError, ValueError):
        raise LatencyTableError(f'{path}: needs a top-level date = "YYYY-MM-DD", the day its '
                                f"figures were chosen") from None


def _entries(path: Path, document: dict) -> dict[str, LatencyEntry]:
    unknown = sorted(k for k, v in document.items() if isinstance(v, dict) and k not in KINDS)
    if unknown:
        raise LatencyTableError(f"{path}: unknown kinds {unknown}; the kinds are {list(KINDS)}")
    entries = {}
    for kind in KINDS:
        section = document.get(kind)
        if not isinstance(section, dict):
            raise LatencyTableError(f"{path}: no [{kind}] table; add one with p50_ms, p95_ms "
                                    f"and source")
        p50, p95, source = (section.get(k) for k in ("p50_ms", "p95_ms", "source"))
        if not (_is_ms(p50) and _is_ms(p95)):
            raise LatencyTableError(f"{path}: [{kind}] needs p50_ms and p95_ms as milliseconds "
                                    f"(numbers >= 0), got {p50!r} and {p95!r}")
        if p95 < p50:
            raise LatencyTableError(f"{path}: [{kind}] p95_ms {p95} is below p50_ms {p50}; "
                                    f"make p95_ms at least p50_ms")
        if p50 == 0 < p95:
            raise LatencyTableError(f"{path}: [{kind}] p50_ms is 0 but p95_ms is {p95}; give a "
                                    f"median above 0, or both 0 for no delay")
        if not isinstance(source, str) or not source.strip():
            raise LatencyTableError(f"{path}: [{kind}] needs a source: where its figures come "
                                    f"from and what was measured")
        entries[kind] = LatencyEntry(float(p50), float(p95), source)
    return entries


def _is_ms(value: object) -> bool:
    return (isinstance(value, int | float) and not isinstance(value, bool)
            and math.isfinite(value) and value >= 0)


class AwsLatency:
    """The delays AWS would add, drawn from a ``LatencyTable``; none without one (off)."""

    def __init__(self, table: LatencyTable | None, rng: random.Random | None = None) -> None:
        self.table = table
        self._rng = rng if rng is not None else random.Random()

    @classmethod
    def off(cls) -> AwsLatency:
        return cls(None)

    @property
    def enabled(self) -> bool:
        return self.table is not None

    def seconds(self, kind: str) -> float:
        """A delay for ``kind``, in seconds: 0.0 with the model off."""
        if kind not in KINDS:
            raise KeyError(f"unknown AWS latency kind {kind!r}; the kinds are {list(KINDS)}")
        if self.table is None:
            return 0.0
        entry = self.table.entries.get(kind)
        if entry is None:
            raise KeyError(f"the AWS latency table of {self.table.date} has no {kind!r}")
        return entry.sample_ms(self._rng) / 1000

    async def wait(self, kind: str) -> None:
        """Wait as long as AWS would spend on ``kind`` (not at all with the model off)."""
        delay = self.seconds(kind)
        if delay > 0:
            await asyncio.sleep(delay)

    def describe(self) -> str:
        """One line for the stack's startup print."""
        if self.table is None:
            return "AWS latency model: off"
        kinds = ", ".join(f"{kind} p50 {entry.p50_ms:g} ms"
                          for kind, entry in self.table.entries.items())
        return f"AWS latency model of {self.table.date}: {kinds}"


# The model off: the default of every server that takes one.
AWS_LATENCY_OFF = AwsLatency.off()
