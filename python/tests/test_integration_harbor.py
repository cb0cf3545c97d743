"""Live: slotq.integrations.harbor.SlotqEnvironment against a real worker: Harbor's BaseEnvironment surface
(start/stop, exec with cwd, env, user and a timeout, files and directories both ways). Harbor is not installed
here: its interface is re-stated below in slotq's words."""

from __future__ import annotations

import asyncio
import os
import tempfile
import types
import unittest
from typing import Any, Dict, Optional, Protocol, runtime_checkable

import live
from base import HANG_S
from slotq import SlotqError
from slotq.integrations import harbor


@runtime_checkable
class HarborEnvironment(Protocol):
    """Harbor's BaseEnvironment, the part a trial uses."""

    async def start(self, force_build: bool) -> None: ...
    async def stop(self, delete: bool) -> None: ...
    async def exec(self, command: str, cwd: Optional[str] = None, env: Optional[Dict[str, str]] = None, timeout_sec: Optional[int] = None, user: Any = None) -> Any: ...
    async def upload_file(self, source_path: Any, target_path: str) -> None: ...
    async def upload_dir(self, source_dir: Any, target_dir: str) -> None: ...
    async def download_file(self, source_path: str, target_path: Any) -> None: ...
    async def download_dir(self, source_dir: str, target_dir: Any) -> None: ...


class HarborTest(unittest.IsolatedAsyncioTestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.live = live.live()

    async def asyncSetUp(self) -> None:
        asyncio.get_running_loop().slow_callback_duration = 10.0
        self.e = harbor.SlotqEnvironment(url=self.live.url, token=self.live.token, session_id=f"harbor-test-{id(self)}", environment_name="t", task_env_config=types.SimpleNamespace(docker_image=None))
        self.assertIsInstance(self.e, HarborEnvironment)
        await asyncio.wait_for(self.e.start(force_build=False), HANG_S)
        self.addAsyncCleanup(self.e.stop, True)

    async def sh(self, command: str, **kw: Any) -> Any:
        return await asyncio.wait_for(self.e.exec(command, **kw), HANG_S)

    async def test_exec_cwd_env_user_and_exit_code(self) -> None:
        r = await self.sh('pwd; echo "$A"; echo err >&2; exit 3', cwd="/tmp", env={"A": "b c"})
        self.assertEqual((r.stdout, r.stderr, r.return_code), ("/tmp\nb c\n", "err\n", 3), r)
        self.assertEqual((await self.sh("id -u")).stdout.strip(), "0")  # root by default, as in Harbor's containers
        self.assertEqual((await self.sh("id -u", user="agent")).stdout.strip(), "1000")
        self.assertEqual((await self.sh("id -u", user=1000)).stdout.strip(), "1000")

    async def test_timeout_is_return_code_124_with_partial_output(self) -> None:
        r = await self.sh("echo before; sleep 30", timeout_sec=1)
        self.assertEqual((r.return_code, r.stdout), (124, "before\n"), r)

    async def test_upload_and_download_a_file_and_a_directory(self) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            src = os.path.join(tmp, "run.sh")
            with open(src, "wb") as f:
                f.write(b"#!/bin/sh\necho ran\n")
            os.chmod(src, 0o755)
            await self.e.upload_file(src, "/tmp/h/run.sh")
            self.assertEqual((await self.sh("/tmp/h/run.sh")).stdout, "ran\n")
            tree = os.path.join(tmp, "tests")
            os.makedirs(os.path.join(tree, "sub"))
            for rel, data in (("a.txt", b"A"), ("sub/b.bin", bytes(range(256)))):
                with open(os.path.join(tree, rel), "wb") as f:
                    f.write(data)
            await self.e.upload_dir(tree, "/tests")
            self.assertEqual((await self.sh("cat /tests/a.txt; wc -c < /tests/sub/b.bin")).stdout, "A256\n")
            await self.sh("mkdir -p /tmp/logs/agent && echo log > /tmp/logs/agent/x.log")
            back = os.path.join(tmp, "back")
            await self.e.download_dir("/tmp/logs", back)
            with open(os.path.join(back, "agent", "x.log"), "rb") as f:
                self.assertEqual(f.read(), b"log\n")
            out = os.path.join(tmp, "new", "b.bin")
            await self.e.download_file("/tests/sub/b.bin", out)
            with open(out, "rb") as f:
                self.assertEqual(f.read(), bytes(range(256)))
            with self.assertRaises(FileNotFoundError):
                await self.e.download_file("/tests/missing", out)

    async def test_network_isolation_is_what_the_worker_reports(self) -> None:
        [r] = await self.e.backend.execute_batch([(self.e.slot, "bash", {"command": "true"})])
        self.assertEqual(self.e.can_disable_internet, r.metadata.get("network_isolated") is True)
        self.assertEqual(harbor.SlotqEnvironment.type(), "slotq")
        self.assertFalse(self.e.is_mounted)

    async def test_stop_releases_the_slot(self) -> None:
        other = harbor.SlotqEnvironment(url=self.live.url, token=self.live.token, image="slotq-sandbox:latest")
        self.assertEqual(other.image, "slotq-sandbox:latest")
        await asyncio.wait_for(other.start(force_build=True), HANG_S)
        self.assertEqual((await other.exec("echo ok")).stdout, "ok\n")
        await other.stop(delete=True)
        self.assertIsNone(other.slot)
        with self.assertRaises(SlotqError) as cm:
            await other.exec("true")
        self.assertEqual(cm.exception.code, "BACKEND_STOPPED")


if __name__ == "__main__":
    unittest.main()
