"""An HTTP server that becomes ready late: it sleeps DELAY seconds, says so
on stdout, then answers every GET with 200 and its pid (a model server
loading its weights before it listens)."""
import http.server
import json
import os
import sys
import time

port, delay = int(sys.argv[1]), float(sys.argv[2])
print(f"loading for {delay}s", flush=True)
time.sleep(delay)


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = json.dumps({"pid": os.getpid()}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


server = http.server.HTTPServer(("127.0.0.1", port), Handler)
print(f"listening on {port}", flush=True)
server.serve_forever()
