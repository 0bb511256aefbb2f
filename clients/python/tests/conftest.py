"""Fixtures: the real daemon built from this tree, a private directory per
test, small real programs as services, and process checks by pid.

Processes are checked by pid and start time from /proc (never by name),
so a pid the kernel reused for an unrelated process never passes as "still
alive", and one of ours never passes as "gone" while it runs.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Set, Tuple

import pytest

HERE = Path(__file__).resolve().parent
SRC = HERE.parent / "src"
REPO = HERE.parents[2]
PROGS = HERE / "progs"
PY = sys.executable

sys.path.insert(0, str(SRC))

import corral  # noqa: E402
from corral import toml  # noqa: E402

Ident = Tuple[int, int]  # (pid, start time in clock ticks)

TEST_BOUND = float(os.environ.get("CORRAL_PY_TEST_BOUND", "60"))

# The tests that run the daemon read /proc to check processes by pid; the
# others (wire types, errors, the pipe transport's logic) run anywhere.
if not sys.platform.startswith("linux"):
    collect_ignore = ["test_daemon.py", "test_streams.py", "test_crash.py", "test_example.py"]


# --- the binary ----------------------------------------------------------


@pytest.fixture(scope="session")
def corral_bin(tmp_path_factory: pytest.TempPathFactory) -> str:
    """corral built once per session from the repository (or $CORRAL_BIN,
    when CI has built it already)."""
    given = os.environ.get("CORRAL_BIN")
    if given:
        assert os.access(given, os.X_OK), f"CORRAL_BIN={given} is not executable"
        return given
    go = shutil.which("go") or "/usr/local/go/bin/go"
    out = tmp_path_factory.mktemp("bin") / "corral"
    env = dict(os.environ, GOFLAGS=(os.environ.get("GOFLAGS", "") + " -buildvcs=false").strip())
    p = subprocess.run([go, "build", "-o", str(out), "./cmd/corral"], cwd=REPO, env=env,
                       capture_output=True, timeout=300)
    assert p.returncode == 0, f"go build failed:\n{p.stderr.decode()}"
    return str(out)


# --- bounds --------------------------------------------------------------


@pytest.fixture(autouse=True)
def _bounded() -> Iterator[None]:
    """Every test ends within TEST_BOUND seconds, a hang included."""

    if not hasattr(signal, "setitimer"):  # Windows: no SIGALRM
        yield
        return

    def expired(signum: int, frame: Any) -> None:
        raise TimeoutError(f"test exceeded its bound of {TEST_BOUND}s")

    old = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, TEST_BOUND)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def wait_until(pred: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll pred until it is truthy (and return it); fail after timeout."""
    deadline = time.monotonic() + timeout
    delay = 0.005
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= deadline:
            pytest.fail(f"not within {timeout}s: {what}")
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


# --- directories, ports, configurations ----------------------------------


@pytest.fixture
def workdir() -> Iterator[Path]:
    """A private directory with a short path (unix socket paths are
    limited to about 100 bytes)."""
    d = Path(tempfile.mkdtemp(prefix="cpy-", dir="/tmp"))
    os.chmod(d, 0o700)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_config(dir: Path, services: Dict[str, Any], corral_table: Optional[Dict[str, Any]] = None) -> str:
    doc: Dict[str, Any] = {}
    doc["corral"] = corral_table or {"shutdown_timeout": "20s"}
    doc["services"] = services
    path = dir / "corral.toml"
    path.write_text(toml.dumps(doc))
    return str(path)


def late_http(port: int, delay: float = 0.5, **extra: Any) -> Dict[str, Any]:
    """A service: an HTTP server ready after delay seconds."""
    svc: Dict[str, Any] = {
        "command": [PY, str(PROGS / "late_http.py"), str(port), str(delay)],
        "ready": {"http": f"http://127.0.0.1:{port}/", "timeout": "20s", "interval": "50ms"},
        "stop": {"grace": "2s"},
        "autostart": False,
    }
    svc.update(extra)
    return svc


def tree(port: int, delay: float = 0.5) -> Dict[str, Any]:
    """A service the way launchers start servers: a shell that starts the
    server and a helper that escapes with setsid and a double fork."""
    line = (f"'{PY}' '{PROGS / 'late_http.py'}' {port} {delay} & "
            f"'{PY}' '{PROGS / 'escapee.py'}' & wait")
    return {
        "command": ["sh", "-c", line],
        "ready": {"http": f"http://127.0.0.1:{port}/", "timeout": "20s", "interval": "50ms"},
        "stop": {"grace": "2s"},
        "autostart": False,
    }


# --- launching, with cleanup whatever the test did -----------------------


@pytest.fixture
def launch(corral_bin: str, workdir: Path) -> Iterator[Callable[..., corral.Launched]]:
    """Corral.launch with this tree's binary; every daemon a test started is
    stopped at its end (before workdir, which holds its state, is removed)."""
    started: List[corral.Launched] = []

    def go(config: str, **kw: Any) -> corral.Launched:
        kw.setdefault("corral", corral_bin)
        c = corral.Corral.launch(config, **kw)
        started.append(c)
        return c

    yield go
    for c in started:
        if c.process.poll() is None:
            try:
                c.shutdown(check=False)
            except Exception:
                pass
        if c.process.poll() is None:
            c.process.terminate()
            try:
                c.process.wait(30)
            except subprocess.TimeoutExpired:
                c.process.kill()
                c.process.wait()


# --- processes by pid ----------------------------------------------------


def ident(pid: int) -> Optional[Ident]:
    """(pid, start time) of a live process; None if gone or a zombie."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read().decode()
    except OSError:
        return None
    rest = stat[stat.rindex(")") + 2:].split()
    if rest[0] in ("Z", "X"):
        return None  # dead: only its exit status is left
    return pid, int(rest[19])


def alive(i: Ident) -> bool:
    return ident(i[0]) == i


def children_map() -> Dict[int, List[int]]:
    kids: Dict[int, List[int]] = {}
    for e in os.listdir("/proc"):
        if not e.isdigit():
            continue
        try:
            with open(f"/proc/{e}/stat", "rb") as f:
                stat = f.read().decode()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2:].split()[1])
        kids.setdefault(ppid, []).append(int(e))
    return kids


def descendants(pid: int) -> Set[Ident]:
    """Every live process below pid (children, their children, …)."""
    kids = children_map()
    out: Set[Ident] = set()
    todo = list(kids.get(pid, []))
    while todo:
        p = todo.pop()
        i = ident(p)
        if i is not None and i not in out:
            out.add(i)
            todo.extend(kids.get(p, []))
    return out


def environ(pid: int) -> Dict[str, str]:
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            raw = f.read()
    except OSError:
        return {}
    env = {}
    for kv in raw.split(b"\0"):
        if b"=" in kv:
            k, v = kv.split(b"=", 1)
            env[k.decode(errors="replace")] = v.decode(errors="replace")
    return env


def marked(instance: str) -> Set[Ident]:
    """Every live process whose environment carries CORRAL_INSTANCE=instance:
    an independent scan of the whole process table, as CI's leak check."""
    out: Set[Ident] = set()
    for e in os.listdir("/proc"):
        if e.isdigit() and environ(int(e)).get("CORRAL_INSTANCE") == instance:
            i = ident(int(e))
            if i is not None:
                out.add(i)
    return out


def assert_all_gone(idents: Set[Ident], timeout: float, what: str) -> None:
    wait_until(lambda: not [i for i in idents if alive(i)], timeout,
               f"{what}: still alive: {sorted(i[0] for i in idents if alive(i))}")
