"""slotq for Python: ``SlotqBackend`` is a drop-in ToolBackend (the seed protocol) on a `slotq gateway`.

    from slotq import SlotqBackend

    backend = SlotqBackend()              # $SLOTQ_URL, $SLOTQ_TOKEN
    await backend.start()
    slot = await backend.acquire("trajectory-42")
    [res] = await backend.execute_batch([(slot, "bash", {"command": "echo hi"})])
    await backend.release(slot, reset_workspace=True)
    await backend.stop()

Standard library only; Python >= 3.9.
"""

from .backend import SlotqBackend
from .errors import ERROR_CODES, RETRYABLE_CODES, GatewayUnavailableError, SlotqAuthError, SlotqError, is_retryable
from .types import ExecutionResult, Slot, SlotState, ToolResult

__all__ = [
    "SlotqBackend",
    "Slot",
    "SlotState",
    "ExecutionResult",
    "ToolResult",
    "SlotqError",
    "SlotqAuthError",
    "GatewayUnavailableError",
    "ERROR_CODES",
    "RETRYABLE_CODES",
    "is_retryable",
]
__version__ = "0.1.0"
