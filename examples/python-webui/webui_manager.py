"""A WebUI process manager on corral: what a desktop app (a model
launcher, an image tool with a bundled Stable Diffusion) needs of the WebUI
it runs beside itself, without leaking it.

The manager this replaces did ``subprocess.Popen(["webui.bat", *args])``,
polled the API, and on a lost connection started another one, tracking and
killing only the PID it started. Every restart or crash of the app left the
previous tree (cmd.exe → python launch.py → workers) running, holding
gigabytes of VRAM and the port. Here:

1. the user's launch arguments become the service's command in a
   generated corral.toml (the a1111 preset knows when the WebUI is ready
   and how to stop it);
2. ``Corral.launch(..., exit_with=os.getpid())`` starts a daemon tethered
   to this process, and ``ensure`` returns once the WebUI answers;
3. on a lost connection the manager calls ``ensure`` again: it waits for
   the restart corral's policy already began, or starts one, and never a
   second instance beside the first (if the WebUI answers corral's probe
   but not us, it restarts it: stop, verified empty, start);
4. when the app exits (the ``with`` block ends, on Ctrl-C and SIGTERM
   too) the shutdown is verified: it raises if anything survived. When
   the app crashes or is killed, the daemon notices its pid exit and runs
   the same verified shutdown itself.

Run it (any WebUI launch command after ``--``)::

    PYTHONPATH=clients/python/src python3 examples/python-webui/webui_manager.py \\
        --port 7860 -- python3 examples/python-webui/fake_webui.py --port 7860 --api --api-server-stop
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
import urllib.error
import urllib.request
from typing import Any, Dict, List, Optional

from corral import Corral, CorralError, Launched, Service, ShutdownIncomplete, toml


def write_config(workdir: str, command: List[str], port: int, webui_dir: str, ready_timeout: str) -> str:
    """corral.toml for one WebUI started with the user's own arguments."""
    os.makedirs(workdir, mode=0o700, exist_ok=True)
    api = f"http://127.0.0.1:{port}/sdapi/v1/options"
    service: Dict[str, Any] = {
        "preset": "a1111",  # the stop hook (with --api-server-stop), SD_WEBUI_RESTART, tmp/restart
        "port": port,
        "command": command,
        "dir": webui_dir,
        # Python buffers stdout on a pipe: without this the log line that
        # says "ready" would arrive minutes late, or never.
        "env": {"PYTHONUNBUFFERED": "1"},
        # The preset's probes, written out: a ready table of one's own
        # replaces the preset's whole probe, not just the keys it names.
        "ready": {"http": api, "log": "Running on local URL", "timeout": ready_timeout, "interval": "250ms"},
        "health": {"http": api, "interval": "5s", "failures": 3},
        "restart": {"policy": "on-failure", "backoff": "500ms", "burst": 5, "window": "10m"},
        "stop": {"grace": "10s"},
        "autostart": False,  # the app decides when (ensure)
    }
    path = os.path.join(workdir, "corral.toml")
    with open(path, "w") as f:
        f.write(toml.dumps({"corral": {"shutdown_timeout": "60s"}, "services": {"webui": service}}))
    return path


def options(url: str, timeout: float = 5.0) -> Optional[Dict[str, Any]]:
    """What the app's UI asks the WebUI all day; None when the connection
    is lost (refused, reset, timed out)."""
    try:
        with urllib.request.urlopen(url + "/sdapi/v1/options", timeout=timeout) as r:
            doc = json.loads(r.read())
            return doc if isinstance(doc, dict) else {}
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError, ValueError):
        return None


def say(msg: str) -> None:
    print(msg, flush=True)


def describe(s: Service) -> str:
    return f"pid {s.pid}, instance {s.instance}, {s.member_count} processes"


class Quit(Exception):
    """SIGTERM or SIGINT: leave the with block, which shuts down verified."""


def main(argv: List[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corral", help="the corral binary (default $CORRAL_BIN, then PATH)")
    ap.add_argument("--port", type=int, default=7860)
    ap.add_argument("--dir", default=os.getcwd(), help="the WebUI's directory (its command runs there)")
    ap.add_argument("--workdir", default=None, help="where corral.toml and corral's state go (default DIR/.webui-manager)")
    ap.add_argument("--ready-timeout", default="10m", help="first starts load models (a Go duration)")
    ap.add_argument("--poll", type=float, default=1.0, help="seconds between the app's API calls")
    ap.add_argument("command", nargs=argparse.REMAINDER, help="-- the WebUI's launch command and the user's arguments")
    a = ap.parse_args(argv)
    command = a.command[1:] if a.command[:1] == ["--"] else a.command
    if not command:
        ap.error("give the WebUI's launch command after --")

    webui_dir = os.path.abspath(a.dir)
    cfg = write_config(a.workdir or os.path.join(webui_dir, ".webui-manager"), command, a.port, webui_dir, a.ready_timeout)
    url = f"http://127.0.0.1:{a.port}"

    def quit_(signum: int, frame: Any) -> None:
        # Once: a second Ctrl-C must not interrupt the verified shutdown.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        if hasattr(signal, "SIGTERM"):
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise Quit()

    signal.signal(signal.SIGINT, quit_)
    if hasattr(signal, "SIGTERM"):
        signal.signal(signal.SIGTERM, quit_)

    corral: Optional[Launched] = None
    try:
        with Corral.launch(cfg, exit_with=os.getpid(), corral=a.corral) as corral:
            say(f"corral daemon pid {corral.pid}, state {corral.state_dir}")
            s = corral.ensure("webui")
            say(f"ready: {url} ({describe(s)})")
            misses = 0
            while True:
                if options(url) is not None:
                    misses = 0
                    time.sleep(a.poll)
                    continue
                say("connection lost: asking corral to ensure the WebUI")
                s = corral.ensure("webui")
                misses += 1
                if options(url) is None and misses >= 3:
                    # corral's probe passes but we cannot get through: a
                    # hung server. A restart is stop (verified) then start.
                    say("still unreachable: restarting it")
                    s = corral.restart("webui", wait=True)
                    misses = 0
                say(f"recovered: {url} ({describe(s)})")
    except Quit:
        pass  # the with block has shut down, verified
    except ShutdownIncomplete as e:
        say(f"NOT CLEAN: {e}")
        return 3
    except CorralError as e:
        # The with block has shut down verified first (or raised above).
        say(f"the WebUI failed: {type(e).__name__}: {e}")
        return 1
    if corral is None:
        # Quit during the launch: the daemon, tethered to this process,
        # shuts itself down (verified) as this process exits.
        say("quit before the WebUI was up")
        return 1
    res = corral.shutdown()  # done already by the with block: its result
    say(f"verified: stopped {res.stopped}; the WebUI and every process it started are gone "
        f"(daemon exit status {res.daemon_exit})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
