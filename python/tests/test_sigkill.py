"""Live: a Python client killed by SIGKILL leaks nothing: after its session TTL its slots are reset and back."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import unittest
import uuid

import live
from base import LiveTestCase

CHILD = textwrap.dedent(
    """
    import asyncio, sys
    from slotq import SlotqBackend

    async def main(marker, n):
        backend = SlotqBackend(session_ttl_s=3)          # SLOTQ_URL, SLOTQ_TOKEN
        await backend.start()
        slots = await asyncio.gather(*(backend.acquire(f"doomed-{i}") for i in range(n)))
        results = await backend.execute_batch([(s, "bash", {"command": f"echo x > {marker}"}) for s in slots])
        assert all(r.success for r in results), results
        print("HOLDING", len(slots), flush=True)
        await asyncio.sleep(3600)                        # killed here, without stop() or release()

    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
    """
)


class SigkillTest(LiveTestCase):
    async def test_a_killed_client_leaks_no_slot(self) -> None:
        marker = f"killed-{uuid.uuid4().hex[:8]}"
        env = dict(os.environ, SLOTQ_URL=self.env.url, SLOTQ_TOKEN=self.env.token, PYTHONPATH=live.PYTHON_DIR)
        child = subprocess.Popen([sys.executable, "-c", CHILD, marker, str(live.SLOTS)], env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
        try:
            line = await self.within(asyncio.get_running_loop().run_in_executor(None, child.stdout.readline), 180)  # type: ignore[union-attr]
            self.assertEqual(line.decode().split(), ["HOLDING", str(live.SLOTS)], child.stderr.read().decode() if child.poll() is not None else "")  # type: ignore[union-attr]
            child.send_signal(signal.SIGKILL)
            child.wait(30)
        finally:
            live.kill_process_group(child)
            child.wait(30)
        # Every slot was held by the dead client: they come back only through its session's TTL, reset.
        slots = await self.acquire_all(self.backend, "after-kill")
        results = await self.within(self.backend.execute_batch([(s, "bash", {"command": f"test ! -e {marker}"}) for s in slots]))
        self.assertTrue(all(r.success for r in results), results)
        await asyncio.gather(*(self.backend.release(s) for s in slots))


if __name__ == "__main__":
    unittest.main()
