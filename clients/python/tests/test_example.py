"""examples/python-webui end to end, with its fake WebUI: started with the
user's launch arguments, ready, recovered through ensure after the WebUI
is killed, and gone completely when the manager exits or is SIGKILLed."""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import threading
import urllib.request
from pathlib import Path
from typing import Any, Dict, Iterator, List, Set

import pytest

from conftest import PY, REPO, SRC, Ident, assert_all_gone, descendants, free_port, ident, marked

EXAMPLE = REPO / "examples" / "python-webui"


class Manager:
    """The example running as the user would run it, its stdout read by a
    thread so that every wait has a deadline."""

    def __init__(self, corral_bin: str, workdir: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = dict(os.environ, PYTHONPATH=str(SRC), PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen(
            [PY, str(EXAMPLE / "webui_manager.py"), "--corral", corral_bin, "--port", str(self.port),
             "--dir", str(EXAMPLE), "--workdir", str(workdir / "mgr"), "--poll", "0.1", "--",
             PY, "fake_webui.py", "--port", str(self.port), "--api", "--api-server-stop",
             "--medvram-sdxl", "--boot-delay", "0.5"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
        self.lines: "queue.Queue[str]" = queue.Queue()
        self.seen: List[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            self.lines.put(raw.decode(errors="replace").rstrip("\n"))
        self.lines.put("<EOF>")

    def expect(self, pattern: str, timeout: float = 20) -> "re.Match[str]":
        rx = re.compile(pattern)
        while True:
            try:
                line = self.lines.get(timeout=timeout)
            except queue.Empty:
                pytest.fail(f"no line matching {pattern!r} within {timeout}s; output:\n" + "\n".join(self.seen))
            self.seen.append(line)
            m = rx.search(line)
            if m:
                return m
            if line == "<EOF>":
                pytest.fail(f"the manager exited before {pattern!r}; output:\n" + "\n".join(self.seen))

    def options(self) -> Dict[str, Any]:
        with urllib.request.urlopen(self.url + "/sdapi/v1/options", timeout=5) as r:
            doc = json.loads(r.read())
        assert isinstance(doc, dict)
        return doc


@pytest.fixture
def manager(corral_bin: str, workdir: Path) -> Iterator[Manager]:
    m = Manager(corral_bin, workdir)
    daemon = 0
    try:
        daemon = int(m.expect(r"corral daemon pid (\d+)").group(1))
        m.daemon = daemon  # type: ignore[attr-defined]
        yield m
    finally:
        if m.proc.poll() is None:
            m.proc.kill()
            m.proc.wait()
        if daemon and ident(daemon):
            os.kill(daemon, signal.SIGTERM)  # its verified shutdown


def instance_of(m: Manager) -> "re.Match[str]":
    return m.expect(r"(?:ready|recovered): .*\(pid (\d+), instance (\w+), (\d+) processes\)")


def everything(m: Manager, instance: str) -> Set[Ident]:
    return descendants(m.daemon) | marked(instance)  # type: ignore[attr-defined]


def test_example_starts_recovers_and_shuts_down_verified(manager: Manager) -> None:
    m = manager
    first = instance_of(m)
    opts = m.options()
    assert opts["argv"][:5] == ["--port", str(m.port), "--api", "--api-server-stop", "--medvram-sdxl"]
    old_pid, old_instance = int(first.group(1)), first.group(2)
    assert opts["pid"] == old_pid
    old = marked(old_instance)
    assert {i[0] for i in old} >= {old_pid, opts["worker"]}

    # The WebUI dies (an out-of-memory kill, say): the app loses its
    # connection and gets it back through ensure.
    os.kill(old_pid, signal.SIGKILL)
    m.expect(r"connection lost")
    again = instance_of(m)
    assert again.group(2) != old_instance and int(again.group(1)) != old_pid
    assert_all_gone(old, 5, "the first instance's tree (its worker too)")
    assert m.options()["pid"] == int(again.group(1))
    daemon = ident(m.daemon)  # type: ignore[attr-defined]
    assert daemon is not None
    left = everything(m, again.group(2)) | {daemon}

    m.proc.send_signal(signal.SIGTERM)  # the app quits
    m.expect(r"verified: stopped \['webui'\].*daemon exit status 0")
    assert m.proc.wait(20) == 0
    assert_all_gone(left, 5, "the daemon, its keeper and the WebUI's tree after the app quit")


def test_example_sigkilled_leaves_nothing(manager: Manager) -> None:
    m = manager
    ready = instance_of(m)
    daemon = ident(m.daemon)  # type: ignore[attr-defined]
    assert daemon is not None
    left = everything(m, ready.group(2)) | {daemon}
    assert len(left) >= 4  # daemon, keeper, WebUI, its worker

    m.proc.send_signal(signal.SIGKILL)  # the app crashes
    m.proc.wait(10)
    assert_all_gone(left, 20, "everything after the app was SIGKILLed")
    assert marked(ready.group(2)) == set()
