"""slotq for Python: ``SlotqBackend`` is a drop-in ToolBackend (the seed protocol) on a `slotq gateway`.

    from slotq import SlotqBackend

    backend = SlotqBackend()              # $SLOTQ_URL, $SLOTQ_TOKEN
    await backend.start()
    slot = await backend.acquire("trajectory-42")
    [res] = await backend.execute_batch([(slot, "bash", {"command": "echo hi"})])
    await backend.release(slot, reset_workspace=True)
    await backend.stop()

The harness's surface (trusted code, any path, not the model's tools): ``exec``, ``read_file_bytes``,
``write_file_bytes``, ``upload_dir``, ``download_dir``. ``SlotqSyncBackend`` is the same API, blocking.

Standard library only; Python >= 3.9.
"""

from .backend import SlotqBackend
from .errors import (
    ERROR_CODES,
    RETRYABLE_CODES,
    GatewayUnavailableError,
    SlotqAuthError,
    SlotqError,
    SlotqFileError,
    SlotqFileNotFoundError,
    SlotqIsADirectoryError,
    SlotqPermissionError,
    SlotqTooLargeError,
    is_retryable,
)
from .sync import SlotqSyncBackend
from .types import ExecResult, ExecutionResult, Slot, SlotState, ToolResult

__all__ = [
    "SlotqBackend",
    "SlotqSyncBackend",
    "Slot",
    "SlotState",
    "ExecutionResult",
    "ToolResult",
    "ExecResult",
    "SlotqError",
    "SlotqAuthError",
    "GatewayUnavailableError",
    "SlotqFileError",
    "SlotqFileNotFoundError",
    "SlotqPermissionError",
    "SlotqIsADirectoryError",
    "SlotqTooLargeError",
    "ERROR_CODES",
    "RETRYABLE_CODES",
    "is_retryable",
]
__version__ = "0.1.0"
