"""Byte transports to the daemon: a unix socket, or a Windows named pipe.

Both give http.client what it needs of a socket (``sendall``,
``makefile("rb")``, ``settimeout``, ``close``) plus ``shutdown``, which any
thread may call to end a blocked read: that is how a follow stream or a
request whose daemon stopped answering is ended from outside.

Before anything is sent, the far end is checked the way the Go client
checks it: the kernel's word on who serves the socket (SO_PEERCRED on
Linux, LOCAL_PEERCRED on macOS, GetNamedPipeServerProcessId on Windows)
must be the expected user and, when the endpoint file names the daemon's
pid, that pid. A stand-in that took the socket's or the pipe's name is
never sent a request, since its answer to a shutdown would be believed.
"""

from __future__ import annotations

import io
import os
import socket
import struct
import sys
import threading
import time
from typing import Any, Callable, Optional, Tuple

from .endpoint import Endpoint
from .errors import CorralError, NoDaemon, NotAnswering, PermissionDenied, Untrusted

__all__ = ["open_transport", "PipeSocket", "connect_pipe"]


def open_transport(ep: Endpoint, timeout: Optional[float], state_dir: str) -> Any:
    """Connect to ``ep`` within ``timeout`` seconds and check who serves it."""
    if ep.transport == "unix":
        return _connect_unix(ep, timeout, state_dir)
    if ep.transport == "pipe":
        return connect_pipe(ep, timeout)
    raise CorralError(f"{ep.source}: unknown transport {ep.transport!r}")


# --- unix socket ---------------------------------------------------------


def _no_daemon(ep: Endpoint, state: str) -> NoDaemon:
    where = f" (daemon pid {ep.pid}, from {ep.source}, has ended, or that is stale)" if ep.pid else ""
    return NoDaemon(
        f"no corral daemon is running for {ep.state_dir or os.path.dirname(ep.address)}: "
        f"socket {ep.address} {state}{where}: start one with corral up, or Corral.launch"
    )


def _connect_unix(ep: Endpoint, timeout: Optional[float], state_dir: str) -> socket.socket:
    family = getattr(socket, "AF_UNIX", None)
    if family is None:  # pragma: no cover - Windows Pythons without AF_UNIX
        raise CorralError("this Python has no unix sockets; the endpoint file says the daemon uses one")
    s = socket.socket(family, socket.SOCK_STREAM)
    try:
        s.settimeout(timeout)
        try:
            s.connect(ep.address)
        except FileNotFoundError:
            raise _no_daemon(ep, "is missing") from None
        except ConnectionRefusedError:
            raise _no_daemon(ep, "refuses connections") from None
        except PermissionError as e:
            raise PermissionDenied(
                f"permission denied on {ep.address}: {e.strerror}; it belongs to another user: "
                "run as that user, or use a state directory of your own"
            ) from None
        except socket.timeout:
            raise NotAnswering(
                f"no connection to {ep.address} within {timeout}s: the daemon accepts none (it may be stopped or overloaded)"
            ) from None
        _check_unix_peer(s, ep, state_dir)
        return s
    except BaseException:
        s.close()
        raise


def _expected_uid(state_dir: str) -> Tuple[int, str]:
    """The only user whose daemon is believed (ipc.ExpectedServer): this
    process's, except that root believes the owner of a state directory
    another user owns."""
    if sys.platform == "win32":  # pragma: no cover - no uids there; its endpoint is a pipe
        raise Untrusted("a unix socket endpoint on Windows: its server cannot be checked")
    me = os.geteuid()
    if me == 0 and state_dir:
        try:
            owner = os.stat(state_dir).st_uid
        except OSError:
            owner = 0
        if owner != 0:
            return owner, f"who owns the state directory {state_dir}"
    return me, "who runs this client"


def _unix_peer(s: socket.socket, path: str) -> Tuple[int, int]:
    """(pid, uid) of the process that serves s; pid 0 when not known."""
    if sys.platform.startswith("linux") and hasattr(socket, "SO_PEERCRED"):
        pid, uid, _gid = struct.unpack("3i", s.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i")))
        return pid, uid
    if sys.platform == "darwin":
        sol_local, local_peercred, local_peerpid = 0, 1, 2
        try:
            cred = s.getsockopt(sol_local, local_peercred, 76)  # struct xucred
            uid = struct.unpack_from("I", cred, 4)[0]
            pid = 0
            try:
                pid = struct.unpack("i", s.getsockopt(sol_local, local_peerpid, 4))[0]
            except OSError:
                pass
            return pid, uid
        except OSError:
            pass
    # No peer credentials: who made the socket file is the next best
    # witness, since no one can create one owned by another user.
    return 0, os.lstat(path).st_uid


def _check_unix_peer(s: socket.socket, ep: Endpoint, state_dir: str) -> None:
    try:
        pid, uid = _unix_peer(s, ep.address)
    except OSError as e:
        raise Untrusted(f"cannot tell who serves {ep.address}, so it is not used: {e}") from None
    want, why = _expected_uid(state_dir)
    if uid != want:
        raise Untrusted(
            f"refusing {ep.address}: it is served by {'pid %d of ' % pid if pid else ''}uid {uid}, not by uid {want}, {why}; "
            "nothing was sent to it: find out what it is, remove the socket, and let no one else write to the state directory"
        )
    if ep.pid and pid and pid != ep.pid:
        raise Untrusted(
            f"refusing {ep.address}: it is served by pid {pid}, but {ep.source} says daemon pid {ep.pid} listens there; "
            "nothing was sent to it"
        )


# --- Windows named pipe --------------------------------------------------

# Win32 constants, spelled out: _winapi does not export all of them.
_GENERIC_READ = 0x80000000
_GENERIC_WRITE = 0x40000000
_OPEN_EXISTING = 3
_FILE_FLAG_OVERLAPPED = 0x40000000
# SECURITY_IDENTIFICATION: a server that is not the daemon (one that took
# the pipe's name first) may learn who connected but not act as that user.
_SECURITY_SQOS_PRESENT = 0x00100000
_SECURITY_IDENTIFICATION = 0x00010000
_ERROR_FILE_NOT_FOUND = 2
_ERROR_ACCESS_DENIED = 5
_ERROR_BROKEN_PIPE = 109
_ERROR_PIPE_BUSY = 231
_ERROR_NO_DATA = 232
_ERROR_PIPE_NOT_CONNECTED = 233
_ERROR_OPERATION_ABORTED = 995
_ERROR_IO_PENDING = 997
_WAIT_OBJECT_0 = 0
_WAIT_TIMEOUT = 258

_GONE = (_ERROR_BROKEN_PIPE, _ERROR_NO_DATA, _ERROR_PIPE_NOT_CONNECTED, _ERROR_OPERATION_ABORTED)

_SLICE = 0.05
"""How often a pending pipe operation looks whether it was shut down:
overlapped I/O cannot wait on a Python-level event, so it polls."""


def _winerror(e: OSError) -> Optional[int]:
    return getattr(e, "winerror", None)


def _pipe_server_pid(handle: int) -> int:  # pragma: no cover - Windows only
    if sys.platform != "win32":
        raise OSError("GetNamedPipeServerProcessId exists only on Windows")
    import ctypes
    from ctypes import wintypes

    k32 = ctypes.WinDLL("kernel32", use_last_error=True)
    fn = k32.GetNamedPipeServerProcessId
    fn.argtypes = [wintypes.HANDLE, ctypes.POINTER(wintypes.ULONG)]
    fn.restype = wintypes.BOOL
    pid = wintypes.ULONG(0)
    if not fn(wintypes.HANDLE(handle), ctypes.byref(pid)):
        raise OSError(ctypes.get_last_error(), "GetNamedPipeServerProcessId failed")
    return int(pid.value)


class _Aborted(Exception):
    """A pending operation was ended by shutdown()."""


class PipeSocket:
    """A connected pipe handle that behaves like the socket http.client
    expects. I/O is overlapped so that it can time out and be shut down
    from another thread (a synchronous ReadFile on a pipe can be ended by
    neither). ``api`` is ``_winapi`` (tests pass a stand-in)."""

    def __init__(self, handle: int, api: Any, name: str) -> None:
        self._h = handle
        self._api = api
        self.name = name
        self._timeout: Optional[float] = None
        self._shut = threading.Event()
        self._lock = threading.Lock()
        self._refs = 0  # open makefile()s; the handle closes after the last
        self._closed = False

    def settimeout(self, timeout: Optional[float]) -> None:
        self._timeout = timeout

    def gettimeout(self) -> Optional[float]:
        return self._timeout

    def _wait(self, ov: Any) -> None:
        deadline = None if self._timeout is None else time.monotonic() + self._timeout
        while True:
            step = _SLICE
            if deadline is not None:
                step = max(0.0, min(step, deadline - time.monotonic()))
            r = self._api.WaitForMultipleObjects([ov.event], False, int(step * 1000))
            if r == _WAIT_OBJECT_0:
                return
            expired = deadline is not None and time.monotonic() >= deadline
            if self._shut.is_set() or expired:
                try:
                    ov.cancel()
                    ov.GetOverlappedResult(True)
                except OSError:
                    pass
                if self._shut.is_set():
                    raise _Aborted()
                raise socket.timeout("timed out")

    def recv_into(self, buf: Any) -> int:
        """Read what is there (at least one byte) into buf; 0 at the end:
        the daemon closed the pipe, or shutdown() was called."""
        if self._shut.is_set():
            return 0
        try:
            ov, err = self._api.ReadFile(self._h, len(buf), overlapped=True)
        except OSError as e:
            if _winerror(e) in _GONE:
                return 0
            raise
        try:
            if err == _ERROR_IO_PENDING:
                self._wait(ov)
            _n, err = ov.GetOverlappedResult(True)
        except _Aborted:
            return 0
        except OSError as e:
            if _winerror(e) in _GONE:
                return 0
            raise
        if err == _ERROR_OPERATION_ABORTED:
            return 0
        data = ov.getbuffer()
        n = len(data)
        buf[:n] = data
        return n

    def recv(self, size: int) -> bytes:
        b = bytearray(size)
        n = self.recv_into(b)
        return bytes(b[:n])

    def sendall(self, data: Any) -> None:
        view = memoryview(data).cast("B")
        while len(view):
            if self._shut.is_set():
                raise BrokenPipeError("the pipe was shut down")
            try:
                ov, err = self._api.WriteFile(self._h, bytes(view), overlapped=True)
                if err == _ERROR_IO_PENDING:
                    self._wait(ov)
                n, err = ov.GetOverlappedResult(True)
            except _Aborted:
                raise BrokenPipeError("the pipe was shut down") from None
            except OSError as e:
                if _winerror(e) in _GONE:
                    raise BrokenPipeError(f"the daemon closed the pipe {self.name}") from None
                raise
            if n <= 0:
                raise BrokenPipeError(f"the daemon closed the pipe {self.name}")
            view = view[n:]

    def makefile(self, mode: str = "rb", *args: Any, **kwargs: Any) -> io.BufferedReader:
        if "w" in mode:
            raise ValueError("PipeSocket.makefile: only reading")
        with self._lock:
            self._refs += 1
        return io.BufferedReader(_PipeReader(self), 64 << 10)

    def _unref(self) -> None:
        with self._lock:
            self._refs -= 1
            last = self._closed and self._refs <= 0
        if last:
            self._close_handle()

    def shutdown(self, how: int = 2) -> None:
        """End pending and further I/O; safe from any thread."""
        self._shut.set()

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            last = self._refs <= 0
        if last:
            self._close_handle()

    def _close_handle(self) -> None:
        h, self._h = self._h, 0
        if h:
            try:
                self._api.CloseHandle(h)
            except OSError:
                pass


class _PipeReader(io.RawIOBase):
    """The read side of a PipeSocket as a raw file (what makefile gives)."""

    def __init__(self, sock: PipeSocket) -> None:
        super().__init__()
        self._sock = sock

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        return self._sock.recv_into(b)

    def close(self) -> None:
        if not self.closed:
            super().close()
            self._sock._unref()


def connect_pipe(
    ep: Endpoint,
    timeout: Optional[float],
    api: Any = None,
    server_pid: Optional[Callable[[int], int]] = None,
) -> PipeSocket:
    """Open the daemon's pipe (waiting while every instance is busy, up to
    ``timeout``) and check that the endpoint file's daemon serves it."""
    if api is None:  # pragma: no cover - Windows only
        import _winapi

        api = _winapi
    if server_pid is None:
        server_pid = _pipe_server_pid
    deadline = None if timeout is None else time.monotonic() + timeout
    flags = _FILE_FLAG_OVERLAPPED | _SECURITY_SQOS_PRESENT | _SECURITY_IDENTIFICATION
    while True:
        try:
            h = api.CreateFile(ep.address, _GENERIC_READ | _GENERIC_WRITE, 0, 0, _OPEN_EXISTING, flags, 0)
            break
        except OSError as e:
            code = _winerror(e)
            if code == _ERROR_FILE_NOT_FOUND:
                raise _no_daemon(ep, "does not exist") from None
            if code == _ERROR_ACCESS_DENIED:
                raise PermissionDenied(
                    f"access denied on {ep.address}: the pipe is another user's: run as that user, or use a state directory of your own"
                ) from None
            if code != _ERROR_PIPE_BUSY:
                raise
            if deadline is not None and time.monotonic() >= deadline:
                raise NotAnswering(f"every instance of {ep.address} stayed busy for {timeout}s") from None
            time.sleep(0.01)  # ipc.Dial waits the same way
    sock = PipeSocket(h, api, ep.address)
    try:
        pid = server_pid(h)
    except OSError as e:
        sock.close()
        raise Untrusted(f"cannot tell who serves {ep.address}, so it is not used: {e}") from None
    if ep.pid and pid != ep.pid:
        sock.close()
        raise Untrusted(
            f"refusing {ep.address}: it is served by pid {pid}, but {ep.source} says daemon pid {ep.pid} listens there; "
            "another program may have taken the pipe's name, and nothing was sent to it: find out what pid "
            f"{pid} is and stop it, then start the daemon"
        )
    return sock
