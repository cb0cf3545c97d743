"""The bench's Python-client phase (run by tools/bench/python-client.ts against a gateway it started):
the same one-at-a-time calls and slot-wide batches as the TypeScript phase, through SlotqBackend.
Prints one JSON object on stdout."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time


async def main(a: argparse.Namespace) -> dict:
    from slotq import SlotqBackend

    expected = a.command.replace("echo ", "", 1).strip()
    failures = {"count": 0, "first": None}

    def check(results) -> None:
        for r in results:
            if r.success and r.output.strip() == expected:
                continue
            failures["count"] += 1
            if failures["first"] is None:
                failures["first"] = f"{r.metadata.get('code', 'WRONG_OUTPUT')}: {r.error or r.output[:200]!r}"

    backend = SlotqBackend(a.url, a.token or None, acquire_timeout_s=60, max_connections=max(16, 2 * max(a.in_flight)))
    await backend.start()
    try:
        slots = [await backend.acquire(f"py-bench-{i}") for i in range(a.slots)]
        serial_ms = []
        overhead_ms = []
        for i in range(a.warmup + a.iterations):
            t0 = time.perf_counter()
            results = await backend.execute_batch([(slots[0], "bash", {"command": a.command})])
            ms = (time.perf_counter() - t0) * 1000
            check(results)
            if i >= a.warmup:
                serial_ms.append(ms)
                overhead_ms.append(ms - float(results[0].metadata.get("duration_ms", 0)))
        requests = [(s, "bash", {"command": a.command}) for s in slots]
        runs = []
        for k in a.in_flight:
            for total, record in ((a.batch_warmup, False), (a.batches, True)):
                before = failures["count"]
                started = 0

                async def lane() -> None:
                    nonlocal started
                    while started < total:
                        started += 1
                        check(await backend.execute_batch(requests))

                t0 = time.perf_counter()
                await asyncio.gather(*(lane() for _ in range(k)))
                seconds = time.perf_counter() - t0
                if record:
                    calls = total * len(slots)
                    failed = failures["count"] - before
                    runs.append({"inFlight": k, "calls": calls, "seconds": round(seconds, 3), "callsPerS": round((calls - failed) / seconds, 1), "failures": failed})
        for s in slots:
            await backend.release(s)
    finally:
        await backend.stop()
    return {"python": sys.version.split()[0], "serialMs": serial_ms, "overheadMs": overhead_ms, "runs": runs, "failures": failures["count"], "firstFailure": failures["first"]}


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--token", default="")
    ap.add_argument("--slots", type=int, required=True)
    ap.add_argument("--iterations", type=int, required=True)
    ap.add_argument("--warmup", type=int, default=50)
    ap.add_argument("--batches", type=int, required=True)
    ap.add_argument("--batch-warmup", type=int, default=5)
    ap.add_argument("--in-flight", type=int, nargs="+", default=[1, 2, 4])
    ap.add_argument("--command", default="echo hi")
    out = asyncio.run(main(ap.parse_args()))
    print(json.dumps(out))
