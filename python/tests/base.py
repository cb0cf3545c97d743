"""Base class of the live tests: one started SlotqBackend per test, stopped (with its slots) after it."""

from __future__ import annotations

import asyncio
import unittest
from typing import Any, List

import live
from slotq import ExecutionResult, Slot, SlotqBackend

#: No await in a test may take longer than this: a hang fails the test instead of the run.
HANG_S = 300.0


class LiveTestCase(unittest.IsolatedAsyncioTestCase):
    env: live.LiveSlotq

    @classmethod
    def setUpClass(cls) -> None:
        cls.env = live.live()

    async def asyncSetUp(self) -> None:
        # unittest runs the loop in debug mode; the tests' own blocking helpers (raw HTTP, docker) are not the client's
        asyncio.get_running_loop().slow_callback_duration = 10.0
        self.backend = await self.started()

    async def started(self, **kwargs: Any) -> SlotqBackend:
        b = self.env.backend(**kwargs)
        await b.start()
        self.addAsyncCleanup(b.stop)
        return b

    async def run_bash(self, slot: Slot, command: str, **args: Any) -> ExecutionResult:
        [r] = await self.within(self.backend.execute_batch([(slot, "bash", {"command": command, **args})]))
        return r

    async def within(self, aw: Any, timeout_s: float = HANG_S) -> Any:
        return await asyncio.wait_for(aw, timeout_s)

    def assertCode(self, r: ExecutionResult, code: str, retryable: bool = False) -> None:
        self.assertFalse(r.success, r)
        self.assertEqual(r.metadata.get("code"), code, r)
        self.assertEqual(r.metadata.get("retryable"), retryable, r)
        self.assertTrue(r.error, r)

    async def acquire_all(self, backend: SlotqBackend, tag: str) -> List[Slot]:
        slots = await self.within(asyncio.gather(*(backend.acquire(f"{tag}-{i}") for i in range(live.SLOTS))))
        self.assertEqual(len({s.slot_id for s in slots}), live.SLOTS)
        return list(slots)
