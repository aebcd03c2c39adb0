"""What an invocation produced, as the caller (API Gateway) sees it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Outcome:
    """Either ``result`` (the handler's return value) or ``error`` (Lambda's error
    document: errorType, errorMessage, stackTrace). errorType is the exception's class
    name for a raised exception, 'TimedOut' for a timeout, 'Runtime.*' for an environment
    that failed to start or died."""

    request_id: str
    duration_ms: float
    result: Any = None
    error: dict | None = None

    @property
    def failed(self) -> bool:
        return self.error is not None
