"""A webhook receiver for Alertmanager that logs what it gets.

    python3 scripts/stack-receiver.py PORT LOG

Each notification is appended to LOG as one JSON line, with the path it
came to (/page or /ticket), and summarised on standard output.
"""

import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Receiver(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        try:
            notification = json.loads(body)
        except ValueError:
            notification = {"unreadable": body.decode("utf-8", "replace")}
        line = json.dumps({"path": self.path, "notification": notification})
        with open(LOG, "a", encoding="utf-8") as log:
            log.write(line + "\n")
        for alert in notification.get("alerts", []):
            labels = alert.get("labels", {})
            print(
                f"{self.path} {alert.get('status')} {labels.get('alertname')} "
                f"slo={labels.get('slo')} severity={labels.get('severity')}",
                flush=True,
            )
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    PORT, LOG = int(sys.argv[1]), sys.argv[2]
    ThreadingHTTPServer(("127.0.0.1", PORT), Receiver).serve_forever()
