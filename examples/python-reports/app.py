"""The reports service: a stdlib HTTP server using Debian 12's python3-jinja2
(3.1.2), python3-yaml (6.0) and python3-requests (2.28.1, with urllib3
1.26.12), on REPORTS_ADDR (default 127.0.0.1:8060). It exports one SERVER
span per request (tracing.py); tools/record.sh profiles it with austin. It
stops on SIGTERM, flushing its spans first.
"""

import json
import os
import signal
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jinja2
import yaml

import tracing

ENV = jinja2.Environment(autoescape=True)
PAGE = ENV.from_string(
    "<h1>{{ title }}</h1><table>"
    "{% for row in rows %}<tr{{ row.attrs|xmlattr }}>"
    "<td>{{ row.name }}</td><td>{{ row.total }}</td></tr>{% endfor %}</table>"
)

REPORTS = {}
for i in range(50):
    REPORTS[str(i)] = {
        "title": f"report {i}",
        "rows": [{"name": f"line {j}", "total": (i * 31 + j * 7) % 1000,
                  "attrs": {"class": "even" if j % 2 == 0 else "odd", "data-line": j, "data-report": i, "title": f"line {j} of report {i}"}} for j in range(400)],
    }


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _send(self, status, ctype, body):
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        return status

    def _serve(self, method):
        span = tracing.start_server(self.headers.get("traceparent"))
        path = self.path.split("?", 1)[0]
        route = None
        try:
            if method == "GET" and path.startswith("/reports/") and path.count("/") == 2:
                route = "/reports/{id}"
                rep = REPORTS.get(path[len("/reports/"):])
                status = self._send(404, "text/plain", "no such report\n") if rep is None else self._send(200, "text/html", PAGE.render(**rep))
            elif method == "POST" and path == "/reports":
                route = "/reports"
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                doc = yaml.safe_load(body)
                rid = str(len(REPORTS))
                REPORTS[rid] = {"title": str(doc.get("title", "untitled")),
                                "rows": [{"name": str(r.get("name")), "total": int(r.get("total", 0)), "attrs": {}} for r in doc.get("rows", [])]}
                status = self._send(201, "application/json", json.dumps({"id": rid}))
            elif method == "POST" and path == "/admin/webhook":
                route = "/admin/webhook"
                token = os.environ.get("REPORTS_ADMIN_TOKEN", "")
                if not token or self.headers.get("X-Admin-Token") != token:
                    status = self._send(403, "text/plain", "forbidden\n")
                else:
                    # Imported where it is used, as rarely used clients
                    # often are: a service that posts no webhook never
                    # runs requests' code (or urllib3's), not even its
                    # import.
                    import requests

                    url = self.rfile.read(int(self.headers.get("Content-Length", "0"))).decode()
                    r = requests.post(url, json=list(REPORTS), timeout=5)
                    status = self._send(200, "text/plain", f"webhook answered {r.status_code}\n")
            else:
                status = self._send(404, "text/plain", "not found\n")
        except (ValueError, AttributeError, yaml.YAMLError) as e:
            status = self._send(400, "text/plain", f"{type(e).__name__}\n")
        client = (self.headers.get("X-Forwarded-For") or self.client_address[0]).split(",")[0].strip()
        host, port = self.server.server_address[:2]
        span.end(f"{method} {route}" if route else method, method, route, path, client, host, port, status)

    def do_GET(self):
        self._serve("GET")

    def do_POST(self):
        self._serve("POST")


def main():
    host, port = os.environ.get("REPORTS_ADDR", "127.0.0.1:8060").rsplit(":", 1)
    server = ThreadingHTTPServer((host, int(port)), Handler)

    def stop(*_):
        threading.Thread(target=server.shutdown).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"reports: listening on {host}:{port}", flush=True)
    server.serve_forever()
    tracing.close()


if __name__ == "__main__":
    main()
