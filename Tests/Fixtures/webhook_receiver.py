"""A merchant's webhook endpoint for the tests: verifies every request with the `standardwebhooks`
package (an implementation independent of the project's) and prints one JSON line per request.

Environment: WEBHOOK_SECRET (whsec_...), FAIL_FIRST (answer 503 to the first N requests).
Prints `listening <port>` first; answers 204 to a verified request, 401 to any other.
"""
import json
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks.webhooks import Webhook

webhook = Webhook(os.environ["WEBHOOK_SECRET"])
fail_first = int(os.environ.get("FAIL_FIRST", "0"))
seen = 0


class Receiver(BaseHTTPRequestHandler):
    def do_POST(self):
        global seen
        seen += 1
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        headers = {name.lower(): value for name, value in self.headers.items()}
        record = {"n": seen, "path": self.path, "headers": headers}
        if seen <= fail_first:
            record["answer"] = 503
            self.respond(503, record)
            return
        try:
            record["payload"] = webhook.verify(body, headers)
            record["verified"] = True
            self.respond(204, record)
        except Exception as error:  # noqa: BLE001 - any failure is reported to the test
            record["verified"] = False
            record["error"] = repr(error)
            self.respond(401, record)

    def respond(self, status, record):
        record["answer"] = status
        print(json.dumps(record, default=str), flush=True)
        self.send_response(status)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
print(f"listening {server.server_address[1]}", flush=True)
server.serve_forever()
