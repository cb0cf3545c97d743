"""The seed's data types: Slot, ExecutionResult and ToolResult (original-system.md §1, §2)."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Dict, Optional


class SlotState(str, Enum):
    AVAILABLE = "available"
    ACQUIRED = "acquired"
    EXECUTING = "executing"
    RELEASING = "releasing"
    ERROR = "error"


@dataclass
class Slot:
    """A held slot. ``slot_id`` and ``container_addr`` are strings; ``alloc_id`` is the owning worker.

    ``metadata`` carries what the gateway needs to recognise the slot (worker, container, lease):
    pass the Slot back as you got it.
    """

    slot_id: str
    alloc_id: str
    container_addr: str
    workspace_dir: str = ""
    state: SlotState = SlotState.ACQUIRED
    trajectory_id: Optional[str] = None
    metadata: Dict[str, Any] = field(default_factory=dict)

    @property
    def is_available(self) -> bool:
        return self.state == SlotState.AVAILABLE

    @property
    def is_acquired(self) -> bool:
        return self.state in (SlotState.ACQUIRED, SlotState.EXECUTING)

    def to_dict(self) -> Dict[str, Any]:
        return {
            "slot_id": self.slot_id,
            "alloc_id": self.alloc_id,
            "container_addr": self.container_addr,
            "workspace_dir": self.workspace_dir,
            "state": self.state.value,
            "trajectory_id": self.trajectory_id,
            "metadata": dict(self.metadata),
        }

    @classmethod
    def from_dict(cls, d: Dict[str, Any]) -> "Slot":
        return cls(
            slot_id=str(d["slot_id"]),
            alloc_id=str(d.get("alloc_id", "")),
            container_addr=str(d.get("container_addr", "")),
            workspace_dir=str(d.get("workspace_dir", "")),
            state=SlotState(d.get("state", SlotState.ACQUIRED.value)),
            trajectory_id=d.get("trajectory_id"),
            metadata=dict(d.get("metadata") or {}),
        )

    @classmethod
    def _from_wire(cls, w: Dict[str, Any]) -> "Slot":
        return cls(
            slot_id=str(w["slot_id"]),
            alloc_id=str(w["worker_id"]),
            container_addr=str(w["container_addr"]),
            workspace_dir=str(w.get("workspace_dir", "")),
            state=SlotState.ACQUIRED,
            trajectory_id=w.get("trajectory_id"),
            metadata={
                "worker_id": w["worker_id"],
                "container_id": w.get("container_id", ""),
                "lease_id": w["lease_id"],
                "acquired_at_ms": w.get("acquired_at_ms", 0),
            },
        )

    def _to_wire(self) -> Dict[str, Any]:
        m = self.metadata
        return {
            "slot_id": self.slot_id,
            "worker_id": m.get("worker_id", self.alloc_id),
            "container_id": m.get("container_id", ""),
            "container_addr": self.container_addr,
            "workspace_dir": self.workspace_dir,
            "trajectory_id": self.trajectory_id,
            "lease_id": m.get("lease_id"),
            "acquired_at_ms": m.get("acquired_at_ms", 0),
        }


@dataclass
class ToolResult:
    """What the model sees: ``to_xml()`` is the original's ``<tool_response>{json}</tool_response>``."""

    success: bool
    output: str = ""
    error: str = ""
    metadata: Dict[str, Any] = field(default_factory=dict)
    uniq_id: Optional[str] = None

    def to_dict(self) -> Dict[str, Any]:
        data: Dict[str, Any] = {"success": self.success, "output": self.output}
        if self.uniq_id:
            data["uniq_id"] = self.uniq_id
        if self.error:
            data["error"] = self.error
        if self.metadata:
            data["metadata"] = self.metadata
        return data

    def to_xml(self) -> str:
        return "<tool_response>" + json.dumps(self.to_dict()) + "</tool_response>"


@dataclass
class ExecutionResult:
    """One call's result (the seed's fields). ``metadata`` holds ``exit_code``, ``timeout`` (with
    ``exit_code: -1``), ``stateful``, ``duration_ms``, ``truncated``, and on failure ``code`` and ``retryable``."""

    success: bool
    output: str = ""
    error: str = ""
    execution_id: str = ""
    slot_id: str = ""
    metadata: Dict[str, Any] = field(default_factory=dict)

    def to_tool_result(self) -> ToolResult:
        return ToolResult(success=self.success, output=self.output, error=self.error, metadata=self.metadata, uniq_id=self.execution_id)

    @classmethod
    def _from_wire(cls, w: Dict[str, Any]) -> "ExecutionResult":
        return cls(
            success=bool(w.get("success", False)),
            output=str(w.get("output", "")),
            error=str(w.get("error", "")),
            execution_id=str(w.get("execution_id", "")),
            slot_id=str(w.get("slot_id", "")),
            metadata=dict(w.get("metadata") or {}),
        )

    @classmethod
    def failure(cls, code: str, error: str, *, slot_id: str = "", retryable: bool = False, outcome: Optional[str] = None) -> "ExecutionResult":
        """A failed result made by the client itself (a call it could not send or get an answer for);
        ``outcome="unknown"`` when the call may have run."""
        metadata: Dict[str, Any] = {"code": code, "retryable": retryable}
        if outcome is not None:
            metadata["outcome"] = outcome
        return cls(success=False, output="", error=error, execution_id=str(uuid.uuid4()), slot_id=slot_id, metadata=metadata)


@dataclass
class ExecResult:
    """What ``exec`` returns: the command's exit code and its stdout and stderr apart (UTF-8, invalid bytes
    replaced; ``*_bytes`` are the sizes before any truncation). ``timed_out`` (with ``exit_code == -1``):
    the command ran past its timeout and was killed with its children. ``code`` is set when the call
    itself failed (the command may not have run): a contract code with ``retryable`` and ``error``;
    ``outcome == "unknown"`` when it may have run."""

    exit_code: int
    stdout: str = ""
    stderr: str = ""
    stdout_bytes: int = 0
    stderr_bytes: int = 0
    timed_out: bool = False
    truncated: bool = False
    duration_ms: float = 0
    code: Optional[str] = None
    retryable: Optional[bool] = None
    outcome: Optional[str] = None
    error: Optional[str] = None

    @property
    def ok(self) -> bool:
        """The command ran to the end and exited 0."""
        return self.code is None and not self.timed_out and self.exit_code == 0

    @classmethod
    def _from_wire(cls, w: Dict[str, Any]) -> "ExecResult":
        def opt_str(k: str) -> Optional[str]:
            v = w.get(k)
            return None if v is None else str(v)

        retryable = w.get("retryable")
        return cls(
            exit_code=int(w.get("exit_code", -1)),
            stdout=str(w.get("stdout", "")),
            stderr=str(w.get("stderr", "")),
            stdout_bytes=int(w.get("stdout_bytes", 0)),
            stderr_bytes=int(w.get("stderr_bytes", 0)),
            timed_out=bool(w.get("timed_out", False)),
            truncated=bool(w.get("truncated", False)),
            duration_ms=float(w.get("duration_ms", 0)),
            code=opt_str("code"),
            retryable=None if retryable is None else bool(retryable),
            outcome=opt_str("outcome"),
            error=opt_str("error"),
        )

    @classmethod
    def failure(cls, code: str, error: str, *, retryable: bool, outcome: Optional[str] = None) -> "ExecResult":
        """A failed exec made by the client (a call it could not send or got no answer for)."""
        return cls(exit_code=-1, code=code, retryable=retryable, outcome=outcome, error=error)
