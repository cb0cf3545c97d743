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


class SlotqFileError(SlotqError):
    """A harness file helper failed (read_file_bytes, write_file_bytes, upload_dir, download_dir).
    ``path`` is the container path it was given. The subclasses below are also the builtin OSError
    kinds, so an adapter written for local files can catch FileNotFoundError, PermissionError, ..."""

    def __init__(self, code: str, message: str, *, retryable: Optional[bool] = None, path: str = "") -> None:
        super().__init__(code, message, retryable=retryable)
        self.path = path
        self.filename = path or None  # what an OSError handler reads
        self._message = message

    def __str__(self) -> str:  # OSError's own would print "[Errno None] None: path"
        return self._message


class SlotqFileNotFoundError(SlotqFileError, FileNotFoundError):
    """NOT_FOUND: the path does not exist in the container."""


class SlotqPermissionError(SlotqFileError, PermissionError):
    """PERMISSION_DENIED: the exec user may not read or write the path."""


class SlotqIsADirectoryError(SlotqFileError, IsADirectoryError):
    """INVALID_ARGS (cause is_directory): a file operation was given a directory."""


class SlotqTooLargeError(SlotqFileError):
    """TOO_LARGE: the file or archive is over ``max_bytes`` (or the gateway's transfer cap)."""


def file_error(code: str, message: str, *, retryable: Optional[bool], path: str, cause: Optional[str] = None) -> SlotqFileError:
    """The typed error for a failed transfer answer {success: false, code, error, retryable}."""
    low = message.lower()
    if code == "NOT_FOUND":
        cls: type = SlotqFileNotFoundError
    elif code == "PERMISSION_DENIED" or (code == "TOOL_FAILED" and "permission denied" in low):
        cls = SlotqPermissionError
    elif code == "TOO_LARGE":
        cls = SlotqTooLargeError
    elif code == "INVALID_ARGS" and (cause == "is_directory" or "is a directory" in low):
        cls = SlotqIsADirectoryError
    else:
        cls = SlotqFileError
    err: SlotqFileError = cls(code, message, retryable=retryable, path=path)
    return err
