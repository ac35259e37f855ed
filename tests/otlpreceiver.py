"""A small OTLP/HTTP receiver on 127.0.0.1 that decodes real protobuf trace exports."""

from __future__ import annotations

import gzip
import threading
from tests.localserver import LocalServer, QuietHandler

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest


class OtlpReceiver(LocalServer):
    def __init__(self):
        self.spans: list = []
        self.resources: list = []
        self._lock = threading.Lock()
        self._start_server()

    @property
    def endpoint(self) -> str:
        return self.base_url

    def by_name(self) -> dict[str, list]:
        found: dict[str, list] = {}
        for span in self.spans:
            found.setdefault(span.name, []).append(span)
        return found

    def _handler(self):
        receiver = self

        class Handler(QuietHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                request = ExportTraceServiceRequest()
                request.ParseFromString(body)
                with receiver._lock:
                    for resource_spans in request.resource_spans:
                        receiver.resources.append(resource_spans.resource)
                        for scope_spans in resource_spans.scope_spans:
                            receiver.spans.extend(scope_spans.spans)
                self.send_body(200, b"", "application/x-protobuf")

        return Handler


def attributes(span) -> dict:
    values = {}
    for attribute in span.attributes:
        value = attribute.value
        kind = value.WhichOneof("value")
        values[attribute.key] = getattr(value, kind) if kind else None
    return values
