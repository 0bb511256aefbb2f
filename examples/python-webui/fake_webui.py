"""A stand-in for Stable Diffusion WebUI (AUTOMATIC1111), to try
webui_manager.py without a GPU or a model download.

It behaves the way the real one does towards a process manager:

- it takes its launch arguments (``--port``, ``--api``,
  ``--api-server-stop``, and any others, which it only reports);
- it loads for a while (``--boot-delay``, default 2s) before it listens;
- it starts a worker process of its own, so it is a tree, not a process;
- it prints ``Running on local URL:  http://127.0.0.1:PORT`` once it
  serves, as the real one does (corral's a1111 preset waits for that line
  and for ``/sdapi/v1/options``);
- with ``--api-server-stop`` it stops itself on
  ``POST /sdapi/v1/server-stop``, the stop hook corral sends first.

``GET /sdapi/v1/options`` answers ``{"argv": [...], "pid": N, "worker": N}``.
"""

from __future__ import annotations

import argparse
import http.server
import json
import os
import subprocess
import sys
import threading
import time
from typing import List


def main(argv: List[str]) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=7860)
    ap.add_argument("--boot-delay", type=float, default=2.0)
    ap.add_argument("--api", action="store_true")
    ap.add_argument("--api-server-stop", action="store_true")
    args, _others = ap.parse_known_args(argv)

    print(f"Launching Web UI with arguments: {' '.join(argv)}", flush=True)
    # A worker, as extensions and model loaders start: the tree a
    # PID-tracking launcher leaks when it kills only this process.
    worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3600)"])
    time.sleep(args.boot_delay)  # "Loading weights…"

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.startswith("/sdapi/v1/options") and args.api:
                self._json(200, {"argv": argv, "pid": os.getpid(), "worker": worker.pid})
            elif self.path == "/":
                self._json(200, {"ui": "fake"})
            else:
                self._json(404, {"detail": "Not Found"})

        def do_POST(self) -> None:
            if self.path == "/sdapi/v1/server-stop" and args.api_server_stop:
                self._json(200, {"stopping": True})
                threading.Thread(target=server.shutdown, daemon=True).start()
            else:
                self._json(404, {"detail": "Not Found"})

        def _json(self, code: int, doc: object) -> None:
            body = json.dumps(doc).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    print(f"Running on local URL:  http://127.0.0.1:{args.port}", flush=True)
    server.serve_forever()
    print("server stopped by the API", flush=True)
    worker.terminate()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
