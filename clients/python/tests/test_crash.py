"""The application that launched corral is SIGKILLed: the tethered daemon
shuts down by itself (verified), and nothing of the trees is left: not the
shell, not the server, not the setsid double-forked escapee, not the keeper.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path
from typing import Any, Dict, Iterator

import pytest

from conftest import (
    PROGS,
    PY,
    SRC,
    assert_all_gone,
    descendants,
    free_port,
    ident,
    marked,
    tree,
    wait_until,
    write_config,
)


@pytest.fixture
def app(corral_bin: str, workdir: Path) -> Iterator[Any]:
    """Start the app (tests/progs/app.py): it launches corral tethered to
    itself and reports the daemon's pid and its service's instance."""
    cfg = write_config(workdir, {"tree": tree(free_port(), delay=0.3)})
    p = subprocess.Popen([PY, str(PROGS / "app.py"), cfg, corral_bin, str(SRC)],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    report: Dict[str, Any] = {}
    p.report = report  # type: ignore[attr-defined]
    try:
        assert p.stdout is not None
        line = p.stdout.readline()  # bounded by the test's own bound
        assert line, f"the app died before reporting: {p.stderr.read().decode() if p.stderr else ''}"
        report.update(json.loads(line))
        yield p
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        # Should the test fail midway, the daemon goes too (SIGTERM is its
        # verified shutdown).
        pid = report.get("daemon", 0)
        if pid and ident(pid):
            os.kill(pid, signal.SIGTERM)


def test_sigkilled_app_leaves_nothing(app: Any, workdir: Path) -> None:
    report = app.report
    daemon = ident(report["daemon"])
    assert daemon is not None
    # the whole tree, with the escapee, is up before the crash
    wait_until(lambda: len(marked(report["instance"])) >= 4, 10, "the four members of the tree")
    everything = descendants(report["daemon"]) | marked(report["instance"]) | {daemon}
    assert len(everything) >= 6  # daemon, keeper, sh, server, escapee's parent and child

    app.send_signal(signal.SIGKILL)
    app.wait(10)
    assert app.returncode == -signal.SIGKILL

    assert_all_gone({daemon}, 20, "the daemon after its app was SIGKILLed")
    assert_all_gone(everything, 5, "the trees after the daemon's verified shutdown")
    assert marked(report["instance"]) == set()
    journal = (workdir / ".corral" / "journal.jsonl").read_text()
    assert f"process {app.pid} (--exit-with) exited" in journal
    assert "verified: 0 supervised processes remain" in (workdir / ".corral" / "daemon.log").read_text()


def test_app_exiting_normally_shuts_down_verified(app: Any) -> None:
    report = app.report
    everything = descendants(report["daemon"]) | marked(report["instance"])
    app.stdin.close()  # the app's work is done: it shuts corral down itself
    out = app.stdout.read()  # until the app exits (bounded by the test's bound)
    assert app.wait(30) == 0, app.stderr.read().decode()
    assert b"clean exit" in out
    assert ident(report["daemon"]) is None
    assert_all_gone(everything, 5, "the tree after the app's own verified shutdown")
