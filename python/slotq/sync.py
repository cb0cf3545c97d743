"""SlotqSyncBackend: SlotqBackend for harnesses that are not async.

Design: the sync backend runs one SlotqBackend on a private event loop in a daemon thread and hands each
call to it (``asyncio.run_coroutine_threadsafe``), blocking the caller until it answers. Chosen over a
second, blocking HTTP stack because:

* there is one implementation of every call (session reopening, timeouts, the typed errors, transfers),
  so the two cannot drift; the sync class is only signatures;
* the session's keepalive keeps running on that loop while the harness does other work between calls
  (a blocking client would let the session expire unless every call renewed it);
* many threads of a harness may call one SlotqSyncBackend at once: their calls run concurrently on the
  loop over the shared connection pool, as tasks of an async harness would.

The cost is one thread per backend. Do not call it from inside a running event loop's thread with the
intent of awaiting: use SlotqBackend there (calling it from a coroutine blocks that loop until it answers).
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any, Coroutine, Dict, List, Optional, Sequence, Tuple, TypeVar, Union

from .backend import SlotqBackend
from .errors import SlotqError
from .types import ExecResult, ExecutionResult, Slot

T = TypeVar("T")
User = Union[str, int]


class SlotqSyncBackend:
    """The same methods as SlotqBackend, blocking; takes the same constructor arguments. A context manager::

        with SlotqSyncBackend() as backend:
            slot = backend.acquire("trajectory-42")
            res = backend.exec(slot, ["python3", "-c", "print(1)"], cwd="/tests")
            backend.release(slot, reset_workspace=True)
    """

    def __init__(self, url: Optional[str] = None, token: Optional[str] = None, **kwargs: Any) -> None:
        self.backend = SlotqBackend(url, token, **kwargs)
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._thread: Optional[threading.Thread] = None
        self._guard = threading.Lock()

    # ------------------------------------------------------------------ the private loop

    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        with self._guard:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(target=loop.run_forever, name="slotq-sync-backend", daemon=True)
                thread.start()
                self._loop, self._thread = loop, thread
            return self._loop

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        loop = self._loop
        if loop is None:
            coro.close()
            raise SlotqError("BACKEND_STOPPED", "SlotqSyncBackend is not started: call backend.start() first (or use it as a context manager)")
        fut = asyncio.run_coroutine_threadsafe(coro, loop)
        try:
            return fut.result()
        except BaseException:
            fut.cancel()  # interrupted (KeyboardInterrupt): do not leave the call running on the loop
            raise

    def _close_loop(self) -> None:
        with self._guard:
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
        if loop is not None:
            loop.call_soon_threadsafe(loop.stop)
            if thread is not None:
                thread.join(30)
            loop.close()

    # ------------------------------------------------------------------ lifecycle

    @property
    def url(self) -> str:
        return self.backend.url

    @property
    def default_timeout_s(self) -> Optional[float]:
        return self.backend.default_timeout_s

    def start(self) -> None:
        self._ensure_loop()
        try:
            self._run(self.backend.start())
        except BaseException:
            self._close_loop()
            raise

    def stop(self, *, purge: bool = False) -> None:
        """Closes the session (slots released with reset) and the private loop's thread."""
        if self._loop is None:
            return
        try:
            self._run(self.backend.stop(purge=purge))
        finally:
            self._close_loop()

    def __enter__(self) -> "SlotqSyncBackend":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ slots and model tools

    def acquire(self, trajectory_id: Optional[str] = None, *, image: Optional[str] = None, network: Any = None) -> Slot:
        return self._run(self.backend.acquire(trajectory_id, image=image, network=network))

    def release(self, slot: Slot, *, reset_workspace: bool = False) -> None:
        self._run(self.backend.release(slot, reset_workspace=reset_workspace))

    def execute_batch(self, requests: List[Tuple[Slot, str, Dict[str, Any]]], *, timeout_s: Optional[float] = None) -> List[ExecutionResult]:
        return self._run(self.backend.execute_batch(requests, timeout_s=timeout_s))

    # ------------------------------------------------------------------ harness surface

    def exec(self, slot: Slot, command: Union[str, Sequence[str]], cwd: Optional[str] = None, env: Optional[Dict[str, str]] = None, user: Optional[User] = None, stdin: Union[str, bytes, None] = None, timeout_s: Optional[float] = None) -> ExecResult:
        return self._run(self.backend.exec(slot, command, cwd, env, user, stdin, timeout_s))

    def write_file_bytes(self, slot: Slot, path: str, data: Union[bytes, str], mode: Optional[int] = None, user: Optional[User] = None, *, timeout_s: Optional[float] = None) -> None:
        self._run(self.backend.write_file_bytes(slot, path, data, mode, user, timeout_s=timeout_s))

    def read_file_bytes(self, slot: Slot, path: str, user: Optional[User] = None, max_bytes: Optional[int] = None, *, timeout_s: Optional[float] = None) -> bytes:
        return self._run(self.backend.read_file_bytes(slot, path, user, max_bytes, timeout_s=timeout_s))

    def upload_dir(self, slot: Slot, local_dir: str, target_dir: str, user: Optional[User] = None, *, timeout_s: Optional[float] = None) -> None:
        self._run(self.backend.upload_dir(slot, local_dir, target_dir, user, timeout_s=timeout_s))

    def download_dir(self, slot: Slot, path: str, local_dir: str, user: Optional[User] = None, max_bytes: Optional[int] = None, *, timeout_s: Optional[float] = None) -> List[str]:
        return self._run(self.backend.download_dir(slot, path, local_dir, user, max_bytes, timeout_s=timeout_s))

    # ------------------------------------------------------------------ artifacts

    def read_artifact(self, slot: Slot, path: str, **kwargs: Any) -> Dict[str, Any]:
        return self._run(self.backend.read_artifact(slot, path, **kwargs))

    def list_artifacts(self, slot: Slot, path: str = ".", **kwargs: Any) -> Dict[str, Any]:
        return self._run(self.backend.list_artifacts(slot, path, **kwargs))

    def archive_artifacts(self, slot: Slot, path: str = ".", **kwargs: Any) -> Dict[str, Any]:
        return self._run(self.backend.archive_artifacts(slot, path, **kwargs))
