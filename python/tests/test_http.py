"""Live: the gateway's HTTP edge as raw HTTP: auth (missing vs wrong token), malformed requests, OpenAPI."""

from __future__ import annotations

import json
import subprocess
import unittest

import live
from base import LiveTestCase
from slotq import SlotqAuthError, SlotqError


class AuthTest(LiveTestCase):
    async def test_missing_and_wrong_tokens_get_401_saying_which(self) -> None:
        port = self.env.port
        status, body = live.raw_request(port, "POST", "/v1/sessions", b"{}", {"content-type": "application/json"})
        self.assertEqual(status, 401)
        self.assertEqual(body["error"]["code"], "UNAUTHORIZED")
        self.assertIn("Missing bearer token", body["error"]["message"])
        status, body = live.raw_request(port, "POST", "/v1/sessions", b"{}", {"content-type": "application/json", "authorization": "Bearer not-the-token"})
        self.assertEqual(status, 401)
        self.assertIn("Wrong bearer token", body["error"]["message"])
        status, body = live.raw_request(port, "POST", "/v1/sessions", b"{}", {"content-type": "application/json", "authorization": "Basic abc"})
        self.assertEqual(status, 401)
        self.assertIn("Missing bearer token", body["error"]["message"])

    async def test_the_client_raises_typed_auth_errors(self) -> None:
        for token, word in [("", "Missing"), ("wrong-token-xxxxxxxx", "Wrong")]:
            b = self.env.backend(token=token or None)
            b._http.token = token or None  # no fallback to the environment
            with self.assertRaises(SlotqAuthError) as cm:
                await b.start()
            self.assertEqual((cm.exception.code, cm.exception.status, cm.exception.retryable), ("UNAUTHORIZED", 401, False))
            self.assertIn(word, str(cm.exception))

    async def test_health_and_openapi_need_no_token(self) -> None:
        status, body = live.raw_request(self.env.port, "GET", "/v1/health")
        self.assertEqual((status, body["status"], body["redis"]), (200, "ok", True))
        status, doc = live.raw_request(self.env.port, "GET", "/v1/openapi.json")
        self.assertEqual(status, 200)
        self.assertTrue(doc["openapi"].startswith("3."))
        for op in ("acquire", "release", "execute_batch", "read_artifact", "list_artifacts", "archive_artifacts", "keepalive", "close"):
            self.assertIn(f"/v1/sessions/{{session_id}}/{op}", doc["paths"])
        self.assertEqual(doc["security"], [{"bearer": []}])

    def test_refuses_a_non_loopback_address_without_a_token(self) -> None:
        env = live.base_env(self.env.prefix)
        env.update({"SLOTQ_GATEWAY_HOST": "0.0.0.0", "SLOTQ_GATEWAY_PORT": str(live.free_port())})
        p = subprocess.run(["node", "--import", "tsx", "src/cli/main.ts", "gateway"], cwd=live.REPO, env=env, stdin=subprocess.DEVNULL, capture_output=True, timeout=120)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("Refusing to listen on 0.0.0.0 without a token", p.stderr.decode() + p.stdout.decode())


class MalformedTest(LiveTestCase):
    def post(self, path: str, body: bytes, content_type: str = "application/json"):
        headers = {"authorization": f"Bearer {self.env.token}"}
        if content_type:
            headers["content-type"] = content_type
        return live.raw_request(self.env.port, "POST", path, body, headers)

    async def test_malformed_requests_get_400_with_contract_codes(self) -> None:
        sid = self.backend._session
        cases = [
            (f"/v1/sessions/{sid}/execute_batch", b'{"requests": [', "application/json", "INVALID_ARGS", "Malformed JSON"),
            (f"/v1/sessions/{sid}/execute_batch", b'{"requests": [], "surprise": 1}', "application/json", "INVALID_ARGS", "surprise"),
            (f"/v1/sessions/{sid}/execute_batch", b'{"requests": "nope"}', "application/json", "INVALID_ARGS", "requests"),
            (f"/v1/sessions/{sid}/execute_batch", b'{"requests": [{"slot": {}, "tool": "bash", "args": {}, "extra": 1}]}', "application/json", "INVALID_ARGS", "extra"),
            (f"/v1/sessions/{sid}/acquire", b'{"trajectory_id": 5}', "application/json", "INVALID_ARGS", "trajectory_id"),
            (f"/v1/sessions/{sid}/acquire", b"trajectory=1", "text/plain", "INVALID_ARGS", "Content-Type"),
            ("/v1/sessions", b'{"ttl_s": "sixty"}', "application/json", "INVALID_ARGS", "ttl_s"),
        ]
        for path, body, ctype, code, word in cases:
            status, answer = self.post(path, body, ctype)
            self.assertEqual(status, 400, (path, body, answer))
            self.assertEqual(answer["error"]["code"], code, answer)
            self.assertIn(word, answer["error"]["message"], answer)
            self.assertFalse(answer["error"]["retryable"])

    async def test_oversized_body_gets_400_too_large(self) -> None:
        sid = self.backend._session
        body = json.dumps({"requests": [], "timeout_s": 1, "pad": "x" * (live.MAX_BODY_BYTES + 10)}).encode()
        status, answer = self.post(f"/v1/sessions/{sid}/execute_batch", body)
        self.assertEqual((status, answer["error"]["code"]), (400, "TOO_LARGE"))

    async def test_unknown_session_and_route(self) -> None:
        status, answer = self.post("/v1/sessions/s0000/execute_batch", b'{"requests": []}')
        self.assertEqual((status, answer["error"]["code"], answer["error"]["retryable"]), (404, "BACKEND_STOPPED", True))
        self.assertIn("Unknown session", answer["error"]["message"])
        status, answer = self.post("/v1/nowhere", b"{}")
        self.assertEqual((status, answer["error"]["code"]), (404, "NOT_FOUND"))

    async def test_a_bad_slot_inside_a_valid_envelope_is_a_per_call_result(self) -> None:
        sid = self.backend._session
        slot = await self.within(self.backend.acquire("envelope"))
        good = {"slot": slot._to_wire(), "tool": "bash", "args": {"command": "echo -n ok"}}
        status, answer = self.post(f"/v1/sessions/{sid}/execute_batch", json.dumps({"requests": [{"slot": {"slot_id": 1}, "tool": "bash"}, good]}).encode())
        self.assertEqual(status, 200, answer)
        bad, ok = answer["results"]
        self.assertEqual((bad["success"], bad["metadata"]["code"]), (False, "INVALID_ARGS"))
        self.assertEqual((ok["success"], ok["output"]), (True, "ok"))
        await self.backend.release(slot)

    async def test_unreachable_gateway_is_a_typed_retryable_error(self) -> None:
        b = self.env.backend(url=f"http://127.0.0.1:{live.free_port()}", connect_timeout_s=2)
        with self.assertRaises(SlotqError) as cm:
            await self.within(b.start(), 30)
        self.assertEqual((cm.exception.code, cm.exception.retryable), ("INTERNAL", True))


if __name__ == "__main__":
    unittest.main()
