"""mini-swe-agent on slotq: ``SlotqEnvironment``, a drop-in for mini-swe-agent's ``DockerEnvironment``.

Config (keyword arguments, as ``DockerEnvironmentConfig``): ``image`` (None: the worker's own image), ``cwd``,
``env`` (values expanded with ``os.path.expandvars`` on the host, as the docker env does), ``forward_env``
(names read from ``os.environ`` when set; ``env`` wins on conflict), ``timeout`` (seconds per command), and
slotq's ``url``, ``token``, ``trajectory_id``. The docker env's ``executable``, ``run_args``,
``container_timeout`` and ``pull_timeout`` are accepted and ignored (slotq's worker owns the container).

Output: like the docker env (``bash -lc`` with stderr into stdout), the command runs as
``bash -lc 'exec 2>&1' + command`` so its stdout and stderr interleave in one stream, in order; anything the
login shell itself printed to stderr before that line is appended.

Both call styles: ``execute({"command": ...}, cwd="", timeout=None)`` (v2) returns
``{"output", "returncode", "exception_info"}``, returncode -1 on a timeout (exception_info says so) and raises
``Submitted`` when the output's first line is ``COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT`` and the command exited
0 (what v2's environments check in ``_check_finished``). ``execute("cmd", cwd="")`` (v1) returns
``{"output", "returncode"}`` and raises ``subprocess.TimeoutExpired`` on a timeout, as v1's docker env did; v1's
agent checks the sentinel itself, so it is not raised here.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from typing import Any, Dict, List, Optional, Union

from ..sync import SlotqSyncBackend
from ..types import ExecResult, Slot

SUBMIT_SENTINEL = "COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT"
_IGNORED = ("executable", "run_args", "container_timeout", "pull_timeout")


class _LocalSubmitted(Exception):
    """Stand-in for ``minisweagent.exceptions.Submitted`` when mini-swe-agent is not installed;
    ``args[0]`` is the same exit message dict (``role``, ``content``, ``extra``)."""


def submitted_class() -> type:
    """mini-swe-agent's ``Submitted`` (v2) when importable, else the local stand-in."""
    try:
        from minisweagent.exceptions import Submitted  # type: ignore[import-not-found]
    except ImportError:
        return _LocalSubmitted
    return Submitted  # type: ignore[no-any-return]


class SlotqEnvironment:
    """A mini-swe-agent environment whose commands run in a slotq slot (acquired on first use, released with
    reset on ``close()``; ``cleanup()`` and ``__del__`` call it)."""

    def __init__(self, *, image: Optional[str] = None, cwd: str = "/", env: Optional[Dict[str, str]] = None, forward_env: Optional[List[str]] = None, timeout: int = 30, url: Optional[str] = None, token: Optional[str] = None, trajectory_id: Optional[str] = None, logger: Any = None, config_class: Any = None, **ignored: Any) -> None:
        unknown = sorted(set(ignored) - set(_IGNORED))
        if unknown:
            raise TypeError(f"SlotqEnvironment: unknown config {', '.join(unknown)}")
        self.config: Dict[str, Any] = {"image": image, "cwd": cwd, "env": dict(env or {}), "forward_env": list(forward_env or []), "timeout": timeout, "url": url, "trajectory_id": trajectory_id or f"mini-swe-agent-{uuid.uuid4().hex[:12]}"}
        self.logger = logger
        self._token = token
        self._backend: Optional[SlotqSyncBackend] = None
        self._slot: Optional[Slot] = None

    def get_template_vars(self, **kwargs: Any) -> Dict[str, Any]:
        """The config as a dict (the token left out), merged with ``kwargs``."""
        return {**self.config, **kwargs}

    def serialize(self) -> Dict[str, Any]:
        return {"info": {"config": {"environment": dict(self.config), "environment_type": f"{type(self).__module__}.{type(self).__name__}"}}}

    # ------------------------------------------------------------------ slot

    def _ensure_slot(self) -> Slot:
        if self._slot is None:
            if self._backend is None:
                backend = SlotqSyncBackend(self.config["url"], self._token)
                backend.start()
                self._backend = backend
            self._slot = self._backend.acquire(self.config["trajectory_id"], image=self.config["image"])
        return self._slot

    def close(self) -> None:
        """Releases the slot (with reset) and closes the gateway session. Idempotent."""
        backend, slot = self._backend, self._slot
        self._backend = self._slot = None
        if backend is None:
            return
        try:
            if slot is not None:
                backend.release(slot, reset_workspace=True)
        finally:
            backend.stop()

    cleanup = close

    def __del__(self) -> None:
        if getattr(self, "_backend", None) is not None:
            self.close()

    # ------------------------------------------------------------------ execute

    def _env(self) -> Dict[str, str]:
        env = {k: os.environ[k] for k in self.config["forward_env"] if k in os.environ}
        env.update({k: os.path.expandvars(str(v)) for k, v in self.config["env"].items()})
        return env

    def execute(self, action: Union[Dict[str, Any], str], cwd: str = "", *, timeout: Optional[int] = None) -> Dict[str, Any]:
        v2 = isinstance(action, dict)
        command = str(action.get("command", "")) if isinstance(action, dict) else str(action)
        limit_s = timeout or self.config["timeout"]
        r = self._run(command, cwd or self.config["cwd"], limit_s)
        output = merged_output(r)
        if not v2:
            if r.timed_out:
                raise subprocess.TimeoutExpired(command, limit_s, output=output)
            return {"output": output, "returncode": r.exit_code}
        if r.timed_out:
            return {"output": output, "returncode": -1, "exception_info": f"An error occurred while executing the command: Command timed out after {limit_s} seconds", "extra": {"exception_type": "TimeoutError"}}
        if r.code is not None:
            return {"output": output, "returncode": -1, "exception_info": f"An error occurred while executing the command: {r.code}: {r.error}", "extra": {"exception_type": "SlotqError", "code": r.code, "retryable": r.retryable}}
        result = {"output": output, "returncode": r.exit_code, "exception_info": ""}
        check_finished(result)
        return result

    def _run(self, command: str, cwd: str, timeout_s: float) -> ExecResult:
        slot = self._ensure_slot()
        assert self._backend is not None
        return self._backend.exec(slot, ["bash", "-lc", "exec 2>&1\n" + command], cwd=cwd, env=self._env(), timeout_s=timeout_s)


def merged_output(r: ExecResult) -> str:
    """stdout (stderr already in it) plus whatever reached stderr before the redirect."""
    return r.stdout + r.stderr


def check_finished(output: Dict[str, Any]) -> None:
    """Raises Submitted when the output's first line is the submit sentinel and the command exited 0."""
    lines = str(output.get("output", "")).lstrip().splitlines(keepends=True)
    if lines and lines[0].strip() == SUBMIT_SENTINEL and output.get("returncode") == 0:
        submission = "".join(lines[1:])
        raise submitted_class()({"role": "exit", "content": submission, "extra": {"exit_status": "Submitted", "submission": submission}})
