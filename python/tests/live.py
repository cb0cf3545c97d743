"""A live slotq for the Python suite: a real worker (Docker slots) and a real gateway on a real Redis,
started as subprocesses under a unique prefix, shared by every test module and stopped at the end."""

from __future__ import annotations

import atexit
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from typing import Callable, Dict, List, Optional
from urllib.parse import urlsplit

HERE = os.path.dirname(os.path.abspath(__file__))
PYTHON_DIR = os.path.dirname(HERE)
REPO = os.path.dirname(PYTHON_DIR)
sys.path.insert(0, PYTHON_DIR)

REDIS_URL = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379"
SLOTS = 8
TOKEN = "test-token-" + uuid.uuid4().hex
MAX_BODY_BYTES = 2 * 1024 * 1024
#: Leases of a gateway killed by SIGKILL come back after this (the restart test kills one).
LEASE_TTL_MS = 5000


def wait_until(check: Callable[[], bool], timeout_s: float, what: str, interval_s: float = 0.1) -> None:
    """Polls check() until it is true; fails with `what` after timeout_s (no fixed sleeps)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(interval_s)
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def check_redis() -> None:
    u = urlsplit(REDIS_URL)
    try:
        with socket.create_connection((u.hostname or "127.0.0.1", u.port or 6379), timeout=3) as s:
            if u.password:
                s.sendall(f"AUTH {u.password}\r\n".encode())
                s.recv(64)
            s.sendall(b"PING\r\n")
            if not s.recv(64).startswith(b"+PONG"):
                raise OSError("no PONG")
    except OSError as e:
        raise SystemExit(f"[python tests] Redis at {REDIS_URL} does not answer ({e}): run `SLOTQ_PROVISION_REDIS=1 bash scripts/provision.sh` or set REDIS_URL")


class Proc:
    """A slotq CLI process (`node --import tsx src/cli/main.ts ...`) with its log in a file."""

    def __init__(self, name: str, args: List[str], env: Dict[str, str], log_dir: str) -> None:
        self.name = name
        self.args = args
        self.env = env
        self.log_path = os.path.join(log_dir, f"{name}.log")
        self.popen: Optional[subprocess.Popen] = None

    def start(self) -> "Proc":
        log = open(self.log_path, "ab")
        self.popen = subprocess.Popen(["node", "--import", "tsx", "src/cli/main.ts", *self.args], cwd=REPO, env=self.env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        return self

    @property
    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def stop(self, sig: int = signal.SIGTERM, timeout_s: float = 60.0) -> Optional[int]:
        p = self.popen
        if p is None:
            return None
        if p.poll() is None:
            p.send_signal(sig)
            try:
                p.wait(timeout_s)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(10)
        return p.returncode

    def kill(self) -> None:
        self.stop(signal.SIGKILL, 10)

    def log_tail(self, n: int = 40) -> str:
        try:
            with open(self.log_path, "rb") as f:
                return b"".join(f.readlines()[-n:]).decode("utf-8", "replace")
        except OSError:
            return ""


def base_env(prefix: str) -> Dict[str, str]:
    env = dict(os.environ)
    env.update({"REDIS_URL": REDIS_URL, "SLOTQ_PREFIX": prefix, "SLOTQ_LOG_LEVEL": "info", "SLOTQ_LEASE_TTL_MS": str(LEASE_TTL_MS)})
    for k in ("SLOTQ_GATEWAY_TOKEN", "SLOTQ_GATEWAY_HOST", "SLOTQ_GATEWAY_PORT", "SLOTQ_URL", "SLOTQ_TOKEN"):
        env.pop(k, None)
    return env


class LiveSlotq:
    def __init__(self) -> None:
        self.prefix = "pyt-" + uuid.uuid4().hex[:8]
        self.log_dir = tempfile.mkdtemp(prefix="slotq-python-tests-")
        self.token = TOKEN
        self.worker: Optional[Proc] = None
        self.gateways: List[Proc] = []
        self.port = 0
        self.url = ""
        self.stopped = False

    def start(self) -> None:
        check_redis()
        self.worker = Proc("worker", ["worker", "--slots", str(SLOTS)], base_env(self.prefix), self.log_dir).start()
        self.port, gw = self.start_gateway("gateway")
        self.url = f"http://127.0.0.1:{self.port}"
        self.wait_for_slots()
        print(f"[python tests] live slotq: prefix {self.prefix}, gateway {self.url}, logs {self.log_dir}", file=sys.stderr)

    def start_gateway(self, name: str, *, port: Optional[int] = None, token: Optional[str] = TOKEN, host: str = "127.0.0.1", extra_env: Optional[Dict[str, str]] = None, wait: bool = True):
        port = port or free_port()
        env = base_env(self.prefix)
        env.update({"SLOTQ_GATEWAY_PORT": str(port), "SLOTQ_GATEWAY_HOST": host, "SLOTQ_GATEWAY_MAX_BODY_BYTES": str(MAX_BODY_BYTES)})
        if token is not None:
            env["SLOTQ_GATEWAY_TOKEN"] = token
        env.update(extra_env or {})
        gw = Proc(f"{name}-{len(self.gateways)}", ["gateway"], env, self.log_dir).start()
        self.gateways.append(gw)
        if wait:
            self.wait_for_gateway(gw, port)
        return port, gw

    def wait_for_gateway(self, gw: Proc, port: int, timeout_s: float = 90.0) -> None:
        def up() -> bool:
            if not gw.alive:
                raise AssertionError(f"gateway exited ({gw.popen.returncode if gw.popen else '?'}):\n{gw.log_tail()}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/health", timeout=2) as r:
                    return r.status == 200
            except (urllib.error.URLError, OSError):
                return False

        wait_until(up, timeout_s, f"the gateway on port {port}", 0.2)

    def wait_for_slots(self, timeout_s: float = 180.0) -> None:
        """Until the worker has registered all its slots (acquiring them all through the gateway)."""
        import asyncio

        from slotq import SlotqBackend

        async def all_slots() -> None:
            b = SlotqBackend(self.url, self.token, acquire_timeout_s=timeout_s)
            await b.start()
            try:
                slots = await asyncio.gather(*(b.acquire(f"warmup-{i}") for i in range(SLOTS)))
                await asyncio.gather(*(b.release(s) for s in slots))
            finally:
                await b.stop()

        if self.worker is not None and not self.worker.alive:
            raise AssertionError(f"worker exited:\n{self.worker.log_tail()}")
        asyncio.run(all_slots())

    def backend(self, **kwargs):
        from slotq import SlotqBackend

        kwargs.setdefault("acquire_timeout_s", 120.0)
        return SlotqBackend(kwargs.pop("url", self.url), kwargs.pop("token", self.token), **kwargs)

    def stop(self) -> None:
        if self.stopped:
            return
        self.stopped = True
        for gw in self.gateways:
            gw.stop(signal.SIGTERM, 60)
        if self.worker is not None:
            self.worker.stop(signal.SIGTERM, 90)
        purge = subprocess.run(["node", "--import", "tsx", "src/cli/main.ts", "purge"], cwd=REPO, env=base_env(self.prefix), stdin=subprocess.DEVNULL, capture_output=True, timeout=120)
        if purge.returncode != 0:
            print(f"[python tests] purge failed: {purge.stderr.decode(errors='replace')}", file=sys.stderr)


_live: Optional[LiveSlotq] = None


def live() -> LiveSlotq:
    """The shared live slotq, started on first use (stopped at exit)."""
    global _live
    if _live is None:
        _live = LiveSlotq()
        atexit.register(_live.stop)
        _live.start()
    return _live


def raw_request(port: int, method: str, path: str, body: Optional[bytes] = None, headers: Optional[Dict[str, str]] = None):
    """One raw HTTP request (http.client); returns (status, parsed JSON or None)."""
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        try:
            conn.request(method, path, body=body, headers=headers or {})
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered (e.g. 400 TOO_LARGE) and closed before the whole body was sent
        resp = conn.getresponse()
        data = resp.read()
        try:
            return resp.status, json.loads(data) if data else None
        except ValueError:
            return resp.status, data.decode("utf-8", "replace")
    finally:
        conn.close()


def docker(*args: str, timeout_s: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout_s)


def kill_process_group(p: subprocess.Popen) -> None:
    try:
        os.killpg(p.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
