"""A user's own Daily webhook endpoint, as a process: ``python tests/receiver/user_app.py PORT LOG``.

It stands for the application a domain's webhook fed before daily-sip took it over. It verifies
every delivery with its own secret (``USER_APP_SECRET``) straight from Daily's docs
(https://docs.daily.co/reference/rest-api/webhooks: base64 HMAC-SHA256 over
``"<X-Webhook-Timestamp>.<raw body>"`` with the base64-decoded secret; written apart from
daily_sip's code so the two can disagree), answers 401 to a bad signature and 200 otherwise,
and appends one JSON line per request to LOG: ``{"id", "type", "valid"}``. Prints its URL first.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SECRET = base64.b64decode(os.environ["USER_APP_SECRET"])
LOCK = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        timestamp = self.headers.get("X-Webhook-Timestamp") or ""
        signature = self.headers.get("X-Webhook-Signature") or ""
        expected = base64.b64encode(
            hmac.new(SECRET, timestamp.encode() + b"." + body, hashlib.sha256).digest()
        ).decode()
        valid = bool(signature) and hmac.compare_digest(expected, signature)
        try:
            document = json.loads(body)
        except ValueError:
            document = {}
        record = {"id": document.get("id"), "type": document.get("type", "ping"), "valid": valid}
        with LOCK, open(sys.argv[2], "a") as log:
            log.write(json.dumps(record) + "\n")
        self.send_response(200 if valid else 401)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


if __name__ == "__main__":
    server = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler)
    print(f"http://127.0.0.1:{server.server_address[1]}/daily", flush=True)
    server.serve_forever()
