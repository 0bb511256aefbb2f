"""What needs no daemon: wire decoding, errors by code, the endpoint file's
format, the TOML writer, and the named-pipe transport's logic against a
stand-in for _winapi (the real one exists only on Windows)."""

from __future__ import annotations

import http.client
import json
import select
import socket
import threading
import time
from datetime import timezone
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import pytest

import corral
from corral import _transport, errors, toml, wire
from corral.endpoint import Endpoint, locate, read_endpoint


def test_parse_time_reads_go_times() -> None:
    t = wire.parse_time("2024-05-06T07:08:09.123456789+02:00")
    assert t is not None and t.microsecond == 123456 and t.utcoffset() is not None
    assert t.utcoffset().total_seconds() == 7200  # type: ignore[union-attr]
    z = wire.parse_time("2024-05-06T07:08:09Z")
    assert z is not None and z.tzinfo == timezone.utc
    assert wire.parse_time("0001-01-01T00:00:00Z") is None  # Go's zero time: never
    assert wire.parse_time("yesterday") is None
    assert wire.parse_time(None) is None


def test_service_decodes_every_field_and_keeps_unknown_ones() -> None:
    doc = {
        "name": "webui", "state": "ready", "reason": "ready", "since": "2024-01-01T00:00:00Z",
        "instance": "abc", "pid": 10, "leader": 9, "main_from": "pidfile", "previous_pid": 8,
        "mechanism": "cgroup-v2", "profile": "guarded", "started_at": "2024-01-01T00:00:01Z",
        "restarts": 2, "starts": 3, "next_start": "0001-01-01T00:00:00Z",
        "last_exit": {"at": "2024-01-01T00:00:00Z", "code": -1, "signaled": True, "description": "signal: killed", "requested": True},
        "last_stop": {"signal": "SIGTERM", "signalled": 4, "exited_on_signal": 3, "killed": 1, "duration": 1500000000,
                      "survivors": [{"pid": 5, "cmdline": ["x"]}]},
        "limits": {"processes": 64, "memory": 1024, "fork_rate": 2.5, "on_limit": "restart"},
        "members": [{"pid": 9, "ppid": 1, "pgid": 9, "start": "2024-01-01T00:00:00Z", "cmdline": ["sh", "-c", "x"],
                     "rss": 100, "state": "S", "start_ticks": 77}],
        "member_count": 1, "rss": 100, "external_pids": [3], "frozen": True, "kernel_limit": True,
        "from_the_future": 42,
    }
    s = wire.Service.from_json(doc)
    assert s.ready and s.pid == 10 and s.leader == 9 and s.previous_pid == 8 and s.main_from == "pidfile"
    assert s.next_start is None and s.started_at is not None
    assert s.last_exit is not None and s.last_exit.signaled and s.last_exit.requested
    assert s.last_stop is not None and s.last_stop.duration == 1.5 and s.last_stop.survivors[0].pid == 5
    assert s.limits is not None and s.limits.fork_rate == 2.5
    assert s.members[0].cmdline == ["sh", "-c", "x"] and s.members[0].start_ticks == 77
    assert s.external_pids == [3] and s.frozen and s.kernel_limit
    assert s.raw["from_the_future"] == 42


def test_shutdown_result_clean() -> None:
    assert wire.ShutdownResult.from_json({"stopped": ["a"], "survivors": []}).clean
    dirty = wire.ShutdownResult.from_json({"stopped": [], "survivors": [{"service": "a", "pid": 3, "cmdline": ["x"]}]})
    assert not dirty.clean and dirty.survivors[0].service == "a"
    assert not wire.ShutdownResult([], ["boom"], []).clean
    assert not wire.ShutdownResult([], [], [], daemon_exit=3).clean


@pytest.mark.parametrize("code,cls", [
    ("bad_request", corral.BadRequest), ("bad_config", corral.BadConfig),
    ("unknown_service", corral.UnknownService), ("profile_mismatch", corral.ProfileMismatch),
    ("not_found", corral.NotFound), ("method_not_allowed", corral.MethodNotAllowed),
    ("external", corral.External), ("frozen", corral.Frozen), ("stop_incomplete", corral.StopIncomplete),
    ("leftover", corral.Leftover), ("stopped", corral.Stopped), ("port_in_use", corral.PortInUse),
    ("not_ready", corral.NotReady), ("unhealthy", corral.Unhealthy), ("exited", corral.Exited),
    ("start_limit", corral.StartLimit), ("spawn_failed", corral.SpawnFailed), ("runaway", corral.Runaway),
    ("shutting_down", corral.ShuttingDown), ("timeout", corral.Timeout), ("internal", corral.Internal),
])
def test_one_class_per_code(code: str, cls: type) -> None:
    body = json.dumps({"error": f"it said {code}", "code": code, "service": "webui"}).encode()
    e = errors.from_answer(502, body, "POST /x")
    assert type(e) is cls and e.code == code and e.service == "webui" and e.status == 502
    assert str(e) == f"it said {code}"


def test_errors_fit_builtin_handlers() -> None:
    assert isinstance(corral.Timeout("t"), TimeoutError)
    assert isinstance(corral.NoDaemon("n"), ConnectionError)
    assert isinstance(corral.PermissionDenied("p"), PermissionError)
    assert isinstance(corral.NotReady("probe said no"), corral.ServiceFailed)
    assert corral.NotReady("GET http://x/: refused").reason == "GET http://x/: refused"


def test_unknown_code_and_foreign_answers() -> None:
    e = errors.from_answer(409, b'{"error":"new","code":"brand_new"}', "GET /x")
    assert type(e) is corral.DaemonError and e.code == "brand_new"
    e = errors.from_answer(502, b"<html>proxy</html>", "GET /x")
    assert type(e) is corral.DaemonError and "HTTP 502" in str(e) and "proxy" in str(e)


def test_endpoint_file_format(tmp_path: Path) -> None:
    (tmp_path / "endpoint.json").write_text(json.dumps(
        {"version": 1, "transport": "unix", "address": "/s/corral.sock", "pid": 12, "state_dir": "/s"}))
    ep = read_endpoint(str(tmp_path))
    assert ep is not None and ep.pid == 12 and ep.address == "/s/corral.sock" and ep.state_dir == "/s"
    assert locate(str(tmp_path)).address == "/s/corral.sock"
    for bad in ({"version": 2, "transport": "unix", "address": "/x"},
                {"version": 1, "transport": "tcp", "address": "x:1"},
                {"version": 1, "transport": "unix", "address": ""}):
        (tmp_path / "endpoint.json").write_text(json.dumps(bad))
        with pytest.raises(corral.CorralError):
            read_endpoint(str(tmp_path))


def test_socket_fallback_without_endpoint_file(tmp_path: Path) -> None:
    assert read_endpoint(str(tmp_path)) is None
    ep = locate(str(tmp_path))
    assert ep.transport == "unix" and ep.address == str(tmp_path / "corral.sock") and ep.pid == 0


def test_endpoint_file_is_not_followed_through_a_symlink(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere.json"
    target.write_text(json.dumps({"version": 1, "transport": "unix", "address": "/evil", "pid": 1}))
    sd = tmp_path / "state"
    sd.mkdir()
    (sd / "endpoint.json").symlink_to(target)
    with pytest.raises(OSError):
        read_endpoint(str(sd))


def test_toml_round_trip_of_awkward_arguments() -> None:
    tomllib = pytest.importorskip("tomllib")
    argv = ["python", "launch.py", "--api", 'a "quoted" arg', "back\\slash", "tab\there", "ünï", "$HOME", "line\nbreak"]
    doc = {"corral": {"shutdown_timeout": "20s"},
           "services": {"web ui": {"command": argv, "ready": {"http": "http://127.0.0.1:1/", "timeout": "5s"},
                                   "env": {"COMMANDLINE_ARGS": "--x 'y'"}, "autostart": False, "port": 7860}}}
    assert tomllib.loads(toml.dumps(doc)) == doc


# --- the named-pipe transport against a stand-in -------------------------


class _WinErr(OSError):
    def __init__(self, winerror: int) -> None:
        super().__init__(winerror, f"winerror {winerror}")
        self.winerror = winerror


class _FakeOv:
    def __init__(self, api: "_FakeWinapi", h: int, size: int = 0, data: Optional[bytes] = None) -> None:
        self.api, self.h, self.size, self.data = api, h, size, data
        self.event = h
        self.cancelled = False
        self._result: Optional[bytes] = None

    def cancel(self) -> None:
        self.cancelled = True

    def GetOverlappedResult(self, wait: bool) -> Tuple[int, int]:
        if self.data is not None:  # a write
            return len(self.data), 0
        if self.cancelled:
            return 0, 995
        b = self.api.socks[self.h].recv(self.size)
        if not b:
            raise _WinErr(109)
        self._result = b
        return len(b), 0

    def getbuffer(self) -> bytes:
        return self._result or b""


class _FakeWinapi:
    """What PipeSocket uses of _winapi, over a socketpair: reads complete
    when the peer has written, like overlapped ReadFile on a pipe."""

    def __init__(self) -> None:
        self.socks: Dict[int, socket.socket] = {}
        self.servers: Dict[str, socket.socket] = {}
        self.busy = 0
        self.closed: List[int] = []

    def CreateFile(self, name: str, *args: Any) -> int:
        if self.busy:
            self.busy -= 1
            raise _WinErr(231)
        if name not in self.servers:
            raise _WinErr(2)
        a, b = socket.socketpair()
        h = a.fileno()
        self.socks[h] = a
        self.servers[name] = b
        return h

    def ReadFile(self, h: int, size: int, overlapped: bool) -> Tuple[_FakeOv, int]:
        return _FakeOv(self, h, size), 997

    def WriteFile(self, h: int, data: bytes, overlapped: bool) -> Tuple[_FakeOv, int]:
        self.socks[h].sendall(data)
        return _FakeOv(self, h, data=data), 0

    def WaitForMultipleObjects(self, handles: List[int], wait_all: bool, ms: int) -> int:
        r, _, _ = select.select([self.socks[handles[0]]], [], [], ms / 1000)
        return 0 if r else 258

    def CloseHandle(self, h: int) -> None:
        self.closed.append(h)
        self.socks.pop(h).close()


def _serve_http(sock: socket.socket, answer: bytes) -> threading.Thread:
    def run() -> None:
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = sock.recv(4096)
            if not chunk:
                return
            buf += chunk
        sock.sendall(answer)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


PIPE = r"\\.\pipe\corral-test"


def _pipe(api: _FakeWinapi, pid: int = 0, server_pid: int = 42, timeout: Optional[float] = 2.0) -> _transport.PipeSocket:
    api.servers.setdefault(PIPE, socket.socket())
    ep = Endpoint("pipe", PIPE, pid, "C:\\state", "test")
    return _transport.connect_pipe(ep, timeout, api=api, server_pid=lambda h: server_pid)


def test_pipe_carries_http() -> None:
    api = _FakeWinapi()
    sock = _pipe(api, pid=42)
    body = b'{"pid": 42}'
    _serve_http(api.servers[PIPE], b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
    conn = http.client.HTTPConnection("corral")
    conn.sock = sock  # type: ignore[assignment]
    conn.request("GET", "/v1/daemon")
    resp = conn.getresponse()
    assert resp.status == 200 and json.loads(resp.read()) == {"pid": 42}
    conn.close()
    sock.close()
    assert len(api.closed) == 1  # the handle closes once, after its last reader


def test_pipe_chunked_stream_and_shutdown_from_another_thread() -> None:
    api = _FakeWinapi()
    sock = _pipe(api)
    sock.settimeout(None)
    _serve_http(api.servers[PIPE], b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n6\r\n{\"a\":1\r\n2\r\n}\n\r\n")
    conn = http.client.HTTPConnection("corral")
    conn.sock = sock  # type: ignore[assignment]
    conn.request("GET", "/v1/events?follow=1")
    resp = conn.getresponse()
    assert json.loads(resp.readline()) == {"a": 1}
    threading.Timer(0.2, sock.shutdown).start()
    began = time.monotonic()
    assert resp.readline() == b""  # blocked until shut down, then the end
    assert time.monotonic() - began < 2


def test_pipe_read_times_out() -> None:
    api = _FakeWinapi()
    sock = _pipe(api)
    sock.settimeout(0.2)
    with pytest.raises(socket.timeout):
        sock.recv(10)


def test_pipe_end_is_eof() -> None:
    api = _FakeWinapi()
    sock = _pipe(api)
    api.servers[PIPE].close()
    assert sock.recv(10) == b""


def test_pipe_waits_while_busy_and_checks_the_server() -> None:
    api = _FakeWinapi()
    api.busy = 3
    assert _pipe(api, pid=42) is not None
    with pytest.raises(corral.Untrusted, match="served by pid 7"):
        _pipe(api, pid=42, server_pid=7)
    api.busy = 10 ** 6
    with pytest.raises(corral.NotAnswering):
        _pipe(api, timeout=0.1)


def test_missing_pipe_is_no_daemon() -> None:
    api = _FakeWinapi()
    with pytest.raises(corral.NoDaemon, match="does not exist"):
        _transport.connect_pipe(Endpoint("pipe", PIPE, 0, "C:\\s", "test"), 1.0, api=api, server_pid=lambda h: 1)
