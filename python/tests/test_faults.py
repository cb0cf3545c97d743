"""Live: a gateway restarted mid-batch and a worker killed mid-call give typed results, never a hang."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import unittest
import uuid

import live
from base import LiveTestCase
from slotq import Slot, SlotqBackend


async def started_in(slot: Slot, marker: str) -> None:
    """Until the call that touches /workspace/<marker> has started in the slot's container."""

    def check() -> bool:
        return live.docker("exec", slot.metadata["container_id"], "test", "-e", f"/workspace/{marker}").returncode == 0

    await asyncio.get_running_loop().run_in_executor(None, lambda: live.wait_until(check, 60, f"{marker} in {slot.slot_id}", 0.2))


class GatewayRestartTest(LiveTestCase):
    async def mid_batch(self, sig: int, code: str) -> SlotqBackend:
        port, gw = await asyncio.to_thread(self.env.start_gateway, "restart")
        b = await self.started(url=f"http://127.0.0.1:{port}")
        # Trajectories of their own: a killed gateway's session keeps its trajectories' slots (and their
        # leases, which nobody renews) until its lease TTL, and a call waiting behind them would be refused.
        run = uuid.uuid4().hex[:6]
        a, c = await self.within(asyncio.gather(b.acquire(f"restart-a-{run}"), b.acquire(f"restart-c-{run}")))
        marker = f"started-{run}"
        batch = asyncio.ensure_future(b.execute_batch([(a, "bash", {"command": f"touch {marker}; sleep 20"}), (c, "bash", {"command": "echo -n fast"}), (a, "bash", {"command": f"touch after-{run}; echo -n after"})]))
        await self.within(started_in(a, marker))
        await asyncio.to_thread(gw.stop, sig, 60)
        results = await self.within(batch, 60)  # typed results, no hang
        self.assertEqual(len(results), 3)
        # The first call had started: it may have run, so it is never retryable (outcome unknown). A killed
        # gateway leaves the client unable to tell any of them apart; a stopping one fences the job first,
        # so the call still queued behind the first is known never to run.
        self.assertCode(results[0], code, retryable=False)
        self.assertEqual(results[0].metadata.get("outcome"), "unknown", results[0])
        for r in results:
            self.assertEqual((r.success, r.metadata["code"]), (False, code), r)
            self.assertEqual(r.metadata.get("outcome"), "not_run" if r.metadata["retryable"] else "unknown", r)
        if sig == signal.SIGTERM:
            self.assertEqual((results[2].metadata["retryable"], results[2].metadata.get("outcome")), (True, "not_run"), results[2])
            # ... and it never ran: its workspace has no trace of it.
            self.assertNotEqual(live.docker("exec", a.metadata["container_id"], "test", "-e", f"/workspace/after-{run}").returncode, 0)
        # The gateway comes back on the same port: the client opens a new session by itself.
        _, gw2 = await asyncio.to_thread(lambda: self.env.start_gateway("restarted", port=port))
        slot = await self.within(b.acquire("after-restart"))
        [r] = await self.within(b.execute_batch([(slot, "bash", {"command": "echo -n back"})]))
        self.assertEqual((r.success, r.output), (True, "back"))
        await b.release(slot, reset_workspace=True)
        await b.stop()
        await asyncio.to_thread(gw2.stop)
        return b

    async def test_gateway_killed_mid_batch(self) -> None:
        await self.mid_batch(signal.SIGKILL, "INTERNAL")

    async def test_gateway_stopped_mid_batch(self) -> None:
        await self.mid_batch(signal.SIGTERM, "BACKEND_STOPPED")


class WorkerLostTest(unittest.IsolatedAsyncioTestCase):
    """Its own prefix, worker and gateway: the worker is killed by SIGKILL while a call runs."""

    async def test_worker_killed_mid_call_is_worker_lost(self) -> None:
        live.check_redis()
        env = live.live()
        prefix = "pyt-wl-" + uuid.uuid4().hex[:6]
        base = live.base_env(prefix)
        base["SLOTQ_WORKER_LOST_MS"] = "2000"
        worker = live.Proc("lost-worker", ["worker", "--slots", "1"], base, env.log_dir).start()
        port = live.free_port()
        gw = live.Proc("lost-gateway", ["gateway"], dict(base, SLOTQ_GATEWAY_PORT=str(port)), env.log_dir).start()
        try:
            await asyncio.to_thread(env.wait_for_gateway, gw, port)
            b = SlotqBackend(f"http://127.0.0.1:{port}", None, acquire_timeout_s=180)
            await b.start()
            try:
                slot = await asyncio.wait_for(b.acquire("lost"), 240)
                marker = f"running-{uuid.uuid4().hex[:6]}"
                call = asyncio.ensure_future(b.execute_batch([(slot, "bash", {"command": f"touch {marker}; sleep 60"})]))
                await asyncio.wait_for(started_in(slot, marker), 90)
                await asyncio.to_thread(worker.kill)
                [r] = await asyncio.wait_for(call, 90)
                # It had started: it may have run, so it is not retryable (mask it, discard the trajectory).
                self.assertEqual((r.success, r.metadata["code"], r.metadata["retryable"], r.metadata.get("outcome")), (False, "WORKER_LOST", False, "unknown"), r)
            finally:
                await b.stop()
        finally:
            gw.stop()
            worker.kill()
            subprocess.run(["node", "--import", "tsx", "src/cli/main.ts", "purge"], cwd=live.REPO, env=base, stdin=subprocess.DEVNULL, capture_output=True, timeout=120)


if __name__ == "__main__":
    unittest.main()
