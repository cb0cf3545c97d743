"""Live: a trajectory's own image through the gateway (acquire(..., image=...)). The live worker allows only its
own image (SLOTQ_IMAGE, no SLOTQ_IMAGES), so that image is served on demand and any other is refused."""

from __future__ import annotations

import unittest

from base import LiveTestCase
from slotq import SlotqError

SANDBOX = "slotq-sandbox:latest"


class ImageTest(LiveTestCase):
    async def test_acquire_with_an_image_gets_an_on_demand_slot_and_keeps_affinity(self) -> None:
        slot = await self.within(self.backend.acquire("py-image-1", image=SANDBOX))
        r = await self.run_bash(slot, "echo hi > /workspace/f && cat /workspace/f")
        self.assertTrue(r.success, r)
        self.assertEqual(r.output.strip(), "hi")
        again = await self.within(self.backend.acquire("py-image-1", image=SANDBOX))
        self.assertEqual(again.slot_id, slot.slot_id)
        with self.assertRaises(SlotqError) as cm:
            await self.within(self.backend.acquire("py-image-1", image="slotq-test-root:latest"))
        self.assertEqual((cm.exception.code, cm.exception.retryable), ("INVALID_ARGS", False))
        self.assertIn("release it first", str(cm.exception))
        await self.within(self.backend.release(slot))

    async def test_an_image_outside_the_allow_list_is_refused_naming_it(self) -> None:
        with self.assertRaises(SlotqError) as cm:
            await self.within(self.backend.acquire("py-image-2", image="someone/else:1"))
        self.assertEqual((cm.exception.code, cm.exception.retryable), ("INVALID_ARGS", False))
        self.assertIn("someone/else:1", str(cm.exception))
        self.assertIn("SLOTQ_IMAGES", str(cm.exception))


if __name__ == "__main__":
    unittest.main()
