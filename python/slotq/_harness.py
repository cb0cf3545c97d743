"""The harness's surface of SlotqBackend (docs/harnesses.md): exec with cwd, env, user and stdin, and bytes
and directories at any path of the container. Trusted harness code only: these are not the model's tools,
whose /workspace path rules stay as they are.

Bytes travel as bytes (application/octet-stream), not base64 in JSON: a file to write is sent as it is,
a directory is packed into a temporary tar file here and streamed from it, and a downloaded tar is streamed
into a temporary file and unpacked from there, so neither is held whole in memory."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import tempfile
from typing import Any, BinaryIO, Callable, Dict, List, Optional, Sequence, Union
from urllib.parse import urlencode

from . import _tar
from ._common import ANSWER_MARGIN_S, DEFAULT_CALL_TIMEOUT_S, MAX_TIMEOUT_S, _clamp, _error_from
from ._http import HttpClient, json_body, octet_body, octet_stream
from .errors import GatewayUnavailableError, SlotqError, file_error
from .types import ExecResult, Slot

#: Raw bytes per transfer call of the worker (src/shared/calls/sandbox-schemas.ts TRANSFER_CHUNK_BYTES).
TRANSFER_CHUNK_BYTES = 2 * 1024 * 1024
User = Union[str, int]


class HarnessSurface:
    """Mixed into SlotqBackend; uses its session (``_session``, ``_open_session``) and HTTP client."""

    _http: HttpClient
    _session: Optional[str]
    default_timeout_s: Optional[float]

    async def _open_session(self, stale: Optional[str]) -> str:  # pragma: no cover - SlotqBackend's
        raise NotImplementedError

    async def _session_call(self, op: str, body: Dict[str, Any], timeout_s: float, *, idempotent: bool = False, lane: str = "calls") -> Any:  # pragma: no cover - SlotqBackend's
        raise NotImplementedError

    # ------------------------------------------------------------------ exec

    async def exec(self, slot: Slot, command: Union[str, Sequence[str]], cwd: Optional[str] = None, env: Optional[Dict[str, str]] = None, user: Optional[User] = None, stdin: Union[str, bytes, None] = None, timeout_s: Optional[float] = None) -> ExecResult:
        """Runs ``command`` in the slot: a string under the image's ``sh -c``, a list as argv (no shell).
        ``cwd`` any directory (default /workspace), ``env`` merged over the image's, ``user`` a name or uid
        (default the slot's user), ``stdin`` text or bytes (up to 2 MB). Never raises for a failed call:
        the result's ``code`` says what went wrong (``timed_out`` when the command ran past ``timeout_s``
        and was killed with its children)."""
        _check_slot(slot)
        if not isinstance(command, str):
            command = list(command)
            if not all(isinstance(a, str) for a in command):
                raise TypeError("exec(): an argv command must be a list of strings")
        body: Dict[str, Any] = {"slot": slot._to_wire(), "command": command}
        if cwd is not None:
            body["cwd"] = cwd
        if env is not None:
            body["env"] = {str(k): str(v) for k, v in env.items()}
        if user is not None:
            body["user"] = user
        if isinstance(stdin, str):
            body["stdin"] = stdin
        elif stdin is not None:
            body["stdin_b64"] = base64.b64encode(bytes(stdin)).decode("ascii")
        t = self._call_timeout_s(timeout_s)
        if timeout_s is not None:
            body["timeout_s"] = timeout_s
        try:
            data = await self._session_call("exec", body, t + ANSWER_MARGIN_S)
        except GatewayUnavailableError as e:
            if not e.may_have_arrived:
                return ExecResult.failure(e.code, str(e), retryable=True)
            return ExecResult.failure(e.code, f"{e}. The command may have run.", retryable=False, outcome="unknown")
        except SlotqError as e:
            if e.code == "BACKEND_STOPPED" and self._session is None:
                raise
            return ExecResult.failure(e.code, str(e), retryable=e.retryable)
        return ExecResult._from_wire(data)

    # ------------------------------------------------------------------ files

    async def write_file_bytes(self, slot: Slot, path: str, data: Union[bytes, str], mode: Optional[int] = None, user: Optional[User] = None, *, timeout_s: Optional[float] = None) -> None:
        """Writes ``data`` (text is UTF-8) at an absolute ``path``, making parent directories; owned by the
        exec user, ``mode`` e.g. ``0o755``. Raises a SlotqFileError subclass (PermissionError, ...)."""
        _check_slot(slot)
        raw = data.encode("utf-8") if isinstance(data, str) else bytes(data)
        query = _query(path=path, mode=mode, user=user, timeout_s=timeout_s)
        answer = await self._transfer(f"write_file?{query}", lambda: octet_body(raw), slot, self._sized_timeout_s(timeout_s, len(raw)))
        _check_done(answer, path)

    async def read_file_bytes(self, slot: Slot, path: str, user: Optional[User] = None, max_bytes: Optional[int] = None, *, timeout_s: Optional[float] = None) -> bytes:
        """A file's bytes (absolute ``path``). Raises SlotqFileNotFoundError (a FileNotFoundError),
        SlotqIsADirectoryError, SlotqPermissionError, SlotqTooLargeError (past ``max_bytes``), ..."""
        _check_slot(slot)
        body = _json_body(slot, path=path, user=user, max_bytes=max_bytes, timeout_s=timeout_s)
        answer = await self._transfer("read_file", lambda: body, None, self._unsized_timeout_s(timeout_s))
        if isinstance(answer, (bytes, bytearray)):
            return bytes(answer)
        _check_done(answer, path)
        raise SlotqError("INTERNAL", f"read_file {path}: the gateway answered success without the bytes", retryable=True)

    async def upload_dir(self, slot: Slot, local_dir: str, target_dir: str, user: Optional[User] = None, *, timeout_s: Optional[float] = None) -> None:
        """Copies the contents of a local directory into ``target_dir`` (absolute; made if missing): regular
        files, directories and symlinks with their modes, owned by the exec user."""
        _check_slot(slot)
        if not os.path.isdir(local_dir):
            raise NotADirectoryError(f"upload_dir: {local_dir!r} is not a local directory")
        with tempfile.TemporaryFile(prefix="slotq-upload-") as f:
            size = await asyncio.to_thread(_tar.pack_dir, local_dir, f)

            def body() -> Any:
                f.seek(0)
                return octet_stream(f, size)

            query = _query(target=target_dir, user=user, timeout_s=timeout_s)
            answer = await self._transfer(f"upload?{query}", body, slot, self._sized_timeout_s(timeout_s, size))
        _check_done(answer, target_dir)

    async def download_dir(self, slot: Slot, path: str, local_dir: str, user: Optional[User] = None, max_bytes: Optional[int] = None, *, timeout_s: Optional[float] = None) -> List[str]:
        """Copies a container directory's contents into ``local_dir`` (made if missing), the inverse of
        upload_dir; a file ``path`` lands as ``local_dir/<its name>``. Unpacked safely: no member may land
        outside ``local_dir``. Returns the local paths written."""
        _check_slot(slot)
        body = _json_body(slot, path=path, user=user, max_bytes=max_bytes, timeout_s=timeout_s)
        with tempfile.TemporaryFile(prefix="slotq-download-") as f:

            def sink() -> BinaryIO:
                f.seek(0)
                f.truncate()
                return f

            answer = await self._transfer("download", lambda: body, None, self._unsized_timeout_s(timeout_s), sink=sink)
            if not isinstance(answer, int):
                _check_done(answer, path)
                raise SlotqError("INTERNAL", f"download {path}: the gateway answered success without the archive", retryable=True)
            f.seek(0)
            return await asyncio.to_thread(_tar.extract_into, f, path, local_dir)

    # ------------------------------------------------------------------ plumbing

    async def _transfer(self, op: str, make_body: Callable[[], Any], slot: Optional[Slot], timeout_s: float, sink: Optional[Callable[[], BinaryIO]] = None) -> Any:
        """One transfer request: JSON or bytes in (``make_body`` is called again on a retry), JSON or bytes
        out. A session the gateway no longer knows (nothing ran) is reopened once."""
        headers = {"X-Slotq-Slot": json.dumps(slot._to_wire(), separators=(",", ":"), ensure_ascii=True)} if slot is not None else None
        for attempt in range(2):
            sid = self._session
            if sid is None:
                raise SlotqError("BACKEND_STOPPED", "SlotqBackend is not started: await backend.start() first (or it was stopped)")
            body = make_body()
            url = f"/v1/sessions/{sid}/{op}"
            wire = json_body(body) if isinstance(body, dict) else body
            status, data = await self._http.request_bytes("POST", url, wire, timeout_s=timeout_s, headers=headers, sink=sink() if sink else None)
            if status == 200:
                return data
            err = _error_from(status, data)
            if status == 404 and err.code == "BACKEND_STOPPED" and attempt == 0 and self._session is not None:
                await self._open_session(sid)
                continue
            raise err
        raise AssertionError("unreachable")

    def _call_timeout_s(self, timeout_s: Optional[float]) -> float:
        t = timeout_s if timeout_s is not None else (self.default_timeout_s or DEFAULT_CALL_TIMEOUT_S)
        return _clamp(t)

    def _sized_timeout_s(self, timeout_s: Optional[float], size: int) -> float:
        """A transfer of ``size`` bytes goes in 2 MB calls, each with its own timeout, in the slot's FIFO."""
        calls = 2 + size // TRANSFER_CHUNK_BYTES
        return (self._call_timeout_s(timeout_s) + 1.0) * calls + ANSWER_MARGIN_S

    def _unsized_timeout_s(self, timeout_s: Optional[float]) -> float:
        """The size of a read is not known before: the gateway gives up by itself; this only bounds the wait."""
        return max(MAX_TIMEOUT_S, self._call_timeout_s(timeout_s)) + ANSWER_MARGIN_S


def _check_slot(slot: Any) -> None:
    if not isinstance(slot, Slot):
        raise TypeError(f"expected a Slot from acquire(), got {type(slot).__name__}")


def _query(**params: Any) -> str:
    return urlencode({k: str(v) for k, v in params.items() if v is not None})


def _json_body(slot: Slot, **fields: Any) -> Dict[str, Any]:
    body = {k: v for k, v in fields.items() if v is not None}
    body["slot"] = slot._to_wire()
    return body


def _check_done(answer: Any, path: str) -> None:
    """Raises the typed error of a transfer answer {success: false, code, error, retryable}."""
    if isinstance(answer, dict) and answer.get("success") is True:
        return
    if not isinstance(answer, dict):
        raise SlotqError("INTERNAL", f"unexpected answer from the slotq gateway for {path}: {str(answer)[:200]}", retryable=True)
    code = str(answer.get("code") or "INTERNAL")
    retryable = answer.get("retryable")
    meta = answer.get("metadata") if isinstance(answer.get("metadata"), dict) else {}
    cause = answer.get("cause") or meta.get("cause")
    raise file_error(code, str(answer.get("error") or f"{path}: {code}"), retryable=None if retryable is None else bool(retryable), path=path, cause=None if cause is None else str(cause))

