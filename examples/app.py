"""A local app for `hook listen`: it takes EventBridge events and verifies signed webhooks.

    WEBHOOK_SECRET=dev-secret python3 examples/app.py 3000
    hook listen --target localhost:3000

EventBridge events arrive as JSON POSTs to the target path. Webhooks ingested by the relay
(`POST /v1/ingest/<channel>/...`) arrive with their original method, path, headers and body
bytes; this app checks `X-Signature: sha256=<hex HMAC-SHA256(secret, body)>` like GitHub-style
senders, which only passes because hook never re-serializes the body. Standard library only.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SECRET = os.environ.get("WEBHOOK_SECRET", "dev-secret").encode()


class Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        signature = self.headers.get("X-Signature")
        if signature is not None:
            expected = "sha256=" + hmac.new(SECRET, body, hashlib.sha256).hexdigest()
            if not hmac.compare_digest(signature, expected):
                return self.answer(401, {"error": "bad signature"})
            print(f"verified webhook {self.path} ({len(body)} bytes)", flush=True)
            return self.answer(200, {"ok": True, "verified": True})
        try:
            event = json.loads(body)
        except ValueError:
            return self.answer(400, {"error": "expected JSON"})
        kind = event.get("detail-type", "?")
        if event.get("detail", {}).get("currency") == "JPY":
            # A bug to find with `hook listen`, fix, then `hook replay --failed`.
            return self.answer(500, {"error": "no exchange rate for JPY"})
        print(f"handled {kind} {event.get('id', '')} from {event.get('source', '?')}", flush=True)
        return self.answer(200, {"ok": True})

    def answer(self, status: int, data: dict[str, object]) -> None:
        payload = json.dumps(data).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: object) -> None:  # quiet access log
        pass


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 3000
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    print(f"example app on http://127.0.0.1:{port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
