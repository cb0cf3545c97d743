"""Harbor on slotq: ``SlotqEnvironment``, a Harbor ``BaseEnvironment`` (async) whose container is a slot.

The task's docker image (``image=``, else ``task_env_config.docker_image``) becomes ``acquire(image=...)``; None
takes the worker's own image. Harbor's other constructor arguments (``environment_dir``, ``environment_name``,
``session_id``, ``trial_paths``, ``task_env_config``, ``logger``, ...) are accepted; when Harbor is importable the
class subclasses ``harbor.environments.base.BaseEnvironment`` and hands them to it.

``can_disable_internet`` is known after ``start()``: the worker reports ``metadata.network_isolated`` on every
tool result, and start() runs one ``bash`` tool call (``true``) to read it. True only on a worker with
``SLOTQ_NETWORK=none``; slotq cannot cut the network of one slot on demand.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from dataclasses import dataclass
from typing import Any, Dict, Optional

from ..backend import SlotqBackend
from ..errors import SlotqError
from ..types import Slot

try:  # Harbor's own base class and result type when it is installed (pip install harbor)
    from harbor.environments.base import BaseEnvironment as _Base  # type: ignore[import-not-found]
    from harbor.environments.base import ExecResult as _HarborExecResult  # type: ignore[import-not-found]
except ImportError:
    _Base = object
    _HarborExecResult = None


@dataclass
class LocalExecResult:
    """Stand-in for Harbor's ExecResult when Harbor is not installed."""

    stdout: Optional[str] = None
    stderr: Optional[str] = None
    return_code: int = 0


def _exec_result(stdout: str, stderr: str, return_code: int) -> Any:
    cls = _HarborExecResult or LocalExecResult
    return cls(stdout=stdout, stderr=stderr, return_code=return_code)


class SlotqEnvironment(_Base):  # type: ignore[misc, valid-type]
    """One trial's environment: ``start`` acquires the slot, ``stop`` releases it (with reset) and closes the
    session. Commands and transfers run as ``default_user`` (root, as in Harbor's docker containers, so /tests and
    /logs can be written; None: the slot's user) unless ``exec(user=)`` says otherwise. ``exec`` runs under the image's ``sh -c``; a timeout is return code 124 (the GNU ``timeout``
    convention), with the partial output, not an exception."""

    def __init__(self, *, image: Optional[str] = None, url: Optional[str] = None, token: Optional[str] = None, trajectory_id: Optional[str] = None, default_user: Any = "root", **kwargs: Any) -> None:
        if _Base is not object:
            super().__init__(**kwargs)
        self.harbor_kwargs = kwargs
        task_env = kwargs.get("task_env_config")
        self.image: Optional[str] = image or getattr(task_env, "docker_image", None) or None
        self.trajectory_id = trajectory_id or str(kwargs.get("session_id") or f"harbor-{uuid.uuid4().hex[:12]}")
        self.default_user = default_user
        self.backend = SlotqBackend(url, token)
        self.slot: Optional[Slot] = None
        self._network_isolated: Optional[bool] = None

    # ------------------------------------------------------------------ what Harbor asks of an environment

    @staticmethod
    def type() -> str:
        return "slotq"

    @property
    def is_mounted(self) -> bool:
        return False  # nothing is bind-mounted: logs come back through download_dir

    @property
    def supports_gpus(self) -> bool:
        return False

    @property
    def can_disable_internet(self) -> bool:
        return bool(self._network_isolated)

    def _validate_definition(self) -> None:
        """Nothing to check: the image is the task's docker_image, built beforehand (no Dockerfile builds)."""

    # ------------------------------------------------------------------ lifecycle

    async def start(self, force_build: bool = False) -> None:
        """Acquires the slot. ``force_build`` is ignored: slotq does not build images."""
        if self.slot is not None:
            return
        await self.backend.start()
        self.slot = await self.backend.acquire(self.trajectory_id, image=self.image)
        [probe] = await self.backend.execute_batch([(self.slot, "bash", {"command": "true"})])
        self._network_isolated = probe.metadata.get("network_isolated") is True

    async def stop(self, delete: bool = True) -> None:
        """Releases the slot with reset (``delete`` or not: the workspace is not kept) and closes the session."""
        slot, self.slot = self.slot, None
        try:
            if slot is not None:
                await self.backend.release(slot, reset_workspace=True)
        finally:
            await self.backend.stop()

    def _held(self) -> Slot:
        if self.slot is None:
            raise SlotqError("BACKEND_STOPPED", "SlotqEnvironment is not started: await env.start() first")
        return self.slot

    # ------------------------------------------------------------------ exec and files

    async def exec(self, command: str, cwd: Optional[str] = None, env: Optional[Dict[str, str]] = None, timeout_sec: Optional[int] = None, user: Any = None) -> Any:
        r = await self.backend.exec(self._held(), command, cwd=cwd, env=env, user=self.default_user if user is None else user, timeout_s=timeout_sec)
        if r.timed_out:
            return _exec_result(r.stdout, r.stderr, 124)
        if r.code is not None:
            raise SlotqError(r.code, r.error or r.code, retryable=r.retryable)
        return _exec_result(r.stdout, r.stderr, r.exit_code)

    async def upload_file(self, source_path: Any, target_path: str) -> None:
        with open(source_path, "rb") as f:
            data = f.read()
        await self.backend.write_file_bytes(self._held(), target_path, data, mode=os.stat(source_path).st_mode & 0o777, user=self.default_user)

    async def upload_dir(self, source_dir: Any, target_dir: str) -> None:
        await self.backend.upload_dir(self._held(), str(source_dir), target_dir, user=self.default_user)

    async def download_file(self, source_path: str, target_path: Any) -> None:
        data = await self.backend.read_file_bytes(self._held(), source_path, user=self.default_user)
        parent = os.path.dirname(os.path.abspath(target_path))
        os.makedirs(parent, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=parent, delete=False) as f:
            f.write(data)
        os.replace(f.name, target_path)

    async def download_dir(self, source_dir: str, target_dir: Any) -> None:
        await self.backend.download_dir(self._held(), source_dir, str(target_dir), user=self.default_user)

    def __repr__(self) -> str:
        return f"SlotqEnvironment(image={self.image!r}, trajectory_id={self.trajectory_id!r}, slot={self.slot.slot_id if self.slot else None!r})"
