"""Runs the Python suite against a live slotq (see live.py) and prints "N passed, N failed".

    python3 python/tests/run.py [-k PATTERN] [test_module ...]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)

import live  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("modules", nargs="*", help="test modules (default: every test_*.py)")
    ap.add_argument("-k", dest="pattern", action="append", help="only tests whose name contains this")
    a = ap.parse_args()
    loader = unittest.TestLoader()
    if a.pattern:
        loader.testNamePatterns = [f"*{p}*" for p in a.pattern]
    if a.modules:
        suite = unittest.TestSuite(loader.loadTestsFromName(m.removesuffix(".py")) for m in a.modules)
    else:
        suite = loader.discover(HERE, pattern="test_*.py", top_level_dir=HERE)
    started = time.monotonic()
    result = unittest.TextTestRunner(verbosity=2, stream=sys.stdout).run(suite)
    if live._live is not None:
        live._live.stop()
    failed = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
    skipped = len(result.skipped)
    passed = max(0, result.testsRun - failed - skipped)  # a setUpClass error counts as failed, not as a test run
    print(f"[python tests] {passed} passed, {failed} failed, {skipped} skipped ({time.monotonic() - started:.0f} s)")
    return 0 if failed == 0 and result.testsRun > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
