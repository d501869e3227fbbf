"""Stand-in for the parts of the DigitalOcean API the droplet monitoring uses, for the tests and
the benchmark: it checks the documented request contract and serves scripted metric series.

Start: `python digitalocean_standin.py`. Prints `listening <port>` first. SIGTERM stops it.
Environment: DO_TOKEN (the one token it accepts; default `do-test-token`).

API (every request needs `Authorization: Bearer <DO_TOKEN>`, else 401 `unauthorized`):
  GET /v2/account
  GET /v2/droplets?per_page=N&page=P[&tag_name=T]     paged; `links.pages.next` while more remain
  GET /v2/monitoring/metrics/droplet/<metric>?host_id=&start=&end=
      metrics: cpu, memory_available, memory_total, filesystem_free, filesystem_size, load_1,
      bandwidth (which also needs interface=public|private and direction=inbound|outbound).
      start and end are unix seconds, start < end; host_id a listed droplet. Answers a
      Prometheus matrix with one point per 60 s from start to end: cpu as per-mode time
      counters (idle, user, system) whose use over each step is the droplet's scripted CPU
      percent; memory and disk from the scripted used percents; load_1 and bandwidth constant.
  Every answer carries ratelimit-limit / ratelimit-remaining / ratelimit-reset.

Control (no token):
  POST /_control {"droplets": [{"id", "name", "status", "tags"?}], "cpu": {id: percent},
                  "memory": {id: percent}, "disk": {id: percent}, "page_size": N?,
                  "throttle": N?}  (throttle: answer the next N requests 429 with Retry-After: 1)
  GET  /_violations   ["what was wrong", ...]
  GET  /_requests     {"count": N, "paths": {path: count}}
"""
import json
import signal
import sys
import threading
import time
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

TOKEN = os.environ.get("DO_TOKEN", "do-test-token")
METRICS = {"cpu", "memory_available", "memory_total", "filesystem_free", "filesystem_size", "load_1", "bandwidth"}
LOCK = threading.Lock()
STATE = {"droplets": [], "cpu": {}, "memory": {}, "disk": {}, "page_size": None, "throttle": 0}
VIOLATIONS = []
REQUESTS = {"count": 0, "paths": {}}
MEMORY_TOTAL = 4 * 1024 ** 3
DISK_SIZE = 80 * 1024 ** 3


def violation(text):
    with LOCK:
        VIOLATIONS.append(text)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def answer(self, status, body, headers=None):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("ratelimit-limit", "5000")
        self.send_header("ratelimit-remaining", "4999")
        self.send_header("ratelimit-reset", str(int(time.time()) + 60))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        if parts.path != "/_control":
            return self.answer(404, {"id": "not_found", "message": "The resource you were accessing could not be found."})
        with LOCK:
            for key in ("droplets", "cpu", "memory", "disk", "page_size", "throttle"):
                if key in body:
                    value = body[key]
                    if key in ("cpu", "memory", "disk"):
                        value = {str(k): v for k, v in value.items()}
                    STATE[key] = value
        self.answer(200, {"ok": True})

    def do_GET(self):
        parts = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        if parts.path == "/_violations":
            with LOCK:
                return self.answer(200, list(VIOLATIONS))
        if parts.path == "/_requests":
            with LOCK:
                return self.answer(200, REQUESTS)
        with LOCK:
            REQUESTS["count"] += 1
            REQUESTS["paths"][parts.path] = REQUESTS["paths"].get(parts.path, 0) + 1
        if self.headers.get("Authorization") != f"Bearer {TOKEN}":
            if not (self.headers.get("Authorization") or "").startswith("Bearer "):
                violation(f"{parts.path}: no Bearer token")
            return self.answer(401, {"id": "unauthorized", "message": "Unable to authenticate you."})
        with LOCK:
            if STATE["throttle"] > 0:
                STATE["throttle"] -= 1
                return self.answer(429, {"id": "too_many_requests", "message": "API Rate limit exceeded."}, {"Retry-After": "1"})
        if parts.path == "/v2/account":
            return self.answer(200, {"account": {"uuid": "standin", "status": "active", "email": "ops@mingus.test"}})
        if parts.path == "/v2/droplets":
            return self.droplets(query)
        prefix = "/v2/monitoring/metrics/droplet/"
        if parts.path.startswith(prefix) and parts.path[len(prefix):] in METRICS:
            return self.metric(parts.path[len(prefix):], query)
        violation(f"unknown path {parts.path}")
        self.answer(404, {"id": "not_found", "message": "The resource you were accessing could not be found."})

    def droplets(self, query):
        try:
            per_page = int(query.get("per_page", "20"))
            page = int(query.get("page", "1"))
        except ValueError:
            violation("droplets: per_page and page must be integers")
            return self.answer(400, {"id": "bad_request", "message": "invalid paging"})
        if not 1 <= per_page <= 200:
            violation("droplets: per_page must be 1-200")
        with LOCK:
            droplets = [d for d in STATE["droplets"] if "tag_name" not in query or query["tag_name"] in d.get("tags", [])]
            size = STATE["page_size"] or per_page
        pages = max(1, -(-len(droplets) // size))
        chunk = droplets[(page - 1) * size: page * size]
        body = {
            "droplets": [{"id": d["id"], "name": d["name"], "status": d["status"], "memory": 4096, "vcpus": 2,
                          "region": {"slug": "fra1", "name": "Frankfurt 1"}, "tags": d.get("tags", [])} for d in chunk],
            "links": {"pages": {}},
            "meta": {"total": len(droplets)},
        }
        if page < pages:
            host = self.headers.get("Host")
            extra = f"&tag_name={query['tag_name']}" if "tag_name" in query else ""
            body["links"]["pages"]["next"] = f"http://{host}/v2/droplets?page={page + 1}&per_page={per_page}{extra}"
            body["links"]["pages"]["last"] = f"http://{host}/v2/droplets?page={pages}&per_page={per_page}{extra}"
        self.answer(200, body)

    def metric(self, name, query):
        missing = [p for p in ("host_id", "start", "end") if p not in query]
        if missing:
            violation(f"{name}: missing {', '.join(missing)}")
            return self.answer(400, {"id": "bad_request", "message": "missing parameters"})
        try:
            start, end = int(query["start"]), int(query["end"])
        except ValueError:
            violation(f"{name}: start and end must be unix seconds")
            return self.answer(400, {"id": "bad_request", "message": "invalid time"})
        if start >= end:
            violation(f"{name}: start must be before end")
        if name == "bandwidth" and (query.get("interface") not in ("public", "private") or query.get("direction") not in ("inbound", "outbound")):
            violation("bandwidth: needs interface and direction")
        host = query["host_id"]
        with LOCK:
            if not any(str(d["id"]) == host for d in STATE["droplets"]):
                violation(f"{name}: unknown host_id {host}")
                return self.answer(404, {"id": "not_found", "message": "host not found"})
            cpu = float(STATE["cpu"].get(host, 5))
            memory = float(STATE["memory"].get(host, 40))
            disk = float(STATE["disk"].get(host, 30))
        times = list(range(start - start % 60 + 60, end + 1, 60))
        labels = {"host_id": host}
        if name == "cpu":
            result = []
            for mode, share in (("idle", (100 - cpu) / 100), ("user", cpu / 100 * 0.8), ("system", cpu / 100 * 0.2)):
                # Two CPUs: 120 s of CPU time per 60 s step, counted since an epoch.
                result.append({"metric": dict(labels, mode=mode),
                               "values": [[t, str(round(share * 2 * (t - 1_600_000_000), 3))] for t in times]})
        else:
            value = {
                "memory_total": MEMORY_TOTAL, "memory_available": MEMORY_TOTAL * (100 - memory) / 100,
                "filesystem_size": DISK_SIZE, "filesystem_free": DISK_SIZE * (100 - disk) / 100, "load_1": 0.5, "bandwidth": 1.25,
            }[name]
            metric = dict(labels, device="/dev/vda1", mountpoint="/") if name.startswith("filesystem") else labels
            result = [{"metric": metric, "values": [[t, str(value)] for t in times]}]
        self.answer(200, {"status": "success", "data": {"resultType": "matrix", "result": result}})


def main():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"listening {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
