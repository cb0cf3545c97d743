"""Typed errors of the slotq client (the contract's error codes)."""

from __future__ import annotations

from typing import Optional

#: The contract's stable error codes (results carry them in ``metadata["code"]``).
ERROR_CODES = (
    "TOOL_FAILED",
    "TIMEOUT",
    "INVALID_ARGS",
    "UNKNOWN_TOOL",
    "PATH_OUTSIDE_WORKSPACE",
    "NOT_FOUND",
    "PERMISSION_DENIED",
    "TOO_LARGE",
    "LEASE_LOST",
    "WORKER_LOST",
    "SLOT_BROKEN",
    "NO_SLOT",
    "BACKEND_STOPPED",
    "INTERNAL",
)

#: Infrastructure failures a training loop may retry or mask instead of scoring.
RETRYABLE_CODES = frozenset({"WORKER_LOST", "SLOT_BROKEN", "NO_SLOT", "INTERNAL", "BACKEND_STOPPED"})


def is_retryable(code: str) -> bool:
    return code in RETRYABLE_CODES


class SlotqError(Exception):
    """An error raised by the client (never for a per-call problem: those are results).

    ``code`` is a contract code (``NO_SLOT``, ``BACKEND_STOPPED``, ``INTERNAL``, ...) or
    ``UNAUTHORIZED``; ``retryable`` says whether trying again later may succeed.
    """

    def __init__(self, code: str, message: str, *, retryable: Optional[bool] = None, status: Optional[int] = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.retryable = is_retryable(code) if retryable is None else retryable
        self.status = status

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, message={self.message!r}, retryable={self.retryable!r})"


class SlotqAuthError(SlotqError):
    """401 from the gateway: the bearer token is missing or wrong (the message says which)."""


class GatewayUnavailableError(SlotqError):
    """The gateway could not be reached or did not answer in time (code INTERNAL).

    ``may_have_arrived`` is True when the request had been sent (no answer in time, the connection broke
    after it went out): the gateway may have acted on it, so calls it carried may have run. A batch of
    tool calls given up that way comes back ``retryable=False`` with ``metadata["outcome"] == "unknown"``
    (docs/tools-and-results.md "What to score and what to mask"); one that never went out is retryable."""

    def __init__(self, message: str, *, may_have_arrived: bool = False) -> None:
        super().__init__("INTERNAL", message, retryable=not may_have_arrived)
        self.may_have_arrived = may_have_arrived
