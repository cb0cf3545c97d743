"""Live: every protocol method with its exact kwargs; results in order; the error codes."""

from __future__ import annotations

import asyncio
import unittest
import uuid

import live
from base import LiveTestCase
from slotq import ExecutionResult, Slot, SlotqError, SlotState


class ProtocolTest(LiveTestCase):
    async def test_acquire_affinity_release_and_slot_fields(self) -> None:
        b = self.backend
        tid = f"t-{uuid.uuid4().hex[:6]}"
        s1 = await self.within(b.acquire(tid))
        s2 = await self.within(b.acquire(trajectory_id=tid))
        self.assertEqual(s1.slot_id, s2.slot_id)
        for field in (s1.slot_id, s1.container_addr, s1.alloc_id, s1.workspace_dir):
            self.assertIsInstance(field, str)
            self.assertTrue(field)
        self.assertEqual((s1.trajectory_id, s1.state), (tid, SlotState.ACQUIRED))
        anon = await self.within(b.acquire())
        self.assertNotEqual(anon.slot_id, s1.slot_id)
        self.assertTrue(anon.trajectory_id)
        await b.release(s1, reset_workspace=False)
        await b.release(anon)
        self.assertEqual(s1.state, SlotState.AVAILABLE)
        self.assertGreater(b.default_timeout_s or 0, 0)

    async def test_execute_batch_returns_n_results_in_request_order(self) -> None:
        b = self.backend
        a, c = await self.within(asyncio.gather(b.acquire("order-a"), b.acquire("order-c")))
        reqs = [
            (a, "write_file", {"path": "n.txt", "content": "alpha"}),
            (c, "write_file", {"path": "n.txt", "content": "gamma"}),
            (a, "bash", {"command": "cat n.txt; echo -n ' 1'"}),
            (c, "bash", {"command": "cat n.txt; echo -n ' 2'"}),
            (a, "read_file", {"path": "n.txt"}),
            (c, "terminal", {"command": "sleep 0.2; echo -n late"}),
            (a, "bash", {"command": "echo -n early"}),
        ]
        results = await self.within(b.execute_batch(reqs, timeout_s=20))
        self.assertEqual(len(results), len(reqs))
        self.assertTrue(all(isinstance(r, ExecutionResult) for r in results))
        self.assertEqual([r.output for r in results[2:]], ["alpha 1", "gamma 2", "alpha", "late", "early"])
        self.assertEqual([r.slot_id for r in results], [s.slot_id for s, _, _ in reqs])
        self.assertEqual(len({r.execution_id for r in results}), len(reqs))
        self.assertEqual(results[2].metadata["exit_code"], 0)
        self.assertEqual(await b.execute_batch([]), [])
        await b.release(a, reset_workspace=True)
        await b.release(c, reset_workspace=True)

    async def test_every_per_call_error_code_is_a_result(self) -> None:
        b = self.backend
        slot = await self.within(b.acquire("codes"))
        gone = await self.within(b.acquire("codes-released"))
        await b.release(gone)
        reqs = [
            (slot, "bash", {"command": "echo out; exit 3"}),  # TOOL_FAILED
            (slot, "bash", {"command": "sleep 10", "timeout": 1}),  # TIMEOUT
            (slot, "bash", {}),  # INVALID_ARGS (worker)
            (slot, "no_such_tool", {}),  # UNKNOWN_TOOL
            (slot, "read_file", {"path": "../../etc/passwd"}),  # PATH_OUTSIDE_WORKSPACE
            (slot, "read_file", {"path": "missing.txt"}),  # NOT_FOUND
            (slot, "write_file", {"path": "big.txt", "content": "x" * 100_001}),  # TOO_LARGE
            (gone, "bash", {"command": "true"}),  # LEASE_LOST
            ("not a slot", "bash", {"command": "true"}),  # INVALID_ARGS (client)
            (slot, "bash", ["not", "a", "dict"]),  # INVALID_ARGS (client)
            (slot, "bash", {"command": object()}),  # INVALID_ARGS (not JSON)
            (slot,),  # INVALID_ARGS (not a tuple of 3)
            (slot, "bash", {"command": "echo -n still-fine"}),
        ]
        r = await self.within(b.execute_batch(reqs))  # type: ignore[arg-type]
        self.assertEqual(len(r), len(reqs))
        self.assertCode(r[0], "TOOL_FAILED")
        self.assertEqual((r[0].output.strip(), r[0].error, r[0].metadata["exit_code"]), ("out", "Exit code: 3", 3))
        self.assertCode(r[1], "TIMEOUT")
        self.assertEqual((r[1].metadata["timeout"], r[1].metadata["exit_code"]), (True, -1))
        self.assertNotIn("timedOut", r[1].metadata)
        for i, code in [(2, "INVALID_ARGS"), (3, "UNKNOWN_TOOL"), (4, "PATH_OUTSIDE_WORKSPACE"), (5, "NOT_FOUND"), (6, "TOO_LARGE"), (7, "LEASE_LOST")]:
            self.assertCode(r[i], code)
        for i in (8, 9, 10, 11):
            self.assertCode(r[i], "INVALID_ARGS")
        self.assertEqual(r[9].slot_id, slot.slot_id)
        self.assertTrue(r[12].success, r[12])
        self.assertEqual(r[12].output, "still-fine")
        await b.release(slot, reset_workspace=True)

    async def test_batch_timeout_kwarg_applies_to_calls_without_their_own(self) -> None:
        slot = await self.within(self.backend.acquire("batch-timeout"))
        [slow, own] = await self.within(self.backend.execute_batch([(slot, "bash", {"command": "sleep 10"}), (slot, "bash", {"command": "sleep 1.5; echo -n ok", "timeout": 20})], timeout_s=1))
        self.assertCode(slow, "TIMEOUT")
        self.assertTrue(own.success, own)
        await self.backend.release(slot, reset_workspace=True)

    async def test_no_slot_when_all_are_held(self) -> None:
        holder = self.backend
        slots = await self.acquire_all(holder, "hold")
        impatient = await self.started(acquire_timeout_s=1)
        with self.assertRaises(SlotqError) as cm:
            await self.within(impatient.acquire("no-room"))
        self.assertEqual((cm.exception.code, cm.exception.retryable), ("NO_SLOT", True))
        await asyncio.gather(*(holder.release(s) for s in slots))

    async def test_backend_stopped_after_stop(self) -> None:
        b = await self.started()
        slot = await self.within(b.acquire("stopped"))
        await b.stop()
        [r] = await b.execute_batch([(slot, "bash", {"command": "true"})])
        self.assertCode(r, "BACKEND_STOPPED", retryable=True)
        with self.assertRaises(SlotqError) as cm:
            await b.acquire("after-stop")
        self.assertEqual(cm.exception.code, "BACKEND_STOPPED")
        d = await b.read_artifact(slot, "x")
        self.assertEqual((d["success"], d["code"], d["retryable"]), (False, "BACKEND_STOPPED", True))

    async def test_release_with_reset_gives_the_next_holder_a_pristine_workspace(self) -> None:
        b = self.backend
        slot = await self.within(b.acquire("dirty"))
        marker = f"marker-{uuid.uuid4().hex[:8]}"
        self.assertTrue((await self.run_bash(slot, f"echo secret > /workspace/{marker}; echo x > /tmp/{marker}")).success)
        await b.release(slot, reset_workspace=True)
        slots = await self.acquire_all(b, "after-reset")  # every slot, so the reset one too
        results = await self.within(b.execute_batch([(s, "bash", {"command": f"test ! -e /workspace/{marker} && test ! -e /tmp/{marker}"}) for s in slots]))
        self.assertTrue(all(r.success for r in results), results)
        await asyncio.gather(*(b.release(s, reset_workspace=True) for s in slots))

    async def test_stop_with_purge_releases_the_slots(self) -> None:
        b = await self.started()
        await self.within(asyncio.gather(*(b.acquire(f"purge-{i}") for i in range(live.SLOTS))))
        await b.stop(purge=True)
        slots = await self.acquire_all(self.backend, "after-purge")
        await asyncio.gather(*(self.backend.release(s) for s in slots))

    async def test_policy_args_pass_through_to_the_worker(self) -> None:
        slot = await self.within(self.backend.acquire("policy"))
        [plain, stateful] = await self.within(
            self.backend.execute_batch(
                [
                    (slot, "bash", {"command": "echo -n ok", "allow_network": False, "require_sandbox": True}),
                    (slot, "bash_stateful", {"command": "echo -n ok", "allow_network": False, "require_stateful_sandbox": True}),
                ]
            )
        )
        self.assertTrue(plain.success, plain)
        self.assertTrue(stateful.success, stateful)
        self.assertEqual(stateful.metadata.get("stateful"), True)
        await self.backend.release(slot, reset_workspace=True)

    async def test_slot_broken_when_its_container_dies(self) -> None:
        slot = await self.within(self.backend.acquire("broken"))
        self.assertTrue((await self.run_bash(slot, "true")).success)
        killed = await asyncio.to_thread(live.docker, "kill", slot.metadata["container_id"])
        self.assertEqual(killed.returncode, 0, killed.stderr)
        r = await self.run_bash(slot, "echo -n hi")
        self.assertCode(r, "SLOT_BROKEN", retryable=True)
        await self.backend.release(slot, reset_workspace=True)


class NotStartedTest(unittest.IsolatedAsyncioTestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.env = live.live()

    async def test_calls_before_start_are_backend_stopped_results(self) -> None:
        b = self.env.backend()
        fake = Slot(slot_id="s", alloc_id="w", container_addr="slotq://w/c", metadata={"lease_id": "l"})
        [r] = await b.execute_batch([(fake, "bash", {"command": "true"})])
        self.assertEqual((r.success, r.metadata["code"], r.metadata["retryable"]), (False, "BACKEND_STOPPED", True))
        with self.assertRaises(TypeError):
            await b.release("not a slot")  # type: ignore[arg-type]


if __name__ == "__main__":
    unittest.main()
