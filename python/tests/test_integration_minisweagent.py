"""Live: slotq.integrations.minisweagent.SlotqEnvironment against a real worker, checked the way mini-swe-agent's
tests/environments/test_docker.py checks its docker env (env vars, forwarded env, cwd, exit code, timeout),
plus the submit sentinel. mini-swe-agent is not installed here: its interface is re-stated below."""

from __future__ import annotations

import os
import subprocess
import unittest
from typing import Any, Dict, Protocol, runtime_checkable
from unittest import mock

import live
from slotq.integrations import minisweagent as msa


@runtime_checkable
class MiniSweEnvironment(Protocol):
    """mini-swe-agent's Environment protocol, in slotq's words: execute and template vars."""

    config: Any

    def execute(self, action: Dict[str, Any], cwd: str = "", *, timeout: Any = None) -> Dict[str, Any]: ...

    def get_template_vars(self, **kwargs: Any) -> Dict[str, Any]: ...


class MiniSweAgentTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.env = live.live()

    def make(self, **config: Any) -> msa.SlotqEnvironment:
        e = msa.SlotqEnvironment(url=self.env.url, token=self.env.token, **config)
        self.addCleanup(e.close)
        return e

    def test_is_a_mini_swe_agent_environment_with_its_config_as_template_vars(self) -> None:
        e = self.make(cwd="/tmp", env={"A": "1"}, timeout=7, executable="docker", run_args=["--rm"])
        self.assertIsInstance(e, MiniSweEnvironment)
        v = e.get_template_vars()
        self.assertEqual((v["cwd"], v["env"], v["timeout"], v["image"]), ("/tmp", {"A": "1"}, 7, None))
        self.assertNotIn("token", v)
        with self.assertRaises(TypeError):
            msa.SlotqEnvironment(imgae="typo")

    def test_basic_execution_env_vars_forwarded_env_and_cwd(self) -> None:
        with mock.patch.dict(os.environ, {"SLOTQ_FWD": "from-host", "SLOTQ_BOTH": "host", "SLOTQ_HOME_REF": "h"}):
            e = self.make(cwd="/tmp", env={"TEST_VAR": "test_value", "SLOTQ_BOTH": "env-wins", "EXPANDED": "x-$SLOTQ_HOME_REF"}, forward_env=["SLOTQ_FWD", "SLOTQ_BOTH", "SLOTQ_UNSET_ON_HOST"])
            r = e.execute({"command": "echo hello"})
            self.assertEqual((r["output"].strip(), r["returncode"], r["exception_info"]), ("hello", 0, ""), r)
            r = e.execute({"command": 'echo "$TEST_VAR|$SLOTQ_FWD|$SLOTQ_BOTH|$EXPANDED|${SLOTQ_UNSET_ON_HOST-unset}"'})
            self.assertEqual(r["output"].strip(), "test_value|from-host|env-wins|x-h|unset", r)
        self.assertEqual(e.execute({"command": "pwd"})["output"].strip(), "/tmp")
        self.assertEqual(e.execute({"command": "pwd"}, cwd="/")["output"].strip(), "/")

    def test_exit_code_stderr_merged_in_order_and_old_string_calls(self) -> None:
        e = self.make()
        r = e.execute({"command": "echo one; echo two >&2; echo three; exit 42"})
        self.assertEqual((r["output"], r["returncode"]), ("one\ntwo\nthree\n", 42), r)
        r = e.execute("echo old-style; false")
        self.assertEqual(r, {"output": "old-style\n", "returncode": 1})

    def test_timeout_is_returncode_minus_one_and_v1_raises_timeout_expired(self) -> None:
        e = self.make(timeout=30)
        r = e.execute({"command": "echo started; sleep 20"}, timeout=1)
        self.assertEqual(r["returncode"], -1, r)
        self.assertIn("timed out", r["exception_info"])
        self.assertIn("started", r["output"])
        with self.assertRaises(subprocess.TimeoutExpired):
            e.execute("sleep 20", timeout=1)
        self.assertEqual(e.execute({"command": "echo alive"})["output"], "alive\n")  # same slot, still usable

    def test_submit_sentinel_raises_submitted_with_the_rest_of_the_output(self) -> None:
        e = self.make()
        with self.assertRaises(msa.submitted_class()) as cm:
            e.execute({"command": f"echo {msa.SUBMIT_SENTINEL}; echo the patch"})
        self.assertEqual(cm.exception.args[0]["extra"], {"exit_status": "Submitted", "submission": "the patch\n"})
        r = e.execute({"command": f"echo {msa.SUBMIT_SENTINEL}; exit 3"})  # not 0: not a submission
        self.assertEqual(r["returncode"], 3)
        self.assertEqual(e.execute(f"echo {msa.SUBMIT_SENTINEL}")["returncode"], 0)  # v1: the agent checks it

    def test_slot_is_acquired_on_first_use_and_released_on_close(self) -> None:
        e = msa.SlotqEnvironment(url=self.env.url, token=self.env.token, image="slotq-sandbox:latest")
        self.assertIsNone(e._slot)
        e.execute({"command": "touch /workspace/marker"})
        slot_id = e._slot.slot_id
        e.close()
        e.close()
        self.assertIsNone(e._backend)
        again = self.make(trajectory_id=e.config["trajectory_id"])  # a new session: its own slot, a fresh workspace
        r = again.execute({"command": "ls /workspace/marker"})
        self.assertNotEqual(r["returncode"], 0, (slot_id, r))


if __name__ == "__main__":
    unittest.main()
