"""Live: 64 concurrent trajectories from asyncio on 8 slots, through one backend, without blocking the loop."""

from __future__ import annotations

import asyncio
import unittest

import live
from base import LiveTestCase

TRAJECTORIES = 64


class ConcurrencyTest(LiveTestCase):
    async def test_64_concurrent_trajectories(self) -> None:
        b = await self.started(acquire_timeout_s=600, max_connections=8)  # a bounded pool: at most 8 calls at a time
        ticks = 0
        stop = asyncio.Event()

        async def ticker() -> None:
            nonlocal ticks
            while not stop.is_set():
                ticks += 1
                await asyncio.sleep(0.01)

        async def trajectory(i: int) -> str:
            tid = f"traj-{i}"
            slot = await b.acquire(tid)
            try:
                first = await b.execute_batch([(slot, "write_file", {"path": "me.txt", "content": tid}), (slot, "bash", {"command": f"echo -n {i} >> me.txt; cat me.txt"})])
                again = await b.acquire(tid)  # affinity: the same slot while held
                self.assertEqual(again.slot_id, slot.slot_id)
                [read] = await b.execute_batch([(slot, "read_file", {"path": "me.txt"})])
                self.assertTrue(all(r.success for r in first), first)
                self.assertEqual(first[1].output, f"{tid}{i}")
                return read.output
            finally:
                await b.release(slot, reset_workspace=True)

        tick_task = asyncio.ensure_future(ticker())
        try:
            outputs = await self.within(asyncio.gather(*(trajectory(i) for i in range(TRAJECTORIES))), 900)
        finally:
            stop.set()
            await tick_task
        self.assertEqual(outputs, [f"traj-{i}{i}" for i in range(TRAJECTORIES)])
        self.assertGreater(ticks, 10, "the event loop kept running while calls were in flight")
        # every slot came back (reset) to the pool
        slots = await self.acquire_all(b, "after-64")
        self.assertEqual(len(slots), live.SLOTS)
        await asyncio.gather(*(b.release(s) for s in slots))


if __name__ == "__main__":
    unittest.main()
