"""What an invocation produced, as the caller (API Gateway) sees it, and Lambda's error
documents for the ways an invocation fails without the handler raising."""

from __future__ import annotations

import signal
from dataclasses import dataclass
from typing import Any

# The HTTP status of Lambda's Invoke API: 200 whenever the function ran (a function error
# rides in the body, flagged by X-Amz-Function-Error), 429 when it was throttled.
INVOKED = 200
THROTTLED = 429
# Lambda's largest response to a synchronous invocation (6 MB).
RESPONSE_BYTES = 6_291_556


@dataclass(frozen=True)
class Outcome:
    """Either ``result`` (the handler's return value) or ``error`` (Lambda's error
    document: errorType, errorMessage, stackTrace). errorType is the exception's class
    name for a raised exception, 'TimedOut' for a timeout, 'Runtime.*' or 'Function.*' for
    an environment that failed to start, died or answered what Lambda would refuse, and
    'TooManyRequestsException' for an invocation Lambda refused to run (``status_code``
    429)."""

    request_id: str
    duration_ms: float
    result: Any = None
    error: dict | None = None
    status_code: int = INVOKED

    @property
    def failed(self) -> bool:
        return self.error is not None

    @property
    def rejected(self) -> bool:
        """Lambda's Invoke API refused it, so the function never ran (API Gateway then
        answers 500 where a function error gets 502)."""
        return self.status_code != INVOKED


def throttled(request_id: str) -> Outcome:
    """Lambda's answer when a function has no concurrency left: 429
    TooManyRequestsException, "Rate Exceeded.". The local limit is per function, as
    reserved concurrency is, hence that Reason."""
    return Outcome(request_id, 0.0, status_code=THROTTLED, error={
        "errorType": "TooManyRequestsException",
        "errorMessage": "Rate Exceeded.",
        "Reason": "ReservedFunctionConcurrentInvocationLimitExceeded",
    })


def exit_error(returncode: int, request_id: str | None) -> dict:
    """An environment whose process ended: Lambda's Runtime.ExitError, worded as Lambda
    words it ("RequestId: ... Error: Runtime exited with error: signal: killed", or
    "exit status 1")."""
    if returncode < 0:
        name = signal.strsignal(-returncode) or f"signal {-returncode}"
        how = f"signal: {name.lower()}"
    else:
        how = f"exit status {returncode}"
    prefix = f"RequestId: {request_id} Error: " if request_id else ""
    return {"errorType": "Runtime.ExitError",
            "errorMessage": f"{prefix}Runtime exited with error: {how}"}


def response_too_large() -> dict:
    """A response over Lambda's 6 MB limit for synchronous invocations."""
    return {"errorType": "Function.ResponseSizeTooLarge",
            "errorMessage": f"Response payload size exceeded maximum allowed payload size "
                            f"({RESPONSE_BYTES} bytes)."}


def unknown_error(what: str) -> dict:
    """Lambda's catch-all for a runtime that answered nonsense, with what it answered."""
    return {"errorType": "Runtime.Unknown",
            "errorMessage": f"Unknown application error occurred ({what})"}


def timed_out(timeout_s: float) -> dict:
    return {"errorType": "TimedOut",
            "errorMessage": f"Task timed out after {timeout_s:.2f} seconds"}


def init_timed_out() -> dict:
    return {"errorType": "Runtime.InitTimeout", "errorMessage": "init timed out"}
