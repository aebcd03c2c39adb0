"""Successful requests added to Locust's statistics in bulk, not one request event each.

One Locust request event per frame received cost about a sixth of a receiving process's
time. Here each success is kept as its time and response time; every second (a timer of
the event loop) and whenever ``flush`` is called, those of each row become one
StatsEntry merged into Locust's with ``StatsEntry.extend``, as a master merges its
workers' reports: the same counts, response-time buckets and requests per second as one
event each. Failures still go through Locust's request event, each with its error.
"""

from __future__ import annotations

from collections import Counter
from typing import ClassVar
from weakref import WeakKeyDictionary

import gevent
from locust.stats import RequestStats, StatsEntry, bucket_response_time

FLUSH_EVERY_S = 1.0


class RequestTally:
    """Requests waiting to be added to ``stats``: one tally per Locust environment."""

    _of: ClassVar[WeakKeyDictionary[RequestStats, RequestTally]] = WeakKeyDictionary()

    @classmethod
    def of(cls, stats: RequestStats) -> RequestTally:
        tally = cls._of.get(stats)
        if tally is None:
            tally = cls._of[stats] = cls(stats)
        return tally

    def __init__(self, stats: RequestStats) -> None:
        self.stats = stats
        # (name, type) -> (times, response times): floats only, which the GC never scans
        self._rows: dict[tuple[str, str], tuple[list[float], list[float]]] = {}
        # ref=False: the timer never keeps the process's event loop running.
        self._flushing = gevent.get_hub().loop.timer(FLUSH_EVERY_S, FLUSH_EVERY_S, ref=False)
        self._flushing.start(self.flush)

    def success(self, request_type: str, name: str, response_time_ms: float, at: float) -> None:
        """A successful request of row (``request_type``, ``name``) at ``at`` (epoch s)."""
        row = self._rows.get((name, request_type))
        if row is None:
            row = self._rows[(name, request_type)] = ([], [])
        row[0].append(at)
        row[1].append(response_time_ms)

    def flush(self) -> None:
        rows, self._rows = self._rows, {}
        for (name, request_type), (times, response_times) in rows.items():
            batch = StatsEntry(self.stats, name, request_type)
            batch.start_time = min(times)
            batch.last_request_timestamp = max(times)
            batch.num_requests = len(times)
            batch.total_response_time = sum(response_times)
            batch.min_response_time = min(response_times)
            batch.max_response_time = max(response_times)
            batch.response_times = Counter(map(bucket_response_time, response_times))
            batch.num_reqs_per_sec = Counter(map(int, times))
            self.stats.get(name, request_type).extend(batch)
            self.stats.total.extend(batch)
