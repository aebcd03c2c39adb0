"""Fault injection for contract and reliability tests: which faults are armed, and
whether a given call should meet one. Pure state; the servers consult it.

Faults (all off by default, armed through the stack's control endpoint):
- ``suppress_disconnect``: $disconnect is not invoked (a lost $disconnect, as
  AWS only promises it best effort);
- ``handler_errors``: the next N invocations of a route fail as if the handler
  raised, before it runs;
- ``post_failure``: a fraction of @connections POSTs answer 429
  LimitExceededException or 410 GoneException;
- ``throttled_requests``: the next N DynamoDB requests on a table answer
  ProvisionedThroughputExceededException.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

POST_FAILURES = {429: "LimitExceededException", 410: "GoneException"}


class FaultError(ValueError):
    pass


@dataclass
class Faults:
    suppress_disconnect: bool = False
    handler_errors: dict[str, int] = field(default_factory=dict)
    post_failure_status: int | None = None
    post_failure_fraction: float = 0.0
    throttled_requests: dict[str, int] = field(default_factory=dict)
    injected: dict[str, int] = field(default_factory=dict)
    rng: random.Random = field(default_factory=random.Random)

    def arm(self, document: dict) -> None:
        """Arm the faults a control request names; unknown names are an error."""
        known = {"suppress_disconnect", "handler_errors", "post_failure", "throttle", "seed"}
        unknown = set(document) - known
        if unknown:
            raise FaultError(f"unknown faults {sorted(unknown)}; known: {sorted(known)}")
        if "seed" in document:
            self.rng.seed(document["seed"])
        if "suppress_disconnect" in document:
            self.suppress_disconnect = bool(document["suppress_disconnect"])
        for route, count in document.get("handler_errors", {}).items():
            self.handler_errors[route] = _count(count, f"handler_errors[{route}]")
        if "post_failure" in document:
            status = document["post_failure"].get("status")
            fraction = float(document["post_failure"].get("fraction", 0))
            if status not in POST_FAILURES or not 0 <= fraction <= 1:
                raise FaultError("post_failure needs status 429 or 410 and fraction in [0, 1]")
            self.post_failure_status, self.post_failure_fraction = status, fraction
        for table, count in document.get("throttle", {}).items():
            self.throttled_requests[table] = _count(count, f"throttle[{table}]")

    def clear(self) -> None:
        self.suppress_disconnect = False
        self.handler_errors.clear()
        self.post_failure_status, self.post_failure_fraction = None, 0.0
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
        if self.post_failure_status is None or self.rng.random() >= self.post_failure_fraction:
            return None
        self.injected["post_failure"] = self.injected.get("post_failure", 0) + 1
        return self.post_failure_status

    def disconnect_suppressed(self) -> bool:
        if self.suppress_disconnect:
            self.injected["suppress_disconnect"] = self.injected.get("suppress_disconnect", 0) + 1
        return self.suppress_disconnect

    def state(self) -> dict:
        return {
            "suppress_disconnect": self.suppress_disconnect,
            "handler_errors": dict(self.handler_errors),
            "post_failure": {"status": self.post_failure_status,
                             "fraction": self.post_failure_fraction},
            "throttle": dict(self.throttled_requests),
            "injected": dict(self.injected),
        }


def _count(value, name: str) -> int:
    if not isinstance(value, int) or value < 0:
        raise FaultError(f"{name} must be a non-negative integer, got {value!r}")
    return value
