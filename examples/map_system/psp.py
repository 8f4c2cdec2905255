"""The external payment processor, stubbed: a loopback HTTP server that accepts charges.

It is a third party: it runs no flowtrace and exports no spans. Prints ``READY <port>``.
"""

from __future__ import annotations

import json
import signal
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any


class Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        charge = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        assert not charge["card"].replace(" ", "").isdigit()  # a token, never a PAN
        payload = json.dumps({"status": "authorized"}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        return None


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    server = HTTPServer(("127.0.0.1", 0), Handler)
    print(f"READY {server.server_address[1]}", flush=True)
    server.serve_forever()
