"""Live: the original's fifth tool, tmux (original-system.md §3.5): start, send_keys with block running a
command, capture shows it, and a reset clears it. One tmux session per slot; its state goes on reset."""

from __future__ import annotations

import unittest
import uuid

from base import LiveTestCase


class TmuxTest(LiveTestCase):
    async def test_start_send_keys_block_capture_and_reset(self) -> None:
        b = self.backend
        slot = await self.within(b.acquire("tmux"))
        marker = f"tmux-{uuid.uuid4().hex[:8]}"
        [started] = await self.within(b.execute_batch([(slot, "tmux", {"action": "start", "allow_network": False, "require_stateful_sandbox": False})]))
        self.assertTrue(started.success, started)
        self.assertEqual(started.output, "started")
        self.assertTrue(started.metadata.get("stateful"), started)

        [sent] = await self.within(b.execute_batch([(slot, "tmux", {"action": "send_keys", "keys": f"echo {marker}-$((6*7))", "block": True, "max_wait_s": 20})]))
        self.assertTrue(sent.success, sent)
        self.assertEqual(sent.output, "ok")
        self.assertIs(sent.metadata.get("blocked"), True, sent)

        [screen] = await self.within(b.execute_batch([(slot, "tmux", {"action": "capture"})]))
        self.assertTrue(screen.success, screen)
        self.assertIn(f"{marker}-42", screen.output)

        await b.release(slot, reset_workspace=True)
        slots = await self.acquire_all(b, "after-tmux")  # the reset slot is among them
        captures = await self.within(b.execute_batch([(s, "tmux", {"action": "capture", "capture_entire": True}) for s in slots]))
        for c in captures:
            self.assertNotIn(f"{marker}-42", c.output, c)
        await b.execute_batch([(s, "tmux", {"action": "stop"}) for s in slots])
        for s in slots:
            await b.release(s, reset_workspace=True)


if __name__ == "__main__":
    unittest.main()
