"""A loopback OTLP/HTTP trace receiver that writes what it receives as the Collector's
``file`` exporter does: ``traces.pb`` (``format: proto``: each request preceded by its
length, 4 bytes big-endian) and ``traces.jsonl`` (OTLP JSON, one request a line)."""

from __future__ import annotations

import base64
import json
import struct
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from google.protobuf.json_format import MessageToDict
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)


def _hex_ids(data: Any) -> Any:
    # OTLP JSON spells trace and span ids in hex (protobuf's JSON mapping uses base64)
    if isinstance(data, dict):
        return {
            k: base64.b64decode(v).hex()
            if k in ("traceId", "spanId", "parentSpanId")
            else _hex_ids(v)
            for k, v in data.items()
        }
    if isinstance(data, list):
        return [_hex_ids(v) for v in data]
    return data


class Receiver(ThreadingHTTPServer):
    def __init__(self, directory: Path) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.proto_file = directory / "traces.pb"
        self.json_file = directory / "traces.jsonl"
        self.span_names: list[str] = []
        self.lock = threading.Lock()
        self.changed = threading.Condition(self.lock)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1/traces"

    def wait_for(self, name: str, count: int, timeout: float = 30.0) -> None:
        """Block until ``count`` spans named ``name`` have arrived."""
        with self.changed:
            if not self.changed.wait_for(lambda: self.span_names.count(name) >= count, timeout):
                raise TimeoutError(f"{count} x {name!r} spans did not arrive: {self.span_names}")

    def start(self) -> None:
        threading.Thread(target=self.serve_forever, daemon=True).start()


class _Handler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        with self.server.changed:
            with self.server.proto_file.open("ab") as fh:
                fh.write(struct.pack(">I", len(body)) + body)
            with self.server.json_file.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(_hex_ids(MessageToDict(request))) + "\n")
            for rs in request.resource_spans:
                for ss in rs.scope_spans:
                    self.server.span_names.extend(span.name for span in ss.spans)
            self.server.changed.notify_all()
        payload = ExportTraceServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        return None
