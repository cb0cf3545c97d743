"""Live: slotq.integrations.inspect against a real worker, the core of inspect_ai's sandbox self_check (exec with
input, cwd, env, a nonzero return code, TimeoutError; text and bytes both ways; the file errors; a new nested
directory) and its lifecycle (sample_cleanup releases the slot, interrupted too). inspect_ai is not installed
here: its interface is re-stated below."""

from __future__ import annotations

import asyncio
import unittest
from typing import Any, Dict, List, Optional, Protocol, Union, runtime_checkable

import live
from base import HANG_S
from slotq import SlotqBackend
from slotq.integrations import inspect as slotq_inspect
from slotq.integrations.inspect import SlotqSandboxEnvironment


@runtime_checkable
class InspectSandbox(Protocol):
    """inspect_ai's SandboxEnvironment, the instance part."""

    async def exec(self, cmd: List[str], input: Union[str, bytes, None] = None, cwd: Optional[str] = None, env: Optional[Dict[str, str]] = None, user: Optional[str] = None, timeout: Optional[int] = None) -> Any: ...
    async def write_file(self, file: str, contents: Union[str, bytes]) -> None: ...
    async def read_file(self, file: str, text: bool = True) -> Any: ...


LIFECYCLE = ("task_init", "sample_init", "sample_cleanup", "task_cleanup", "cli_cleanup", "default_concurrency")


class InspectTest(unittest.IsolatedAsyncioTestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.live = live.live()

    async def asyncSetUp(self) -> None:
        asyncio.get_running_loop().slow_callback_duration = 10.0
        self.config = {"url": self.live.url, "token": self.live.token}
        await SlotqSandboxEnvironment.task_init("t", self.config)
        self.envs = await asyncio.wait_for(SlotqSandboxEnvironment.sample_init("t", self.config, {}), HANG_S)
        self.addAsyncCleanup(SlotqSandboxEnvironment.sample_cleanup, "t", self.config, self.envs, False)
        self.sb = self.envs["default"]

    async def test_is_an_inspect_sandbox(self) -> None:
        self.assertIsInstance(self.sb, InspectSandbox)
        for name in LIFECYCLE:
            self.assertTrue(callable(getattr(SlotqSandboxEnvironment, name)), name)
        self.assertIsNone(SlotqSandboxEnvironment.default_concurrency())

    async def test_exec_input_cwd_env_and_returncode(self) -> None:
        r = await self.sb.exec(["cat"], input="from stdin")
        self.assertEqual((r.success, r.returncode, r.stdout, r.stderr), (True, 0, "from stdin", ""), r)
        r = await self.sb.exec(["pwd"], cwd="/tmp")
        self.assertEqual(r.stdout.strip(), "/tmp")
        await self.sb.exec(["mkdir", "-p", "/workspace/sub"])
        self.assertEqual((await self.sb.exec(["pwd"], cwd="sub")).stdout.strip(), "/workspace/sub")
        r = await self.sb.exec(["sh", "-c", 'echo "$X"'], env={"X": "y z"})
        self.assertEqual(r.stdout, "y z\n")
        r = await self.sb.exec(["sh", "-c", "echo oops >&2; exit 7"])
        self.assertEqual((r.success, r.returncode, r.stderr), (False, 7, "oops\n"), r)

    async def test_exec_timeout_raises_timeout_error(self) -> None:
        with self.assertRaises(TimeoutError):
            await self.sb.exec(["sleep", "30"], timeout=1)
        self.assertEqual((await self.sb.exec(["echo", "after"])).stdout, "after\n")

    async def test_files_text_bytes_errors_and_nested_directories(self) -> None:
        await self.sb.write_file("t.txt", "héllo\n")
        self.assertEqual(await self.sb.read_file("t.txt"), "héllo\n")
        self.assertEqual(await self.sb.read_file("/workspace/t.txt", text=False), "héllo\n".encode())
        data = bytes(range(256)) * 10
        await self.sb.write_file("deep/new/dir/b.bin", data)
        self.assertEqual(await self.sb.read_file("deep/new/dir/b.bin", text=False), data)
        self.assertEqual((await self.sb.exec(["cat", "/workspace/t.txt"])).stdout, "héllo\n")
        with self.assertRaises(FileNotFoundError):
            await self.sb.read_file("missing.txt")
        with self.assertRaises(IsADirectoryError):
            await self.sb.read_file("deep")
        with self.assertRaises(IsADirectoryError):
            await self.sb.write_file("deep/new", "x")
        with self.assertRaises(PermissionError):
            await self.sb.write_file("/etc/slotq-not-allowed", "x")

    async def test_sample_cleanup_releases_the_slot_even_when_interrupted(self) -> None:
        envs = await asyncio.wait_for(SlotqSandboxEnvironment.sample_init("t", self.config, {}), HANG_S)
        sb: SlotqSandboxEnvironment = envs["default"]
        slot_id, backend = sb.slot.slot_id, sb.backend
        await SlotqSandboxEnvironment.sample_cleanup("t", self.config, envs, True)
        self.assertIsNone(sb.slot)
        self.assertIsNone(backend._session)  # the session is closed: nothing of it is held
        # the slot is back in the pool: with this test's own sandbox holding one, another client gets all the rest
        other = SlotqBackend(self.live.url, self.live.token, acquire_timeout_s=120.0)
        await other.start()
        try:
            slots = await asyncio.wait_for(asyncio.gather(*(other.acquire(f"all-{i}") for i in range(live.SLOTS - 1))), HANG_S)
            self.assertIn(slot_id, {s.slot_id for s in slots})
        finally:
            await other.stop()
        await SlotqSandboxEnvironment.task_cleanup("t", self.config, True)
        await SlotqSandboxEnvironment.cli_cleanup(None)

    async def test_relative_paths_are_under_the_workspace(self) -> None:
        self.assertEqual(slotq_inspect.absolute("a/../b.txt"), "/workspace/b.txt")
        self.assertEqual(slotq_inspect.absolute("/etc/x"), "/etc/x")


if __name__ == "__main__":
    unittest.main()
