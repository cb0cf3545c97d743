"""Live: the README's "Use it from Python" sample runs as written and prints 42."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import unittest

import live
from base import LiveTestCase


def readme_sample() -> str:
    with open(os.path.join(live.REPO, "README.md"), encoding="utf-8") as f:
        text = f.read()
    start = text.index("## Use it from Python")
    m = re.search(r"```python\n(.*?)```", text[start:], re.S)
    assert m, "no python sample under 'Use it from Python'"
    return m.group(1)


class ReadmeTest(LiveTestCase):
    async def test_the_readme_sample_runs_as_written(self) -> None:
        env = dict(os.environ, SLOTQ_URL=self.env.url, SLOTQ_TOKEN=self.env.token, PYTHONPATH=live.PYTHON_DIR)
        p = await asyncio.to_thread(subprocess.run, [sys.executable, "-c", readme_sample()], env=env, stdin=subprocess.DEVNULL, capture_output=True, timeout=300)
        out = p.stdout.decode()
        self.assertEqual(p.returncode, 0, p.stderr.decode())
        lines = out.splitlines()
        self.assertEqual(lines[0], "42")
        self.assertTrue(lines[2].startswith('<tool_response>{"success": true, "output": "42\\n", "uniq_id": '), lines[2])
        self.assertTrue(lines[2].endswith("}</tool_response>"), lines[2])
        self.assertEqual(lines[3], "12 ['main.py'] 1")


if __name__ == "__main__":
    unittest.main()
