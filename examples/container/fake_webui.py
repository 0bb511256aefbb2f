"""A stand-in for a WebUI: a server that becomes ready late and keeps
workers, one of them in a session of its own (as daemonizing helpers do).
Nothing here knows about corral: corral contains whatever it spawns."""
import http.server
import os
import subprocess
import sys
import time

port = int(sys.argv[sys.argv.index("--port") + 1]) if "--port" in sys.argv else 7860
sleeper = [sys.executable, "-c", "import time; time.sleep(10**9)"]
workers = [
    subprocess.Popen(sleeper),
    subprocess.Popen(sleeper, start_new_session=True),  # setsid: out of the process group
]
# Loading the model. A test holds it until the file FAKE_WEBUI_GATE names exists.
gate = os.environ.get("FAKE_WEBUI_GATE")
if gate:
    while not os.path.exists(gate):
        time.sleep(0.05)
else:
    time.sleep(2)


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if self.path == "/health" else 404)
        self.end_headers()
        self.wfile.write(b"ok\n")

    def log_message(self, *args):
        pass


print(f"Running on local URL:  http://0.0.0.0:{port}", flush=True)
http.server.ThreadingHTTPServer(("0.0.0.0", port), Handler).serve_forever()
