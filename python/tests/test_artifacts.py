"""Live: the artifact helpers return the seed's snake_case dicts, with every key and its type."""

from __future__ import annotations

import base64
import hashlib
import io
import tarfile
import unittest

from base import LiveTestCase
from slotq import Slot

READ_KEYS = {"success", "content", "error", "encoding", "truncated", "bytes", "file_size", "path", "mime", "sha256"}
LIST_KEYS = {"success", "entries", "truncated", "error"}
ARCHIVE_KEYS = {"success", "content", "encoding", "format", "bytes", "entry_count", "error"}
FAILURE_KEYS = {"code", "retryable"}


class ArtifactsTest(LiveTestCase):
    async def asyncSetUp(self) -> None:
        await super().asyncSetUp()
        self.slot = await self.within(self.backend.acquire("artifacts"))
        r = await self.run_bash(self.slot, "mkdir -p out/sub && printf 'hello world' > out/a.txt && printf '\\000\\001\\002' > out/sub/b.bin && echo '{}' > out/c.json")
        self.assertTrue(r.success, r)

    async def asyncTearDown(self) -> None:
        await self.backend.release(self.slot, reset_workspace=True)

    def assertTypes(self, d: dict, types: dict) -> None:
        for key, t in types.items():
            self.assertIsInstance(d[key], t, f"{key}={d[key]!r}")

    async def test_read_artifact_text_base64_sha256_and_truncation(self) -> None:
        b = self.backend
        d = await self.within(b.read_artifact(self.slot, "out/a.txt"))
        self.assertEqual(set(d), READ_KEYS)
        self.assertTypes(d, {"success": bool, "content": str, "error": str, "encoding": str, "truncated": bool, "bytes": int, "file_size": int, "path": str, "mime": str})
        self.assertEqual((d["success"], d["content"], d["encoding"], d["bytes"], d["file_size"], d["path"], d["mime"], d["sha256"], d["error"]), (True, "hello world", "text", 11, 11, "out/a.txt", "text/plain", None, ""))

        d = await self.within(b.read_artifact(self.slot, "out/sub/b.bin", encoding="base64", max_bytes=2, include_sha256=True, timeout_s=10))
        self.assertEqual(base64.b64decode(d["content"]), b"\x00\x01")
        self.assertEqual((d["truncated"], d["bytes"], d["file_size"]), (True, 2, 3))
        self.assertEqual(d["sha256"], hashlib.sha256(b"\x00\x01\x02").hexdigest())

    async def test_list_artifacts_entries_are_snake_case_with_mtime_in_seconds(self) -> None:
        d = await self.within(self.backend.list_artifacts(self.slot, "out", recursive=True, max_entries=100, timeout_s=10))
        self.assertEqual(set(d), LIST_KEYS)
        self.assertEqual((d["success"], d["truncated"], d["error"]), (True, False, ""))
        paths = [e["path"] for e in d["entries"]]
        self.assertEqual(sorted(paths), sorted(["out/a.txt", "out/c.json", "out/sub", "out/sub/b.bin"]))
        for e in d["entries"]:
            self.assertEqual(set(e), {"path", "is_dir", "size", "mtime"})
            self.assertTypes(e, {"path": str, "is_dir": bool, "size": int, "mtime": (int, float)})
            self.assertGreater(e["mtime"], 1.5e9)
            self.assertLess(e["mtime"], 1e11)  # seconds, not milliseconds
        self.assertTrue(next(e for e in d["entries"] if e["path"] == "out/sub")["is_dir"])
        top = await self.within(self.backend.list_artifacts(self.slot))
        self.assertEqual([e["path"] for e in top["entries"]], ["out"])

    async def test_archive_artifacts_is_a_base64_tar_gz(self) -> None:
        d = await self.within(self.backend.archive_artifacts(self.slot, "out", archive_format="tar.gz", max_bytes=1_000_000, max_entries=10, timeout_s=10))
        self.assertTrue(ARCHIVE_KEYS <= set(d))
        self.assertTypes(d, {"success": bool, "content": str, "encoding": str, "format": str, "bytes": int, "entry_count": int, "error": str})
        self.assertEqual((d["success"], d["encoding"], d["format"], d["entry_count"]), (True, "base64", "tar.gz", 3))
        raw = base64.b64decode(d["content"])
        self.assertEqual(len(raw), d["bytes"])
        with tarfile.open(fileobj=io.BytesIO(raw), mode="r:gz") as tar:
            self.assertEqual(sorted(m.name.lstrip("./") for m in tar.getmembers() if m.isfile()), ["a.txt", "c.json", "sub/b.bin"])

    async def test_failures_are_dicts_with_every_key_and_a_code(self) -> None:
        b = self.backend
        cases = [
            (await b.read_artifact(self.slot, "nope.txt"), READ_KEYS, "NOT_FOUND"),
            (await b.read_artifact(self.slot, "out/a.txt", encoding="utf-16"), READ_KEYS, "INVALID_ARGS"),
            (await b.list_artifacts(self.slot, "../.."), LIST_KEYS, "PATH_OUTSIDE_WORKSPACE"),
            (await b.archive_artifacts(self.slot, "out", max_bytes=1), ARCHIVE_KEYS, "TOO_LARGE"),
            (await b.archive_artifacts(self.slot, "out", archive_format="zip"), ARCHIVE_KEYS, "INVALID_ARGS"),
            (await b.read_artifact("not a slot", "x"), READ_KEYS, "INVALID_ARGS"),  # type: ignore[arg-type]
            (await b.list_artifacts(self.slot, 42), LIST_KEYS, "INVALID_ARGS"),  # type: ignore[arg-type]
        ]
        for d, keys, code in cases:
            self.assertTrue(keys | FAILURE_KEYS <= set(d), d)
            self.assertEqual((d["success"], d["code"], d["retryable"]), (False, code, False), d)
            self.assertIsInstance(d["error"], str)
            self.assertTrue(d["error"])
        too_large = cases[3][0]
        self.assertGreater(too_large["bytes"], 1)

    async def test_slot_of_another_shape_is_refused_per_call(self) -> None:
        fake = Slot(slot_id="x", alloc_id="w", container_addr="slotq://w/x")
        d = await self.backend.read_artifact(fake, "out/a.txt")
        self.assertEqual((d["success"], d["code"]), (False, "INVALID_ARGS"))


if __name__ == "__main__":
    unittest.main()
