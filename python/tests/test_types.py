"""Offline: the seed protocol's exact signatures, and the result types (to_xml byte for byte)."""

from __future__ import annotations

import inspect
import json
import unittest
from typing import Any, Dict, List, Optional, Protocol, Tuple, runtime_checkable

import live  # noqa: F401  (puts python/ on sys.path)
from slotq import ExecutionResult, Slot, SlotqBackend, SlotState, ToolResult

E = inspect.Parameter.empty
POS = inspect.Parameter.POSITIONAL_OR_KEYWORD
KW = inspect.Parameter.KEYWORD_ONLY

#: The seed's ToolBackend (shared/spec/seed/toolbackend_base.py): name → [(param, kind, default)].
SEED = {
    "start": [],
    "stop": [("purge", KW, False)],
    "acquire": [("trajectory_id", POS, None)],
    "release": [("slot", POS, E), ("reset_workspace", KW, False)],
    "execute_batch": [("requests", POS, E), ("timeout_s", KW, None)],
    "read_artifact": [("slot", POS, E), ("path", POS, E), ("encoding", KW, "text"), ("max_bytes", KW, None), ("include_sha256", KW, False), ("timeout_s", KW, None)],
    "list_artifacts": [("slot", POS, E), ("path", POS, "."), ("recursive", KW, False), ("max_entries", KW, None), ("timeout_s", KW, None)],
    "archive_artifacts": [("slot", POS, E), ("path", POS, "."), ("archive_format", KW, "tar.gz"), ("max_bytes", KW, None), ("max_entries", KW, None), ("timeout_s", KW, None)],
}


@runtime_checkable
class ToolBackend(Protocol):
    """The seed protocol, as a runtime-checkable Protocol."""

    @property
    def default_timeout_s(self) -> Optional[float]: ...

    async def start(self) -> None: ...

    async def stop(self, *, purge: bool = False) -> None: ...

    async def acquire(self, trajectory_id: Optional[str] = None) -> Slot: ...

    async def release(self, slot: Slot, *, reset_workspace: bool = False) -> None: ...

    async def execute_batch(self, requests: List[Tuple[Slot, str, Dict[str, Any]]], *, timeout_s: Optional[float] = None) -> List[ExecutionResult]: ...

    async def read_artifact(self, slot: Slot, path: str, *, encoding: str = "text", max_bytes: Optional[int] = None, include_sha256: bool = False, timeout_s: Optional[float] = None) -> Dict[str, Any]: ...

    async def list_artifacts(self, slot: Slot, path: str = ".", *, recursive: bool = False, max_entries: Optional[int] = None, timeout_s: Optional[float] = None) -> Dict[str, Any]: ...

    async def archive_artifacts(self, slot: Slot, path: str = ".", *, archive_format: str = "tar.gz", max_bytes: Optional[int] = None, max_entries: Optional[int] = None, timeout_s: Optional[float] = None) -> Dict[str, Any]: ...


class SeedProtocolTest(unittest.TestCase):
    def test_every_method_has_the_seed_signature(self) -> None:
        for name, expected in SEED.items():
            method = getattr(SlotqBackend, name)
            self.assertTrue(inspect.iscoroutinefunction(method), f"{name} is async")
            params = list(inspect.signature(method).parameters.values())[1:]
            seed_params = [(p.name, p.kind, p.default) for p in params if not (name == "acquire" and p.name in ("image", "network"))]
            self.assertEqual(seed_params, expected, name)
        # acquire's one addition is keyword-only with a None default, so seed callers are unaffected
        image = inspect.signature(SlotqBackend.acquire).parameters["image"]
        self.assertEqual((image.kind, image.default), (KW, None))

    def test_is_a_seed_tool_backend_and_default_timeout_never_raises(self) -> None:
        b = SlotqBackend("http://127.0.0.1:1")
        self.assertIsInstance(b, ToolBackend)
        self.assertIsNone(b.default_timeout_s)
        self.assertEqual(SlotqBackend("http://127.0.0.1:1", default_timeout_s=12.5).default_timeout_s, 12.5)
        self.assertTrue(isinstance(SlotqBackend.default_timeout_s, property))

    def test_constructor_reads_slotq_url_and_slotq_token(self) -> None:
        import os
        from unittest import mock

        with mock.patch.dict(os.environ, {"SLOTQ_URL": "http://gw.example:9100", "SLOTQ_TOKEN": "t0ken-from-env-123"}):
            b = SlotqBackend()
        self.assertEqual(b.url, "http://gw.example:9100")
        self.assertEqual(b._http.token, "t0ken-from-env-123")
        self.assertEqual((b._http.host, b._http.port), ("gw.example", 9100))


class ResultTypesTest(unittest.TestCase):
    def test_to_xml_success_byte_for_byte(self) -> None:
        r = ExecutionResult(success=True, output="hi\n", error="", execution_id="exec-1", slot_id="w-s0", metadata={"exit_code": 0, "duration_ms": 3})
        tr = r.to_tool_result()
        self.assertEqual(tr.uniq_id, "exec-1")
        tr.uniq_id = "call_7"
        self.assertEqual(tr.to_xml(), '<tool_response>{"success": true, "output": "hi\\n", "uniq_id": "call_7", "metadata": {"exit_code": 0, "duration_ms": 3}}</tool_response>')

    def test_to_xml_failure_byte_for_byte(self) -> None:
        r = ExecutionResult(success=False, output="", error="Exit code: 3", execution_id="e2", slot_id="s", metadata={"exit_code": 3, "code": "TOOL_FAILED", "retryable": False})
        self.assertEqual(
            r.to_tool_result().to_xml(),
            '<tool_response>{"success": false, "output": "", "uniq_id": "e2", "error": "Exit code: 3", "metadata": {"exit_code": 3, "code": "TOOL_FAILED", "retryable": false}}</tool_response>',
        )

    def test_to_xml_timeout_byte_for_byte(self) -> None:
        r = ExecutionResult(success=False, output="partial ü", error="Command timed out after 1s", execution_id="", metadata={"exit_code": -1, "timeout": True, "code": "TIMEOUT"})
        self.assertEqual(
            r.to_tool_result().to_xml(),
            '<tool_response>{"success": false, "output": "partial \\u00fc", "error": "Command timed out after 1s", "metadata": {"exit_code": -1, "timeout": true, "code": "TIMEOUT"}}</tool_response>',
        )

    def test_to_xml_leaves_out_empty_uniq_id_error_and_metadata(self) -> None:
        self.assertEqual(ToolResult(success=True, output="x").to_xml(), '<tool_response>{"success": true, "output": "x"}</tool_response>')
        tr = ToolResult(success=True, output="x", error="", metadata={}, uniq_id="")
        self.assertEqual(json.loads(tr.to_xml()[len("<tool_response>") : -len("</tool_response>")]), {"success": True, "output": "x"})

    def test_slot_fields_and_dict_round_trip(self) -> None:
        wire = {"slot_id": "w-s3", "worker_id": "w", "container_id": "c0ffee", "container_addr": "slotq://w/c0ffee", "workspace_dir": "/workspace", "trajectory_id": "t", "lease_id": "l1", "acquired_at_ms": 5}
        s = Slot._from_wire(wire)
        self.assertIsInstance(s.slot_id, str)
        self.assertIsInstance(s.container_addr, str)
        self.assertEqual((s.alloc_id, s.state, s.is_acquired), ("w", SlotState.ACQUIRED, True))
        self.assertEqual(set(s.to_dict()), {"slot_id", "alloc_id", "container_addr", "workspace_dir", "state", "trajectory_id", "metadata"})
        self.assertEqual(Slot.from_dict(s.to_dict())._to_wire(), wire)



class ClientTimeoutTest(unittest.IsolatedAsyncioTestCase):
    """The client's own give-ups: a batch that went out and got no answer may have run (not retryable,
    outcome unknown); one that never went out is retryable. A socket that accepts and never answers
    stands in for a gateway that froze after reading the request."""

    async def test_a_batch_sent_and_unanswered_is_outcome_unknown_not_retryable(self) -> None:
        import asyncio

        async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.read(65536)
            await asyncio.sleep(30)

        server = await asyncio.start_server(silent, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        b = SlotqBackend(f"http://127.0.0.1:{port}", None)
        b._session = "s-test"  # as if start() had opened it
        body = {"requests": [{"slot": {"slot_id": "w-s0"}, "tool": "bash", "args": {"command": "echo hi >> ledger"}}]}
        try:
            [r] = await b._send_batch(body, 0.5)
        finally:
            server.close()
        self.assertEqual((r.success, r.metadata["code"], r.metadata["retryable"], r.metadata.get("outcome")), (False, "INTERNAL", False, "unknown"), r)
        self.assertIn("may have run", r.error)

    async def test_a_batch_that_never_went_out_is_retryable(self) -> None:
        b = SlotqBackend(f"http://127.0.0.1:{live.free_port()}", None, connect_timeout_s=1)
        b._session = "s-test"
        body = {"requests": [{"slot": {"slot_id": "w-s0"}, "tool": "bash", "args": {"command": "true"}}]}
        [r] = await b._send_batch(body, 2.0)
        self.assertEqual((r.success, r.metadata["code"], r.metadata["retryable"], r.metadata.get("outcome")), (False, "INTERNAL", True, None), r)

if __name__ == "__main__":
    unittest.main()
