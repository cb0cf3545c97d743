"""The artifact helpers' dicts (original-system.md §4): snake_case, every key present, never raised."""

from __future__ import annotations

from typing import Any, Dict

from .errors import is_retryable
from .types import Slot


def _failure(code: str, error: str) -> Dict[str, Any]:
    return {"error": error, "code": code, "retryable": is_retryable(code)}


def read_failure(code: str, error: str, encoding: Any = "text") -> Dict[str, Any]:
    return {
        "success": False,
        "content": "",
        "encoding": encoding if isinstance(encoding, str) else "text",
        "truncated": False,
        "bytes": 0,
        "file_size": None,
        "path": "",
        "mime": None,
        "sha256": None,
        **_failure(code, error),
    }


def list_failure(code: str, error: str) -> Dict[str, Any]:
    return {"success": False, "entries": [], "truncated": False, **_failure(code, error)}


def archive_failure(code: str, error: str) -> Dict[str, Any]:
    return {"success": False, "content": "", "encoding": "base64", "format": "tar.gz", "bytes": 0, "entry_count": 0, "truncated": False, **_failure(code, error)}


_TYPES = {
    "path": (str,),
    "encoding": (str,),
    "archive_format": (str,),
    "include_sha256": (bool,),
    "recursive": (bool,),
    "max_bytes": (int, type(None)),
    "max_entries": (int, type(None)),
    "timeout_s": (int, float, type(None)),
}


def check_args(slot: Any, body: Dict[str, Any]) -> str:
    """Why the call cannot be sent (a per-call INVALID_ARGS result), or "" when it can."""
    if not isinstance(slot, Slot):
        return f"slot is not a Slot from acquire() (got {type(slot).__name__})"
    for key, value in body.items():
        allowed = _TYPES.get(key)
        if allowed and (not isinstance(value, allowed) or (isinstance(value, bool) and bool not in allowed)):
            return f"{key} must be {' or '.join('None' if t is type(None) else t.__name__ for t in allowed)}, got {type(value).__name__}"
    return ""
