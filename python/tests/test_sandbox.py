"""Live: the harness surface (exec, bytes at any path, directories up and down) on a real worker, through both
SlotqBackend and SlotqSyncBackend. The sync one is driven from a thread (as a sync harness calls it) by the same
test bodies; SyncContextTest uses it with no event loop at all."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import os
import re
import shutil
import tempfile
import time
import unittest
from unittest import mock
from typing import TYPE_CHECKING, Any, Dict

import live
from base import HANG_S, LiveTestCase
from slotq import ExecResult, SlotqError, SlotqFileNotFoundError, SlotqIsADirectoryError, SlotqSyncBackend


def tree_digest(root: str) -> Dict[str, str]:
    """relative path -> sha256 (files) or 'dir' (directories)."""
    out: Dict[str, str] = {}
    for dirpath, dirs, files in os.walk(root):
        rel = os.path.relpath(dirpath, root)
        for d in dirs:
            out[os.path.normpath(os.path.join(rel, d))] = "dir"
        for f in files:
            with open(os.path.join(dirpath, f), "rb") as fh:
                out[os.path.normpath(os.path.join(rel, f))] = hashlib.sha256(fh.read()).hexdigest()
    return out


_Base = unittest.TestCase if TYPE_CHECKING else object


class _Sandbox(_Base):
    """The test bodies; ``self.b`` has SlotqBackend's async methods (the real one, or the sync one in a thread)."""

    b: Any
    slot: Any

    async def within(self, aw: Any, timeout_s: float = HANG_S) -> Any:
        return await asyncio.wait_for(aw, timeout_s)

    async def sh(self, command: Any, **kw: Any) -> ExecResult:
        r = await self.within(self.b.exec(self.slot, command, **kw))
        self.assertIsInstance(r, ExecResult)
        return r

    async def test_exec_cwd_env_stdin_and_streams_apart(self) -> None:
        r = await self.sh("pwd; echo \"$FOO\"; echo out; echo err >&2", cwd="/tmp", env={"FOO": "bar baz"})
        self.assertTrue(r.ok, r)
        self.assertEqual((r.exit_code, r.stdout, r.stderr, r.timed_out, r.code), (0, "/tmp\nbar baz\nout\n", "err\n", False, None))
        self.assertEqual((r.stdout_bytes, r.stderr_bytes), (len(r.stdout), 4))
        r = await self.sh("cat", stdin="hello\nworld")
        self.assertEqual(r.stdout, "hello\nworld")
        data = os.urandom(100_000)
        r = await self.sh(["sha256sum"], stdin=data)
        self.assertEqual(r.stdout.split()[0], hashlib.sha256(data).hexdigest(), r)

    async def test_exec_argv_is_not_a_shell(self) -> None:
        r = await self.sh(["printf", "%s|", "a b", "$HOME", ";", "exit 3"])
        self.assertEqual((r.exit_code, r.stdout), (0, "a b|$HOME|;|exit 3|"), r)
        r = await self.sh("printf '%s|' \"a b\" $HOME")
        self.assertEqual(r.stdout, "a b|/home/agent|", r)

    async def test_exec_exit_code_is_not_a_failure(self) -> None:
        r = await self.sh("echo partial; exit 42")
        self.assertEqual((r.exit_code, r.stdout, r.code, r.ok, r.timed_out), (42, "partial\n", None, False, False), r)

    async def test_exec_user_by_name_and_uid(self) -> None:
        default = await self.sh("id -u")
        self.assertEqual(default.stdout.strip(), "1000", default)
        for user, uid in (("root", "0"), (0, "0"), (1000, "1000"), ("agent", "1000"), (4242, "4242")):
            r = await self.sh("id -u", user=user)
            self.assertEqual((r.exit_code, r.stdout.strip()), (0, uid), (user, r))
        r = await self.sh("id -u", user="nosuchuser")
        self.assertFalse(r.ok, r)
        self.assertEqual(r.code, "INVALID_ARGS", r)
        self.assertFalse(r.retryable, r)

    async def test_exec_timeout_kills_its_children(self) -> None:
        r = await self.sh("sleep 3217 & echo $! > /tmp/child.pid; wait", timeout_s=2)
        self.assertTrue(r.timed_out, r)
        self.assertFalse(r.ok)
        self.assertEqual(r.exit_code, -1, r)
        pid = (await self.sh("cat /tmp/child.pid")).stdout.strip()
        self.assertTrue(pid.isdigit(), pid)
        deadline = time.monotonic() + 30
        while True:
            alive = await self.sh(f"kill -0 {pid} 2>/dev/null && grep -q 3217 /proc/{pid}/cmdline")
            if alive.exit_code != 0:
                break
            self.assertLess(time.monotonic(), deadline, f"the timed-out command's child sleep (pid {pid}) is still running")
            await asyncio.sleep(0.2)

    async def test_bytes_round_trip_at_any_path(self) -> None:
        data = os.urandom(5 * 1024 * 1024 + 123)
        await self.within(self.b.write_file_bytes(self.slot, "/tests/x.bin", data, user="root"))
        back = await self.within(self.b.read_file_bytes(self.slot, "/tests/x.bin"))
        self.assertEqual((len(back), hashlib.sha256(back).hexdigest()), (len(data), hashlib.sha256(data).hexdigest()))
        r = await self.sh("sha256sum /tests/x.bin; stat -c %U /tests/x.bin")
        self.assertEqual(r.stdout.split()[0], hashlib.sha256(data).hexdigest(), r)
        self.assertEqual(r.stdout.split()[-1], "root", r)
        await self.within(self.b.write_file_bytes(self.slot, "/tmp/run.sh", "#!/bin/sh\necho ran\n", mode=0o755))
        self.assertEqual((await self.sh(["/tmp/run.sh"])).stdout, "ran\n")
        self.assertTrue((await self.sh("touch /tmp/empty")).ok)
        self.assertEqual(await self.within(self.b.read_file_bytes(self.slot, "/tmp/empty", user="root")), b"")

    async def test_file_failures_are_builtin_exceptions(self) -> None:
        with self.assertRaises(FileNotFoundError) as cm:
            await self.within(self.b.read_file_bytes(self.slot, "/tests/does-not-exist"))
        e = cm.exception
        self.assertIsInstance(e, SlotqFileNotFoundError)
        self.assertIsInstance(e, SlotqError)
        self.assertEqual((e.code, e.retryable, e.filename), ("NOT_FOUND", False, "/tests/does-not-exist"))
        with self.assertRaises(IsADirectoryError) as cm2:
            await self.within(self.b.read_file_bytes(self.slot, "/etc"))
        self.assertIsInstance(cm2.exception, SlotqIsADirectoryError)
        with self.assertRaises(PermissionError) as cm3:
            await self.within(self.b.write_file_bytes(self.slot, "/etc/not-yours", b"x"))
        self.assertEqual(cm3.exception.code, "PERMISSION_DENIED")

    async def test_directory_up_and_down(self) -> None:
        src = tempfile.mkdtemp(prefix="slotq-up-")
        out = tempfile.mkdtemp(prefix="slotq-down-")
        self.addCleanup(shutil.rmtree, src, True)
        self.addCleanup(shutil.rmtree, out, True)
        for i in range(200):
            d = os.path.join(src, f"d{i % 7}", f"e{i % 3}")
            os.makedirs(d, exist_ok=True)
            with open(os.path.join(d, f"f{i}.bin"), "wb") as f:
                f.write(os.urandom(i * 37))
        os.chmod(os.path.join(src, "d0", "e0", "f0.bin"), 0o755)
        await self.within(self.b.upload_dir(self.slot, src, "/tmp/tree"))
        r = await self.sh("find /tmp/tree -type f | wc -l; stat -c %a /tmp/tree/d0/e0/f0.bin")
        self.assertEqual(r.stdout.split(), ["200", "755"], r)
        written = await self.within(self.b.download_dir(self.slot, "/tmp/tree", out))
        self.assertEqual(tree_digest(out), tree_digest(src))
        self.assertEqual(len([p for p in written if os.path.isfile(p)]), 200)
        self.assertEqual(os.stat(os.path.join(out, "d0", "e0", "f0.bin")).st_mode & 0o777, 0o755)

    async def test_model_tools_keep_their_workspace_rules(self) -> None:
        [r] = await self.within(self.b.execute_batch([(self.slot, "read_file", {"path": "/etc/passwd"})]))
        self.assertEqual((r.success, r.metadata.get("code")), (False, "PATH_OUTSIDE_WORKSPACE"), r)


class AsyncSandboxTest(_Sandbox, LiveTestCase):
    async def asyncSetUp(self) -> None:
        await super().asyncSetUp()
        self.b = self.backend
        self.slot = await self.within(self.b.acquire("sandbox-async"))

    async def asyncTearDown(self) -> None:
        await self.b.release(self.slot, reset_workspace=True)


class _InThread:
    """SlotqSyncBackend's blocking methods, called in a thread so the test bodies can await them."""

    def __init__(self, sync: SlotqSyncBackend) -> None:
        self.sync = sync

    def __getattr__(self, name: str) -> Any:
        fn = getattr(self.sync, name)

        async def call(*a: Any, **kw: Any) -> Any:
            return await asyncio.to_thread(fn, *a, **kw)

        return call


class SyncSandboxTest(_Sandbox, LiveTestCase):
    async def asyncSetUp(self) -> None:
        asyncio.get_running_loop().slow_callback_duration = 10.0
        env = live.live()
        self.sync = SlotqSyncBackend(env.url, env.token, acquire_timeout_s=120.0)
        await asyncio.to_thread(self.sync.start)
        self.b = _InThread(self.sync)
        self.slot = await self.within(self.b.acquire("sandbox-sync"))

    async def asyncTearDown(self) -> None:
        await self.b.release(self.slot, reset_workspace=True)
        await asyncio.to_thread(self.sync.stop)


class SyncContextTest(unittest.TestCase):
    """SlotqSyncBackend as a plain sync harness uses it: no event loop of its own, a context manager."""

    @classmethod
    def setUpClass(cls) -> None:
        cls.env = live.live()

    def test_context_manager(self) -> None:
        with SlotqSyncBackend(self.env.url, self.env.token, acquire_timeout_s=120.0) as b:
            slot = b.acquire("sandbox-ctx")
            r = b.exec(slot, ["sh", "-c", "cat; echo $X"], env={"X": "y"}, stdin="in ")
            self.assertEqual((r.exit_code, r.stdout), (0, "in y\n"), r)
            b.write_file_bytes(slot, "/tmp/a.txt", "é")
            self.assertEqual(b.read_file_bytes(slot, "/tmp/a.txt"), "é".encode())
            with self.assertRaises(FileNotFoundError):
                b.read_file_bytes(slot, "/tmp/missing")
            [res] = b.execute_batch([(slot, "bash", {"command": "echo tool"})])
            self.assertEqual((res.success, res.output.strip()), (True, "tool"), res)
            b.release(slot, reset_workspace=True)
        with self.assertRaises(SlotqError) as cm:
            b.acquire("after-stop")
        self.assertEqual(cm.exception.code, "BACKEND_STOPPED")

    def test_python_readme_sync_sample_runs(self) -> None:
        with open(os.path.join(live.PYTHON_DIR, "README.md"), encoding="utf-8") as f:
            blocks = re.findall(r"```python\n(.*?)```", f.read(), re.S)
        [sample] = [b for b in blocks if "SlotqSyncBackend()" in b]
        out = io.StringIO()
        with mock.patch.dict(os.environ, {"SLOTQ_URL": self.env.url, "SLOTQ_TOKEN": self.env.token}), contextlib.redirect_stdout(out):
            exec(compile(sample, "python/README.md", "exec"), {})
        self.assertEqual(out.getvalue(), "hi\n")


if __name__ == "__main__":
    unittest.main()
