"""SlotqBackend: the seed's ToolBackend protocol, served by `slotq gateway`."""

from __future__ import annotations

import asyncio
import json
import logging
import os
from typing import Any, Dict, List, Optional, Sequence, Tuple

from . import _artifacts as art
from ._common import ANSWER_MARGIN_S, DEFAULT_CALL_TIMEOUT_S, MAX_TIMEOUT_S, MIN_TIMEOUT_S, _clamp, _error_from
from ._harness import HarnessSurface
from ._http import HttpClient
from .errors import GatewayUnavailableError, SlotqError
from .types import ExecutionResult, Slot, SlotState

log = logging.getLogger("slotq")

DEFAULT_URL = "http://127.0.0.1:9001"
class SlotqBackend(HarnessSurface):
    """A drop-in ``ToolBackend`` (the seed protocol: same names, kwargs and defaults) on a slotq gateway.

    ``url`` defaults to ``$SLOTQ_URL`` (else ``http://127.0.0.1:9001``) and ``token`` to ``$SLOTQ_TOKEN``
    (else ``$SLOTQ_GATEWAY_TOKEN``). A started backend holds one gateway session, renewed in the
    background; if the process dies, the gateway closes the session after ``session_ttl_s`` and
    releases its slots with reset, so nothing leaks.

    A trajectory ID belongs to the session: another client (or another backend in this process) that
    acquires the same ID gets a slot of its own. ``namespace`` (default ``$SLOTQ_NAMESPACE``) opts in to
    sharing: sessions that name the same namespace share trajectory IDs, and so slots and workspaces; only
    for cooperating clients of one training run.
    """

    def __init__(
        self,
        url: Optional[str] = None,
        token: Optional[str] = None,
        *,
        session_ttl_s: float = 60.0,
        default_timeout_s: Optional[float] = None,
        acquire_timeout_s: float = 60.0,
        max_connections: int = 128,  # concurrent calls (acquires waiting for a slot are not counted)
        connect_timeout_s: float = 10.0,
        client_name: Optional[str] = None,
        namespace: Optional[str] = None,
    ) -> None:
        self.url = url or os.environ.get("SLOTQ_URL") or DEFAULT_URL
        if token is None:
            token = os.environ.get("SLOTQ_TOKEN") or os.environ.get("SLOTQ_GATEWAY_TOKEN") or None
        self.session_ttl_s = float(session_ttl_s)
        self.acquire_timeout_s = float(acquire_timeout_s)
        self.client_name = client_name or f"python-{os.getpid()}"
        self.namespace: Optional[str] = namespace if namespace is not None else (os.environ.get("SLOTQ_NAMESPACE") or None)
        self._default_timeout_s = default_timeout_s
        self._gateway_timeout_s: Optional[float] = None
        self._http = HttpClient(self.url, token, max_connections=max_connections, connect_timeout_s=connect_timeout_s)
        self._session: Optional[str] = None
        self._keepalive: Optional["asyncio.Task[None]"] = None
        self._lock: Optional[asyncio.Lock] = None
        self._lock_loop: Optional[asyncio.AbstractEventLoop] = None

    # ------------------------------------------------------------------ lifecycle

    @property
    def default_timeout_s(self) -> Optional[float]:
        """Default sandbox execution timeout in seconds: the constructor's, else the gateway's once started."""
        return self._default_timeout_s if self._default_timeout_s is not None else self._gateway_timeout_s

    async def start(self) -> None:
        """Opens a gateway session (one producer with its own leases) and starts the keepalive."""
        if self._session is not None:
            return
        await self._open_session(None)
        self._keepalive = asyncio.ensure_future(self._keepalive_loop())

    async def stop(self, *, purge: bool = False) -> None:
        """Closes the session: its slots are released with reset (``purge``: also drop its keys).
        Never hangs; when the gateway cannot be reached it logs a warning (the session's TTL cleans up)."""
        task, self._keepalive = self._keepalive, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        sid, self._session = self._session, None
        if sid is not None:
            try:
                status, data = await self._http.request("POST", f"/v1/sessions/{sid}/close", {"purge": bool(purge)}, timeout_s=60.0)
                if status >= 400 and status != 404:
                    raise _error_from(status, data)
            except SlotqError as e:
                log.warning("slotq: closing session %s failed (%s); the gateway releases its slots after %.0f s", sid, e, self.session_ttl_s)
        self._http.close_idle()

    async def _open_session(self, stale: Optional[str]) -> str:
        async with self._get_lock():
            if self._session is not None and self._session != stale:
                return self._session  # another task reopened it already
            body: Dict[str, Any] = {"ttl_s": self.session_ttl_s, "client": self.client_name}
            if self.namespace is not None:
                body["namespace"] = self.namespace  # sent only when set: a gateway without namespaces still opens plain sessions
            status, data = await self._http.request("POST", "/v1/sessions", body, timeout_s=60.0, idempotent=True)
            if status != 200:
                raise _error_from(status, data)
            if stale is not None:
                log.warning("slotq: session %s is gone (expired or the gateway restarted): opened %s; slots of the old session are lost", stale, data["session_id"])
            self._session = str(data["session_id"])
            self._gateway_timeout_s = float(data.get("default_timeout_s", DEFAULT_CALL_TIMEOUT_S))
            return self._session

    def _get_lock(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        if self._lock is None or self._lock_loop is not loop:
            self._lock, self._lock_loop = asyncio.Lock(), loop
        return self._lock

    async def _keepalive_loop(self) -> None:
        interval = max(0.2, self.session_ttl_s / 4)
        while True:
            await asyncio.sleep(interval)
            sid = self._session
            if sid is None:
                return
            try:
                status, data = await self._http.request("POST", f"/v1/sessions/{sid}/keepalive", {}, timeout_s=max(1.0, interval), idempotent=True)
                if status == 404:
                    await self._open_session(sid)
                elif status >= 400:
                    log.warning("slotq: keepalive failed: %s", _error_from(status, data))
            except SlotqError as e:
                log.debug("slotq: keepalive failed: %s", e)

    async def _session_call(self, op: str, body: Dict[str, Any], timeout_s: float, *, idempotent: bool = False, lane: str = "calls") -> Any:
        """POST to the session's endpoint; a session the gateway no longer knows (it expired or the
        gateway restarted: nothing ran) is reopened once and the request sent again."""
        sid = self._session
        if sid is None:
            raise SlotqError("BACKEND_STOPPED", "SlotqBackend is not started: await backend.start() first (or it was stopped)")
        for attempt in range(2):
            status, data = await self._http.request("POST", f"/v1/sessions/{sid}/{op}", body, timeout_s=timeout_s, idempotent=idempotent, lane=lane)
            if status == 200:
                return data
            err = _error_from(status, data)
            if status == 404 and err.code == "BACKEND_STOPPED" and attempt == 0 and self._session is not None:
                sid = await self._open_session(sid)
                continue
            raise err
        raise AssertionError("unreachable")

    # ------------------------------------------------------------------ slots

    async def acquire(self, trajectory_id: Optional[str] = None, *, image: Optional[str] = None, network: Any = None) -> Slot:
        """Acquires a slot for a trajectory (the same trajectory gets the same slot). Waits up to
        ``acquire_timeout_s``, then raises SlotqError(code="NO_SLOT", retryable=True).

        ``image``: the trajectory's own image (a worker makes a container of it on demand; it must be in the
        workers' SLOTQ_IMAGES). A refused or unpullable image raises SlotqError(code="INVALID_ARGS",
        retryable=False) naming it; asking for another image while holding a slot is INVALID_ARGS too."""
        body: Dict[str, Any] = {"timeout_s": self.acquire_timeout_s}
        if trajectory_id is not None:
            body["trajectory_id"] = str(trajectory_id)
        if image is not None:
            body["image"] = image
        if network is not None:  # "none" or {"allow": ["host:port", "10.0.0.0/8", ...]}: enforced by the worker
            body["network"] = network
        data = await self._session_call("acquire", body, self.acquire_timeout_s + 30.0, lane="waits")
        return Slot._from_wire(data["slot"])

    async def release(self, slot: Slot, *, reset_workspace: bool = False) -> None:
        """Releases a slot; with ``reset_workspace`` the next holder gets a pristine container."""
        if not isinstance(slot, Slot):
            raise TypeError(f"release() expects a Slot from acquire(), got {type(slot).__name__}")
        await self._session_call("release", {"slot": slot._to_wire(), "reset_workspace": bool(reset_workspace)}, 60.0)
        slot.state = SlotState.AVAILABLE

    # ------------------------------------------------------------------ calls

    async def execute_batch(self, requests: List[Tuple[Slot, str, Dict[str, Any]]], *, timeout_s: Optional[float] = None) -> List[ExecutionResult]:
        """Runs the calls; returns exactly ``len(requests)`` results in request order and never raises
        for a per-call problem (each is a result with ``success=False`` and ``metadata["code"]``).
        Policy arguments in ``args`` (``allow_network``, ``require_sandbox``, ``require_stateful_sandbox``)
        go to the worker as they are."""
        reqs = list(requests)
        results: List[Optional[ExecutionResult]] = [None] * len(reqs)
        wire: List[Dict[str, Any]] = []
        sent: List[int] = []
        for i, req in enumerate(reqs):
            item, problem = _wire_call(i, req)
            if item is None:
                results[i] = ExecutionResult.failure("INVALID_ARGS", problem, slot_id=_slot_id_of(req))
            else:
                wire.append(item)
                sent.append(i)
        if wire:
            call_timeout = timeout_s if timeout_s is not None else self.default_timeout_s
            body: Dict[str, Any] = {"requests": wire}
            if call_timeout is not None:
                body["timeout_s"] = call_timeout
            answer = await self._send_batch(body, _batch_deadline_s(wire, call_timeout))
            for k, i in enumerate(sent):
                # A call the gateway's answer left out may have run: never retryable.
                results[i] = answer[k] if k < len(answer) else ExecutionResult.failure("INTERNAL", "Missing result in batch response: this call may have run; do not score it or retry it in this workspace", slot_id=wire[k]["slot"].get("slot_id", ""), retryable=False, outcome="unknown")
        return [r for r in results if r is not None]

    async def _send_batch(self, body: Dict[str, Any], deadline_s: float) -> List[ExecutionResult]:
        def all_failed(code: str, message: str, retryable: bool) -> List[ExecutionResult]:
            return [ExecutionResult.failure(code, message, slot_id=str(c["slot"].get("slot_id", "")), retryable=retryable) for c in body["requests"]]

        try:
            data = await self._session_call("execute_batch", body, deadline_s)
        except GatewayUnavailableError as e:
            if not e.may_have_arrived:
                return all_failed(e.code, str(e), True)
            # Sent, and no answer: the calls may have run. Not retryable, and not the model's doing: mask it.
            why = f"{e}. These calls may have run: do not score them and do not retry them in this workspace; discard the trajectory, or release the slot with reset and start over."
            return [ExecutionResult.failure(e.code, why, slot_id=str(c["slot"].get("slot_id", "")), retryable=False, outcome="unknown") for c in body["requests"]]
        except SlotqError as e:
            return all_failed(e.code, str(e), e.retryable)
        return [ExecutionResult._from_wire(r) for r in data.get("results", [])]

    # ------------------------------------------------------------------ artifacts

    async def read_artifact(self, slot: Slot, path: str, *, encoding: str = "text", max_bytes: Optional[int] = None, include_sha256: bool = False, timeout_s: Optional[float] = None) -> Dict[str, Any]:
        body = {"path": path, "encoding": encoding, "include_sha256": include_sha256, "max_bytes": max_bytes, "timeout_s": timeout_s}
        return await self._artifact("read_artifact", slot, body, timeout_s, lambda c, m: art.read_failure(c, m, encoding))

    async def list_artifacts(self, slot: Slot, path: str = ".", *, recursive: bool = False, max_entries: Optional[int] = None, timeout_s: Optional[float] = None) -> Dict[str, Any]:
        body = {"path": path, "recursive": recursive, "max_entries": max_entries, "timeout_s": timeout_s}
        return await self._artifact("list_artifacts", slot, body, timeout_s, art.list_failure)

    async def archive_artifacts(self, slot: Slot, path: str = ".", *, archive_format: str = "tar.gz", max_bytes: Optional[int] = None, max_entries: Optional[int] = None, timeout_s: Optional[float] = None) -> Dict[str, Any]:
        body = {"path": path, "archive_format": archive_format, "max_bytes": max_bytes, "max_entries": max_entries, "timeout_s": timeout_s}
        return await self._artifact("archive_artifacts", slot, body, timeout_s, art.archive_failure)

    async def _artifact(self, op: str, slot: Slot, body: Dict[str, Any], timeout_s: Optional[float], failed: Any) -> Dict[str, Any]:
        problem = art.check_args(slot, body)
        if problem:
            return failed("INVALID_ARGS", problem)
        body = {k: v for k, v in body.items() if v is not None}
        body["slot"] = slot._to_wire()
        t = timeout_s if timeout_s is not None else (self.default_timeout_s or DEFAULT_CALL_TIMEOUT_S)
        try:
            return dict(await self._session_call(op, body, _clamp(t) + ANSWER_MARGIN_S))
        except SlotqError as e:
            d = failed(e.code, str(e))
            d["retryable"] = e.retryable
            return d


def _slot_id_of(req: Any) -> str:
    if isinstance(req, (tuple, list)) and req and isinstance(req[0], Slot):
        return req[0].slot_id
    return ""


def _wire_call(i: int, req: Any) -> Tuple[Optional[Dict[str, Any]], str]:
    """One request as the gateway takes it, or (None, why) for a malformed one (a per-call result)."""
    if not isinstance(req, (tuple, list)) or len(req) not in (2, 3):
        return None, f"Request {i} is not a (slot, tool, args) tuple"
    slot, tool = req[0], req[1]
    args = req[2] if len(req) == 3 else {}
    if not isinstance(slot, Slot):
        return None, f"Request {i}: slot is not a Slot from acquire() (got {type(slot).__name__})"
    if not isinstance(tool, str):
        return None, f"Request {i}: tool must be a string (got {type(tool).__name__})"
    if args is None:
        args = {}
    if not isinstance(args, dict):
        return None, f"Request {i}: args must be a dict (got {type(args).__name__})"
    try:
        json.dumps(args)
    except (TypeError, ValueError) as e:
        return None, f"Request {i}: args are not JSON-serialisable: {e}"
    return {"slot": slot._to_wire(), "tool": tool, "args": args}, ""


def _batch_deadline_s(wire: Sequence[Dict[str, Any]], call_timeout: Optional[float]) -> float:
    """Calls of one slot run one after another: the slowest slot's sum of timeouts, plus a margin."""
    per_slot: Dict[str, float] = {}
    base = call_timeout if call_timeout is not None else DEFAULT_CALL_TIMEOUT_S
    for c in wire:
        t = c["args"].get("timeout")
        t = float(t) if isinstance(t, (int, float)) and not isinstance(t, bool) else base
        sid = str(c["slot"].get("slot_id"))
        per_slot[sid] = per_slot.get(sid, 0.0) + _clamp(t) + 1.0
    return max(per_slot.values()) + ANSWER_MARGIN_S
