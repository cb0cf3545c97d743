"""inspect_ai on slotq: a sandbox environment named ``"slotq"`` (``sandbox="slotq"`` or ``("slotq", config)``).

Registered with ``@sandboxenv(name="slotq")`` when inspect_ai is importable (the package's
``inspect_ai`` entry point loads this module); without it the class works standalone with the same methods.

``config``: None (the worker's own image), an image name (str), or a dict / object with ``image``, ``url``,
``token``, ``user``. Each sample gets its own gateway session and slot: ``sample_cleanup`` releases the slot with
reset and closes the session, interrupted or not, so an interrupted sample leaks nothing (and a session that
is never closed expires with its slots after its TTL). Relative paths are relative to /workspace.
"""

from __future__ import annotations

import posixpath
import uuid
from dataclasses import dataclass
from typing import Any, Dict, Generic, List, Optional, TypeVar, Union

from ..backend import SlotqBackend
from ..errors import SlotqError
from ..types import Slot

WORKSPACE = "/workspace"
T = TypeVar("T")

try:  # inspect_ai's own base class, result type and registry when it is installed (pip install inspect-ai)
    from inspect_ai.util import ExecResult as _InspectExecResult  # type: ignore[import-not-found]
    from inspect_ai.util import SandboxEnvironment as _Base  # type: ignore[import-not-found]
    from inspect_ai.util import sandboxenv as _sandboxenv  # type: ignore[import-not-found]
except ImportError:
    _Base = object
    _InspectExecResult = None
    _sandboxenv = None


@dataclass
class LocalExecResult(Generic[T]):
    """Stand-in for inspect_ai's ExecResult when inspect_ai is not installed."""

    success: bool
    returncode: int
    stdout: T
    stderr: T


def _exec_result(success: bool, returncode: int, stdout: str, stderr: str) -> Any:
    cls = _InspectExecResult or LocalExecResult
    return cls(success=success, returncode=returncode, stdout=stdout, stderr=stderr)


def _config_value(config: Any, key: str) -> Any:
    if isinstance(config, dict):
        return config.get(key)
    return getattr(config, key, None)


def absolute(path: str) -> str:
    """A sandbox path as the worker takes it: relative ones are under /workspace."""
    return posixpath.normpath(path if path.startswith("/") else posixpath.join(WORKSPACE, path))


class SlotqSandboxEnvironment(_Base):  # type: ignore[misc, valid-type]
    """One sample's sandbox: a slot of its own on its own gateway session."""

    def __init__(self, backend: SlotqBackend, slot: Slot, user: Any = None) -> None:
        if _Base is not object:
            super().__init__()
        self.backend = backend
        self.slot = slot
        self.user = user

    # ------------------------------------------------------------------ lifecycle (classmethods)

    @classmethod
    def config_files(cls) -> List[str]:
        return []

    @classmethod
    def default_concurrency(cls) -> Optional[int]:
        return None  # the workers' slots bound it: an acquire waits for a free slot

    @classmethod
    async def task_init(cls, task_name: str, config: Any) -> None:
        """Nothing to prepare: images are the workers' (SLOTQ_IMAGE / SLOTQ_IMAGES)."""

    @classmethod
    async def sample_init(cls, task_name: str, config: Any, metadata: Dict[str, str]) -> Dict[str, Any]:
        image = config if isinstance(config, str) else _config_value(config, "image")
        backend = SlotqBackend(_config_value(config, "url"), _config_value(config, "token"))
        await backend.start()
        try:
            slot = await backend.acquire(f"inspect-{task_name}-{uuid.uuid4().hex[:12]}", image=image)
        except BaseException:
            await backend.stop()
            raise
        return {"default": cls(backend, slot, _config_value(config, "user"))}

    @classmethod
    async def sample_cleanup(cls, task_name: str, config: Any, environments: Dict[str, Any], interrupted: bool) -> None:
        """Releases every slot with reset and closes its session, interrupted or not."""
        for env in environments.values():
            if isinstance(env, SlotqSandboxEnvironment):
                await env.close()

    @classmethod
    async def task_cleanup(cls, task_name: str, config: Any, cleanup: bool) -> None:
        """Nothing left: every sample's session was closed by sample_cleanup (or expires by its TTL)."""

    @classmethod
    async def cli_cleanup(cls, id: Optional[str]) -> None:
        """Nothing to clean: a lost session's slots come back to the pool when its TTL runs out."""

    async def close(self) -> None:
        slot, self.slot = self.slot, None  # type: ignore[assignment]
        try:
            if slot is not None:
                await self.backend.release(slot, reset_workspace=True)
        finally:
            await self.backend.stop()

    # ------------------------------------------------------------------ exec and files

    async def exec(self, cmd: List[str], input: Union[str, bytes, None] = None, cwd: Optional[str] = None, env: Optional[Dict[str, str]] = None, user: Optional[str] = None, timeout: Optional[int] = None, **kwargs: Any) -> Any:
        """Runs ``cmd`` as argv; raises TimeoutError past ``timeout`` and SlotqError when the call itself failed."""
        r = await self.backend.exec(self._held(), list(cmd), cwd=None if cwd is None else absolute(cwd), env=env, user=user if user is not None else self.user, stdin=input, timeout_s=timeout)
        if r.timed_out:
            raise TimeoutError(f"Command timed out after {timeout} seconds: {cmd!r}")
        if r.code is not None:
            raise SlotqError(r.code, r.error or r.code, retryable=r.retryable)
        return _exec_result(r.exit_code == 0, r.exit_code, r.stdout, r.stderr)

    async def write_file(self, file: str, contents: Union[str, bytes]) -> None:
        """Makes the parent directories. FileNotFoundError, PermissionError, IsADirectoryError as inspect expects."""
        await self.backend.write_file_bytes(self._held(), absolute(file), contents, user=self.user)

    async def read_file(self, file: str, text: bool = True) -> Union[str, bytes]:
        data = await self.backend.read_file_bytes(self._held(), absolute(file), user=self.user)
        return data.decode("utf-8") if text else data

    def _held(self) -> Slot:
        if self.slot is None:
            raise SlotqError("BACKEND_STOPPED", "this slotq sandbox was cleaned up")
        return self.slot


if _sandboxenv is not None:
    SlotqSandboxEnvironment = _sandboxenv(name="slotq")(SlotqSandboxEnvironment)  # type: ignore[misc]
