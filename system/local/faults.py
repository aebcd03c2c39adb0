"""Fault injection for contract and reliability tests: which faults are armed, and
whether a given call should meet one. Pure state; the servers consult it.

Faults (all off by default, armed through the stack's control endpoint):
- ``suppress_disconnect``: $disconnect is not invoked (a lost $disconnect, as
  AWS only promises it best effort);
- ``handler_errors``: the next N invocations of a route fail as if the handler
  raised, before it runs;
- ``post_failure``: a fraction of @connections POSTs, or the next ``count`` of them
  (a storm), answer 429 LimitExceededException or 410 GoneException;
- ``throttle``: the next N DynamoDB requests on a table answer
  ProvisionedThroughputExceededException;
- ``connect_hold``: the next ``count`` accepted handshakes are held ``seconds`` after
  $connect returns (at most API Gateway's 29 s), the window in which the connection's
  row exists but @connections still answers 410: the race the handlers must survive.
"""

from __future__ import annotations

import json
import random
import reprlib
from dataclasses import dataclass, field

from system.apigateway_quotas import INTEGRATION_TIMEOUT_SECONDS

POST_FAILURES = {429: "LimitExceededException", 410: "GoneException"}


class FaultError(ValueError):
    pass


@dataclass(frozen=True)
class FaultRequest:
    """A control request's fault document, validated whole before anything is armed:
    an invalid document arms nothing, so a test never runs against half of what it asked."""

    seed: int | None = None
    suppress_disconnect: bool | None = None
    handler_errors: dict[str, int] = field(default_factory=dict)
    post_failure: PostFailure | None = None
    throttle: dict[str, int] = field(default_factory=dict)
    connect_hold: ConnectHold | None = None

    @classmethod
    def of(cls, document: object) -> FaultRequest:
        """The request a parsed JSON document makes; FaultError names what is wrong."""
        if not isinstance(document, dict):
            raise FaultError(f"a fault document is a JSON object, got {reprlib.repr(document)}")
        known = set(cls.__dataclass_fields__)
        unknown = set(document) - known
        if unknown:
            raise FaultError(f"unknown faults {sorted(unknown)}; known: {sorted(known)}")
        seed = document.get("seed")
        if seed is not None and not _is_int(seed):
            raise FaultError(f"seed must be an integer, got {reprlib.repr(seed)}")
        suppress = document.get("suppress_disconnect")
        if suppress is not None and not isinstance(suppress, bool):
            raise FaultError(f"suppress_disconnect must be true or false, "
                             f"got {reprlib.repr(suppress)}")
        return cls(seed=seed, suppress_disconnect=suppress,
                   handler_errors=_counts(document, "handler_errors", "route key"),
                   post_failure=_post_failure(document.get("post_failure")),
                   throttle=_counts(document, "throttle", "table"),
                   connect_hold=_connect_hold(document.get("connect_hold")))


@dataclass
class PostFailure:
    status: int
    fraction: float = 0.0  # of every POST, or
    remaining: int | None = None  # the next this many (a storm)


@dataclass
class ConnectHold:
    seconds: float
    remaining: int


@dataclass
class Faults:
    suppress_disconnect: bool = False
    handler_errors: dict[str, int] = field(default_factory=dict)
    failing_posts: PostFailure | None = None
    held_connects: ConnectHold | None = None
    throttled_requests: dict[str, int] = field(default_factory=dict)
    injected: dict[str, int] = field(default_factory=dict)
    rng: random.Random = field(default_factory=random.Random)

    def arm(self, document: object) -> None:
        """Arm all the faults a control request's document names, or (FaultError) none."""
        request = FaultRequest.of(document)
        if request.seed is not None:
            self.rng.seed(request.seed)
        if request.suppress_disconnect is not None:
            self.suppress_disconnect = request.suppress_disconnect
        self.handler_errors.update(request.handler_errors)
        if request.post_failure is not None:
            self.failing_posts = request.post_failure
        if request.connect_hold is not None:
            self.held_connects = request.connect_hold
        self.throttled_requests.update(request.throttle)

    def clear(self) -> None:
        self.suppress_disconnect = False
        self.handler_errors.clear()
        self.failing_posts = None
        self.held_connects = None
        self.throttled_requests.clear()

    def _take(self, counts: dict[str, int], key: str, kind: str) -> bool:
        if counts.get(key, 0) <= 0:
            return False
        counts[key] -= 1
        self.injected[kind] = self.injected.get(kind, 0) + 1
        return True

    def handler_error(self, route_key: str) -> bool:
        return self._take(self.handler_errors, route_key, "handler_errors")

    def throttle(self, table: str) -> bool:
        return self._take(self.throttled_requests, table, "throttle")

    def post_failure(self) -> int | None:
        """The status a POST should fail with, or None to serve it."""
        failing = self.failing_posts
        if failing is None:
            return None
        if failing.remaining is not None:
            if failing.remaining <= 0:
                return None
            failing.remaining -= 1
        elif self.rng.random() >= failing.fraction:
            return None
        self.injected["post_failure"] = self.injected.get("post_failure", 0) + 1
        return failing.status

    def connect_hold_s(self) -> float:
        """How long to hold an accepted handshake before completing it (0: not at all)."""
        held = self.held_connects
        if held is None or held.remaining <= 0:
            return 0.0
        held.remaining -= 1
        self.injected["connect_hold"] = self.injected.get("connect_hold", 0) + 1
        return held.seconds

    def disconnect_suppressed(self) -> bool:
        if self.suppress_disconnect:
            self.injected["suppress_disconnect"] = self.injected.get("suppress_disconnect", 0) + 1
        return self.suppress_disconnect

    def state(self) -> dict:
        return {
            "suppress_disconnect": self.suppress_disconnect,
            "handler_errors": dict(self.handler_errors),
            "post_failure": (None if self.failing_posts is None else
                             {"status": self.failing_posts.status,
                              "fraction": self.failing_posts.fraction,
                              "remaining": self.failing_posts.remaining}),
            "connect_hold": (None if self.held_connects is None else
                             {"seconds": self.held_connects.seconds,
                              "remaining": self.held_connects.remaining}),
            "throttle": dict(self.throttled_requests),
            "injected": dict(self.injected),
        }


def fault_document(body: bytes) -> object:
    """A control request's body parsed as JSON; FaultError where it is not JSON (or nests
    deeper than the parser goes)."""
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        raise FaultError('the body is not JSON (or nests too deep to read); send an object '
                         'such as {"throttle": {"MessageHistory": 2}}') from None


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _counts(document: dict, name: str, what: str) -> dict[str, int]:
    """``document[name]``: an object of ``what`` to a non-negative count ({} if absent)."""
    counts = document.get(name, {})
    if not isinstance(counts, dict):
        raise FaultError(f"{name} must be an object of {what} to count, "
                         f"got {reprlib.repr(counts)}")
    for key, count in counts.items():
        if not _is_int(count) or count < 0:
            raise FaultError(f"{name}[{key}] must be a non-negative integer, "
                             f"got {reprlib.repr(count)}")
    return dict(counts)


def _post_failure(value: object) -> PostFailure | None:
    if value is None:
        return None
    if (not isinstance(value, dict) or set(value) - {"status", "fraction", "count"}
            or {"fraction", "count"} <= set(value)):
        raise FaultError(f"post_failure must be an object with status and either fraction "
                         f"or count, got {reprlib.repr(value)}")
    status, fraction, count = value.get("status"), value.get("fraction", 0), value.get("count")
    if (not _is_int(status) or status not in POST_FAILURES
            or not _is_number(fraction) or not 0 <= fraction <= 1
            or (count is not None and (not _is_int(count) or count < 0))):
        raise FaultError("post_failure needs status 429 or 410, and fraction in [0, 1] or a "
                         f"non-negative integer count, got {reprlib.repr(value)}")
    return PostFailure(status, float(fraction), count)


def _connect_hold(value: object) -> ConnectHold | None:
    if value is None:
        return None
    if not isinstance(value, dict) or set(value) != {"seconds", "count"}:
        raise FaultError(f"connect_hold must be an object with seconds and count, "
                         f"got {reprlib.repr(value)}")
    seconds, count = value["seconds"], value["count"]
    if (not _is_number(seconds) or not 0 < seconds <= INTEGRATION_TIMEOUT_SECONDS
            or not _is_int(count) or count < 0):
        raise FaultError(f"connect_hold needs seconds in (0, {INTEGRATION_TIMEOUT_SECONDS}] "
                         f"and a non-negative integer count, got {reprlib.repr(value)}")
    return ConnectHold(float(seconds), count)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
