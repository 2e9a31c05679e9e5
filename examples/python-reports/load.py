"""The bounded traffic generator: python3 load.py BASE_URL N RATE sends N
requests one at a time, at most RATE a second, as public clients
(X-Forwarded-For in 198.51.100.0/24): three in four GET /reports/{id}, the
rest POST /reports with a YAML body. It never calls POST /admin/webhook, and
exits 1 if any request failed.
"""

import sys
import time
import urllib.request

base, n, rate = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
failed, start = 0, time.monotonic()
for k in range(n):
    delay = start + k / rate - time.monotonic()
    if delay > 0:
        time.sleep(delay)
    headers = {"X-Forwarded-For": f"198.51.100.{1 + (k * 37) % 254}"}
    if k % 4 < 3:
        req = urllib.request.Request(f"{base}/reports/{(k * 13) % 50}", headers=headers)
    else:
        rows = "".join(f"  - {{name: item {j}, total: {j * k % 97}}}\n" for j in range(30))
        req = urllib.request.Request(f"{base}/reports", data=f"title: upload {k}\nrows:\n{rows}".encode(),
                                     headers={**headers, "Content-Type": "application/yaml"}, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            resp.read()
    except OSError as e:
        failed += 1
        print(f"load: {req.get_method()} {req.full_url}: {e}", file=sys.stderr)
print(f"load: {n} requests, {failed} failed", file=sys.stderr)
sys.exit(1 if failed else 0)
