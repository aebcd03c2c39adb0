"""RequestTally adds to Locust's statistics exactly what one request event per success would.

Locust runs in a spawned child (importing it monkey-patches the process with gevent):
for many random batches of successes, the child logs them one by one into one
RequestStats (Locust's own ``log_request``, its clock set to each success's time) and
through a RequestTally into another, and answers with the fields that differ.
"""

from __future__ import annotations

import math
import random
from multiprocessing.connection import Connection

from loadtest.spawned_child import SpawnedChild

CASES = 300
FIELDS = ("num_requests", "num_failures", "total_response_time", "min_response_time",
          "max_response_time", "response_times", "num_reqs_per_sec", "last_request_timestamp")
ROWS = (("FANOUT", "per-recipient"), ("FANOUT", "sender echo"), ("WS", "heartbeat"))


def random_successes(rng: random.Random) -> list[tuple[str, str, float, float]]:
    """(type, name, response time ms, at): times over a few seconds, in order, as they come."""
    at = 1_800_000_000 + rng.random()
    successes = []
    for _ in range(rng.randint(1, 400)):
        at += rng.expovariate(200)
        response_time = rng.choice([0.0, rng.uniform(0, 5), rng.uniform(0, 60_000),
                                    float(rng.randint(0, 10**6))])
        successes.append((*rng.choice(ROWS), response_time, at))
    return successes


def same(got: object, expected: object) -> bool:
    """Equal, or for sums of floats equal but for the order of adding."""
    if isinstance(got, float) and isinstance(expected, float):
        return math.isclose(got, expected, rel_tol=1e-12)
    return got == expected


def compare_in_child(channel: Connection, seed: int) -> None:
    import locust  # noqa: F401 - first: gevent patches the child before anything else
    from locust import stats as locust_stats
    from locust.stats import RequestStats

    from loadtest.request_tally import RequestTally

    clock = [0.0]

    class Clock:
        @staticmethod
        def time() -> float:
            return clock[0]

    locust_stats.time = Clock  # Locust's log() stamps each request with time.time()
    rng = random.Random(seed)
    differences = []
    for case in range(CASES):
        successes = random_successes(rng)
        clock[0] = successes[0][3] - 1  # both start before the first success
        one_by_one, tallied = RequestStats(), RequestStats()
        tally = RequestTally(tallied)
        for request_type, name, response_time, at in successes:
            clock[0] = at
            one_by_one.log_request(request_type, name, response_time, 0)
            tally.success(request_type, name, response_time, at)
            if rng.random() < 0.01:
                tally.flush()  # flushes may come at any time
        tally.flush()
        for key, expected in [*one_by_one.entries.items(), (None, one_by_one.total)]:
            got = tallied.total if key is None else tallied.entries[key]
            for name in FIELDS:
                if not same(getattr(got, name), getattr(expected, name)):
                    differences.append(f"case {case} {key or 'Aggregated'} {name}: "
                                       f"{getattr(got, name)!r} != {getattr(expected, name)!r}")
    channel.send(differences)


def test_a_tally_adds_what_one_event_per_success_would() -> None:
    with SpawnedChild("comparison", compare_in_child, 20261202) as child:
        differences = child.receive(120)
    assert differences == [], "\n".join(differences[:20])
