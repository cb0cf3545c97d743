"""Constants and helpers shared by SlotqBackend and its harness surface."""

from __future__ import annotations

from typing import Any

from .errors import GatewayUnavailableError, SlotqAuthError, SlotqError

#: The contract's per-call default and clamp (contract §4).
DEFAULT_CALL_TIMEOUT_S = 30.0
MIN_TIMEOUT_S, MAX_TIMEOUT_S = 1.0, 3600.0
#: The gateway gives up a call 60 s after its timeouts (typed WORKER_LOST); the client waits longer,
#: so the typed answer wins, yet never waits forever.
ANSWER_MARGIN_S = 90.0


def _clamp(t: float) -> float:
    return min(MAX_TIMEOUT_S, max(MIN_TIMEOUT_S, t))


def _error_from(status: int, data: Any) -> SlotqError:
    err = data.get("error") if isinstance(data, dict) else None
    if not isinstance(err, dict):
        return GatewayUnavailableError(f"Unexpected answer from the slotq gateway (HTTP {status}): {str(data)[:300]}")
    code = str(err.get("code", "INTERNAL"))
    message = str(err.get("message", ""))
    retryable = err.get("retryable")
    if status == 401:
        return SlotqAuthError(code, message, retryable=False, status=status)
    return SlotqError(code, message, retryable=bool(retryable) if retryable is not None else None, status=status)
