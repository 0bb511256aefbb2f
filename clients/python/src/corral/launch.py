"""A daemon tethered to the application that starts it.

The launcher an app replaces tracked one PID and leaked a tree whenever the
app crashed. Here the app starts ``corral daemon --exit-with <app pid>``:

- the daemon contains every service's tree, so a stop or restart leaves
  nothing (whatever the program forks, ``setsid``\\s or respawns);
- the daemon watches the app's pid: when the app exits, however it exits
  (SIGKILL, a crash, the task manager), the daemon runs its verified
  shutdown and exits; and if the daemon is SIGKILLed in turn, its keeper
  (Linux) or the kernel's job objects (Windows) end the trees;
- on a normal exit, :meth:`Launched.shutdown` (the ``with`` block's end)
  asks for the verified shutdown itself and raises if anything survived.

The daemon runs in a session (on Windows a process group) of its own, so a
Ctrl-C in the app's terminal reaches only the app, which then shuts corral
down verified instead of racing it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from typing import Any, Dict, Iterable, List, Mapping, Optional, Union

from .client import Corral, _shutdown_message
from .endpoint import Endpoint, find_corral, print_endpoint
from .errors import (
    AlreadyRunning,
    CorralError,
    DaemonUnreachable,
    LaunchFailed,
    ShutdownIncomplete,
    Timeout,
)
from .wire import ShutdownResult

__all__ = ["launch", "Launched", "THIS_PROCESS"]


class _ThisProcess:
    def __repr__(self) -> str:
        return "THIS_PROCESS"


THIS_PROCESS: Any = _ThisProcess()
"""Default of ``exit_with``: the calling process's pid."""


def _tail(path: str, size: int = 4000) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - size))
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


def _open_log(path: str) -> int:
    flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    return os.open(path, flags, 0o600)


class Launched(Corral):
    """The client of a daemon :func:`launch` started; the ``with`` block's
    end (or :meth:`shutdown`) is its verified shutdown."""

    process: "subprocess.Popen[bytes]"
    log_path: str

    def __init__(self, state_dir: str, endpoint: Endpoint, process: "subprocess.Popen[bytes]", log_path: str,
                 connect_timeout: float = 5.0, exit_timeout: float = 30.0) -> None:
        super().__init__(state_dir, endpoint=endpoint, connect_timeout=connect_timeout)
        self.process = process
        self.log_path = log_path
        self.exit_timeout = exit_timeout
        self._result: Optional[ShutdownResult] = None

    @property
    def pid(self) -> int:
        """The daemon's pid."""
        return self.process.pid

    def __enter__(self) -> "Launched":
        return self

    def __exit__(self, *exc: object) -> Optional[bool]:
        # Also when the block raised: the app's crash is exactly when the
        # tree must go. A leak then raises ShutdownIncomplete, chained to
        # the app's own exception, never silently.
        self.shutdown()
        return None

    def close(self) -> None:
        """A launched daemon is closed by its verified shutdown."""
        self.shutdown()

    def shutdown(self, *, check: bool = True, timeout: Optional[float] = None) -> ShutdownResult:
        """Verified shutdown: the daemon stops every service, checks that no
        supervised process remains and exits; then its exit status is
        checked too (0 only if nothing remains). A daemon that already
        ended by itself (its tether fired, or it got SIGTERM) is judged by
        that exit status. Raises :class:`~corral.errors.ShutdownIncomplete`
        (with ``check``) for anything short of verified. Idempotent."""
        if self._result is None:
            res: Optional[ShutdownResult] = None
            try:
                res = Corral.shutdown(self, check=False, timeout=timeout)
            except DaemonUnreachable:
                # Gone already (its exit status says how), or alive but
                # unreachable (its socket deleted, say): then the signal
                # that runs the same verified shutdown.
                self._signal_shutdown()
            try:
                rc = self.process.wait(self.exit_timeout)
            except subprocess.TimeoutExpired:
                raise ShutdownIncomplete(
                    f"the daemon (pid {self.pid}) did not exit within {self.exit_timeout}s of its shutdown; "
                    f"its log {self.log_path} ends:\n{_tail(self.log_path)}",
                    res, _tail(self.log_path),
                ) from None
            if res is None:
                res = ShutdownResult(stopped=[], errors=[], survivors=[])
            res.daemon_exit = rc
            self._result = res
        res = self._result
        if check and not res.clean:
            tail = _tail(self.log_path)
            why = _shutdown_message(res)
            if res.daemon_exit is not None and res.daemon_exit < 0:
                why += (f" (killed by signal {-res.daemon_exit}: nothing was verified; its keeper, or the next "
                        "daemon start, reaps what it left)")
            raise ShutdownIncomplete(f"{why}; the daemon's log {self.log_path} ends:\n{tail}", res, tail)
        return res


    def _signal_shutdown(self) -> None:
        if self.process.poll() is not None:
            return
        try:
            if sys.platform == "win32":
                # A daemon without a console gets no CTRL_BREAK: end it; the
                # kernel ends its job objects' trees as their handles close,
                # but nothing is verified (the exit status says so).
                self.process.terminate()
            else:
                self.process.send_signal(signal.SIGTERM)
        except OSError:
            pass


def launch(
    config: str,
    *,
    exit_with: Union[int, None, Any] = THIS_PROCESS,
    state_dir: Optional[str] = None,
    corral: Optional[str] = None,
    ensure: Iterable[str] = (),
    ensure_timeout: Optional[float] = None,
    containment: Optional[str] = None,
    keeper: bool = True,
    env: Optional[Mapping[str, str]] = None,
    log_path: Optional[str] = None,
    cwd: Optional[str] = None,
    timeout: float = 30.0,
    connect_timeout: float = 5.0,
    exit_timeout: float = 70.0,
) -> Launched:
    """Start ``corral daemon`` for ``config`` and return its client once it
    answers (and once every service of ``ensure`` is ready).

    - ``exit_with``: the pid whose exit shuts the daemon down (verified);
      default this process. ``None`` starts an untethered daemon.
    - ``state_dir``: default the binary's (``.corral`` beside ``config``).
    - ``corral``: the binary (default ``$CORRAL_BIN``, then PATH).
    - ``ensure``: services to make ready before returning, each within
      ``ensure_timeout`` (None: the daemon's ready timeouts bound them).
      If one fails, the daemon is shut down (verified) and the error raised.
    - ``containment``: ``auto``, ``cgroup`` or ``pgroup`` (``--containment``).
    - ``keeper``: False runs no keeper (``--no-keeper``).
    - ``env``: the daemon's environment (default this process's).
    - ``log_path``: the daemon's output (default ``daemon.log`` in the
      state directory, as ``corral up`` writes it).
    - ``cwd``: the daemon's working directory, which services without a
      ``dir`` inherit; default the configuration's directory, so that a
      relative command resolves beside the file, as
      docs/configuration.md describes ``dir``'s default.
    - ``timeout``: for the daemon to answer; ``exit_timeout``: for it to
      exit after its shutdown (more than its ``shutdown_timeout``).

    Raises :class:`~corral.errors.AlreadyRunning` if a daemon already
    serves the state directory, :class:`~corral.errors.LaunchFailed` if
    the daemon exits or stays silent (with its log's tail).
    """
    exe = find_corral(corral)
    config = os.path.abspath(config)
    computed = print_endpoint(exe, config=config, state_dir=state_dir)
    sd = computed.state_dir or (os.path.abspath(state_dir) if state_dir else "")
    if not sd:
        raise CorralError(f"{exe} did not say which state directory {config} uses")
    probe = Corral(sd, endpoint=computed, connect_timeout=connect_timeout)
    try:
        other = probe.daemon(timeout=min(5.0, timeout))
    except CorralError:
        pass
    else:
        raise AlreadyRunning(
            f"a corral daemon (pid {other.pid}) already serves {sd}; it is not tethered to this process: "
            "use Corral.connect, or shut it down first", other.pid)

    if exit_with is THIS_PROCESS:
        exit_with = os.getpid()
    args: List[str] = [exe, "-c", config, "--state-dir", sd]
    if containment:
        args += ["--containment", containment]
    args.append("daemon")
    if exit_with:
        args += ["--exit-with", str(int(exit_with))]
    if not keeper:
        args.append("--no-keeper")

    os.makedirs(sd, mode=0o700, exist_ok=True)
    log = log_path or os.path.join(sd, "daemon.log")
    logfd = _open_log(log)
    popen_kw: Dict[str, Any] = {}
    if sys.platform == "win32":
        # No console of its own, and not in the app's Ctrl-C group.
        popen_kw["creationflags"] = getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0x200) | getattr(subprocess, "CREATE_NO_WINDOW", 0x08000000)
    else:
        popen_kw["start_new_session"] = True
    try:
        proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=logfd, stderr=logfd,
                                env=dict(env) if env is not None else None, close_fds=True,
                                cwd=cwd or os.path.dirname(config), **popen_kw)
    except OSError as e:
        raise LaunchFailed(f"cannot start {' '.join(args)}: {e}") from None
    finally:
        os.close(logfd)

    # Nothing but the daemon we started is believed: the kernel must say
    # that its pid serves the endpoint, before anything is sent.
    ours = Endpoint(computed.transport, computed.address, proc.pid, sd, "the daemon just started")
    c = Launched(sd, ours, proc, log, connect_timeout=connect_timeout, exit_timeout=exit_timeout)
    try:
        deadline = time.monotonic() + timeout
        delay = 0.005
        while True:
            rc = proc.poll()
            if rc is not None:
                tail = _tail(log)
                raise LaunchFailed(f"the daemon exited ({rc}) before answering; its log {log} ends:\n{tail}", rc, tail)
            try:
                info = c.daemon(timeout=max(0.05, min(2.0, deadline - time.monotonic())))
                if info.pid == proc.pid:
                    break
            except (DaemonUnreachable, Timeout):
                pass
            except CorralError:
                # Another process answers where ours should: ours will find
                # the lock taken and exit, which the next round reports.
                pass
            if time.monotonic() >= deadline:
                _abandon(proc, exit_timeout)
                tail = _tail(log)
                raise LaunchFailed(f"the daemon (pid {proc.pid}) did not answer within {timeout}s; it was stopped; its log {log} ends:\n{tail}",
                                   proc.returncode, tail)
            time.sleep(delay)
            delay = min(delay * 2, 0.1)
    except BaseException:
        # Interrupted (Ctrl-C) or failed while waiting: the daemon goes too,
        # rather than live on until this process exits.
        if proc.poll() is None:
            _abandon(proc, exit_timeout)
        raise

    for name in ensure:
        try:
            c.ensure(name, timeout=ensure_timeout)
        except BaseException:
            # Nothing half-started stays behind the failure; a leak of the
            # shutdown is raised instead, chained to the ensure's error.
            c.shutdown()
            raise
    return c


def _abandon(proc: "subprocess.Popen[bytes]", wait: float) -> None:
    """Stop a daemon that never answered: SIGTERM is its verified shutdown
    (on Windows TerminateProcess, after which the kernel ends its job
    objects' trees as their handles close)."""
    try:
        proc.terminate()
        proc.wait(wait)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    except OSError:
        pass
