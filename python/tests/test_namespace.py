"""Live: a trajectory ID belongs to its gateway session; ``namespace`` (or ``$SLOTQ_NAMESPACE``) shares it explicitly."""

from __future__ import annotations

import os
import unittest
from unittest import mock

from base import LiveTestCase


class NamespaceTest(LiveTestCase):
    async def test_two_clients_naming_the_same_trajectory_get_their_own_slots(self) -> None:
        other = await self.started()
        mine, theirs = await self.within(self.backend.acquire("py-traj-0")), await self.within(other.acquire("py-traj-0"))
        self.assertNotEqual(mine.slot_id, theirs.slot_id)
        self.assertNotEqual(mine.metadata["lease_id"], theirs.metadata["lease_id"])
        self.assertEqual(theirs.trajectory_id, "py-traj-0")
        wrote = await self.run_bash(mine, "echo secret > /workspace/mine.txt")
        self.assertTrue(wrote.success, wrote)
        [seen] = await self.within(other.execute_batch([(theirs, "bash", {"command": "ls -A /workspace | wc -l"})]))
        self.assertEqual(seen.output.strip(), "0", seen)
        await self.within(self.backend.release(mine, reset_workspace=True))
        await self.within(other.release(theirs, reset_workspace=True))

    async def test_clients_naming_one_namespace_share_trajectories(self) -> None:
        a = await self.started(namespace="py-run-1")
        with mock.patch.dict(os.environ, {"SLOTQ_NAMESPACE": "py-run-1"}):
            b = await self.started()  # the namespace from the environment
        self.assertEqual(b.namespace, "py-run-1")
        sa = await self.within(a.acquire("py-traj-1"))
        sb = await self.within(b.acquire("py-traj-1"))
        self.assertEqual(sb.slot_id, sa.slot_id)
        [wrote] = await self.within(a.execute_batch([(sa, "write_file", {"path": "run.txt", "content": "shared"})]))
        self.assertTrue(wrote.success, wrote)
        [read] = await self.within(b.execute_batch([(sb, "read_file", {"path": "run.txt"})]))
        self.assertEqual(read.output, "shared")
        outside = await self.within(self.backend.acquire("py-traj-1"))  # no namespace: its own trajectory
        self.assertNotEqual(outside.slot_id, sa.slot_id)
        await self.within(self.backend.release(outside, reset_workspace=True))
        await self.within(a.release(sa, reset_workspace=True))


if __name__ == "__main__":
    unittest.main()
