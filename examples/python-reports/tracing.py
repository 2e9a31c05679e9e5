"""A minimal OTLP/HTTP span exporter (OTLP/JSON to
OTEL_EXPORTER_OTLP_ENDPOINT/v1/traces): Debian 12 packages no OpenTelemetry
Python SDK and PyPI is out of reach here, so the service records its SERVER
spans itself, in the OTLP wire format. Spans go out every second and when
the service stops; W3C traceparent headers are honoured.
"""

import json
import os
import secrets
import threading
import time
import urllib.request

_endpoint = os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").rstrip("/")
_pending = []
_lock = threading.Lock()
_stop = threading.Event()


class Span:
    def __init__(self, trace_id, parent_id):
        self.trace_id, self.span_id, self.parent_id = trace_id, secrets.token_hex(8), parent_id
        self.start = time.time_ns()

    def end(self, name, method, route, path, client, host, port, status):
        if not _endpoint:
            return
        attrs = [("http.request.method", method)] + ([("http.route", route)] if route else []) + [
            ("url.path", path), ("client.address", client), ("server.address", host)]
        span = {
            "traceId": self.trace_id, "spanId": self.span_id, "name": name, "kind": 2,
            "startTimeUnixNano": str(self.start), "endTimeUnixNano": str(time.time_ns()),
            "attributes": [{"key": k, "value": {"stringValue": v}} for k, v in attrs] + [
                {"key": "server.port", "value": {"intValue": str(port)}},
                {"key": "http.response.status_code", "value": {"intValue": str(status)}}],
        }
        if self.parent_id:
            span["parentSpanId"] = self.parent_id
        with _lock:
            _pending.append(span)


def start_server(traceparent):
    parts = (traceparent or "").split("-")
    if len(parts) == 4 and len(parts[1]) == 32 and len(parts[2]) == 16:
        return Span(parts[1], parts[2])
    return Span(secrets.token_hex(16), "")


def _flush():
    with _lock:
        batch = _pending[:]
        _pending.clear()
    if not batch:
        return
    body = {"resourceSpans": [{
        "resource": {"attributes": [
            {"key": "service.name", "value": {"stringValue": "reports"}},
            {"key": "telemetry.sdk.language", "value": {"stringValue": "python"}}]},
        "scopeSpans": [{"scope": {"name": "reports"}, "spans": batch}]}]}
    req = urllib.request.Request(_endpoint + "/v1/traces", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            resp.read()
    except OSError as e:
        print(f"reports: OTLP export: {e}, {len(batch)} spans lost", flush=True)


def _loop():
    while not _stop.wait(1.0):
        _flush()


if _endpoint:
    threading.Thread(target=_loop, name="otlp-exporter", daemon=True).start()


def close():
    _stop.set()
    if _endpoint:
        _flush()
