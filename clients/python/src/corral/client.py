"""The client: one daemon, every route of docs/api.md that a program needs.

Every call opens its own connection (a unix socket or pipe connects in
microseconds) and finds the endpoint again first, so a daemon restarted
meanwhile is simply found; no connection is ever reused after the daemon
may have closed it.

Every call is bounded. With ``timeout=`` it is the whole call's bound, and
the daemon is told a little less, so that its ``timeout`` answer, which
says what the service was waiting for, arrives first. Without one (a stop
can take its grace period, a shutdown every service's), the daemon is
asked ``GET /v1/daemon`` every :attr:`Corral.liveness_every` seconds on a
second connection; no answer within :attr:`Corral.liveness_timeout` (it is
stopped or hung) ends the call with :class:`~corral.errors.NotAnswering`,
while a daemon that is merely slow to finish still answers the check.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import threading
import time
from typing import TYPE_CHECKING, Any, Callable, Dict, Generic, List, Mapping, Optional, Sequence, Tuple, TypeVar, Union, overload
from urllib.parse import quote, urlencode

from .endpoint import Endpoint, default_state_dir, find_corral, locate, print_endpoint
from .errors import (
    ConnectionLost,
    CorralError,
    DaemonUnreachable,
    NotAnswering,
    ShutdownIncomplete,
    Timeout,
    from_answer,
)
from .wire import DaemonInfo, Event, LogLine, Process, ReloadResult, Service, ShutdownResult
from ._transport import open_transport

if TYPE_CHECKING:  # pragma: no cover
    from .launch import Launched

__all__ = ["Corral", "Stream", "go_duration"]


def go_duration(seconds: float) -> str:
    """A Go duration string for the daemon (whole milliseconds, at least 1ms)."""
    return f"{max(1, int(seconds * 1000))}ms"


def _daemon_share(left: float) -> float:
    """The part of ``left`` the daemon may wait: its answer needs time to
    come back (up to a second, a tenth of short bounds); as client.go."""
    return max(left - min(1.0, left / 10), 0.001)


class _HTTP(http.client.HTTPConnection):
    """HTTP/1.1 over a transport that open_transport made."""

    def __init__(self, sock: Any) -> None:
        super().__init__("corral")
        self.sock = sock

    def connect(self) -> None:  # pragma: no cover - the socket is made before
        raise ConnectionLost("the connection to the daemon was closed")


class _Liveness:
    """The liveness check of a call without a deadline (see the module doc)."""

    def __init__(self, client: "Corral", sock: Any, what: str, address: str) -> None:
        self._client, self._sock, self._what, self._address = client, sock, what, address
        self._done = threading.Event()
        self.fired: Optional[str] = None
        self._thread = threading.Thread(target=self._run, name="corral-liveness", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        c = self._client
        while not self._done.wait(c.liveness_every):
            try:
                c._call("GET", "/v1/daemon", None, c.liveness_timeout)
            except (Timeout, NotAnswering) as e:
                if self._done.is_set():
                    return
                self.fired = (
                    f"{self._what}: the daemon on {self._address} stopped answering: a liveness check got no answer "
                    f"within {c.liveness_timeout}s while this request waited ({e}); it may be stopped (SIGSTOP) or hung, "
                    "and whether the request took effect is unknown"
                )
                try:
                    self._sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                return
            except CorralError:
                # Cannot connect: a daemon that exited also closed the
                # call's connection, which ends the call by itself.
                continue

    def stop(self) -> None:
        self._done.set()


class Corral:
    """A client of the daemon of one state directory.

    Make one with :meth:`connect` (finds the state directory of a
    configuration), with ``Corral(state_dir)``, or with :meth:`launch`
    (starts a daemon tethered to this process). Methods raise the
    exceptions of :mod:`corral.errors`. Safe to use from several threads.
    """

    liveness_every: float = 5.0
    """Seconds between liveness checks of a call without a timeout."""
    liveness_timeout: float = 10.0
    """A liveness check unanswered this long ends the call (NotAnswering)."""

    def __init__(self, state_dir: Optional[str] = None, *, endpoint: Optional[Endpoint] = None, connect_timeout: float = 5.0) -> None:
        if state_dir is None and endpoint is None:
            raise ValueError("Corral needs a state directory or an endpoint")
        self.state_dir = os.path.abspath(state_dir) if state_dir else (endpoint.state_dir if endpoint else "")
        self._computed = endpoint
        self.connect_timeout = connect_timeout

    # --- making one ------------------------------------------------------

    @classmethod
    def connect(
        cls,
        config: Optional[str] = None,
        *,
        state_dir: Optional[str] = None,
        corral: Optional[str] = None,
        connect_timeout: float = 5.0,
    ) -> "Corral":
        """A client of the daemon for ``config`` (default ``./corral.toml``)
        or ``state_dir``. Nothing is connected yet: a missing daemon is
        :class:`~corral.errors.NoDaemon` at the first call.

        With a corral binary at hand (``corral=``, ``$CORRAL_BIN`` or PATH)
        the binary says where the state directory is and where its daemon
        listens (``corral daemon --print-endpoint``); without one the
        state directory is ``.corral`` beside the configuration, corral's
        documented default, and the endpoint file in it says the rest.
        """
        computed: Optional[Endpoint] = None
        try:
            exe: Optional[str] = find_corral(corral)
        except CorralError:
            exe = None
        if exe is not None:
            if state_dir is not None:
                computed = print_endpoint(exe, state_dir=state_dir)
            else:
                computed = print_endpoint(exe, config=config or "corral.toml")
            state_dir = computed.state_dir or state_dir
        if state_dir is None:
            state_dir = default_state_dir(config or "corral.toml")
        return cls(state_dir, endpoint=computed, connect_timeout=connect_timeout)

    @classmethod
    def launch(cls, config: str, **kwargs: Any) -> "Launched":
        """Start a daemon for ``config`` tethered to this process and return
        its client; as a context manager it ends with a verified shutdown.
        See :func:`corral.launch.launch` for the arguments."""
        from .launch import launch

        return launch(config, **kwargs)

    def __enter__(self) -> "Corral":
        return self

    def __exit__(self, *exc: object) -> Optional[bool]:
        self.close()
        return None

    def close(self) -> None:
        """Nothing to release: no connection outlives its call."""

    def endpoint(self) -> Endpoint:
        """Where the daemon listens now (the endpoint file first)."""
        if not self.state_dir and self._computed is not None:
            return self._computed
        return locate(self.state_dir, self._computed)

    # --- the wire --------------------------------------------------------

    def _open(self, timeout: Optional[float]) -> Tuple[Any, Endpoint]:
        ep = self.endpoint()
        ct = self.connect_timeout if timeout is None else min(self.connect_timeout, timeout)
        sock = open_transport(ep, ct, self.state_dir)
        sock.settimeout(timeout)
        return sock, ep

    def _call(
        self, method: str, path: str, query: Optional[Mapping[str, str]], timeout: Optional[float], body: Any = None
    ) -> Any:
        """One request (with ``body`` as its JSON body unless None); the
        decoded JSON of a 2xx answer, else the daemon's error as its
        exception class."""
        what = f"{method} {path}"
        began = time.monotonic()
        sock, ep = self._open(timeout)
        conn = _HTTP(sock)
        watch = _Liveness(self, sock, what, ep.address) if timeout is None else None
        try:
            url = path + ("?" + urlencode(dict(query)) if query else "")
            headers = {"Accept": "application/json"}
            data: Optional[bytes] = None
            if body is not None:
                data = json.dumps(body).encode("utf-8")
                headers["Content-Type"] = "application/json"
            conn.request(method, url, body=data, headers=headers)
            resp = conn.getresponse()
            answer = resp.read()
        except socket.timeout:
            raise Timeout(
                f"{what}: the daemon{_pid(ep)} on {ep.address} did not answer within {timeout}s "
                f"(waited {time.monotonic() - began:.1f}s): it may be stopped or overloaded",
                status=0,
            ) from None
        except (OSError, http.client.HTTPException) as e:
            if watch is not None and watch.fired:
                raise NotAnswering(watch.fired) from None
            raise ConnectionLost(
                f"{what}: the connection to the daemon{_pid(ep)} on {ep.address} broke ({e!r}): "
                "it may have exited; whether the request took effect is unknown"
            ) from None
        finally:
            if watch is not None:
                watch.stop()
            conn.close()
            try:
                sock.close()
            except OSError:
                pass
        if resp.status // 100 != 2:
            raise from_answer(resp.status, answer, what)
        try:
            return json.loads(answer.decode("utf-8")) if answer.strip() else None
        except ValueError as e:
            raise CorralError(f"{what}: the daemon's answer is not JSON: {e}") from None

    def _action(
        self,
        name: str,
        verb: str,
        timeout: Optional[float],
        args: Optional[Sequence[str]] = None,
        env: Optional[Mapping[str, str]] = None,
        **params: Union[str, bool, None],
    ) -> Service:
        q: Dict[str, str] = {}
        for k, v in params.items():
            if v is True:
                q[k] = "1"
            elif isinstance(v, str) and v:
                q[k] = v
        if timeout is not None:
            if timeout <= 0:
                raise ValueError("timeout must be positive")
            q["timeout"] = go_duration(_daemon_share(timeout))
        return Service.from_json(self._call("POST", f"/v1/services/{quote(name, safe='')}/{verb}", q, timeout, _launch(args, env)))

    # --- routes ----------------------------------------------------------

    def daemon(self, *, timeout: Optional[float] = None) -> DaemonInfo:
        """Who the daemon is (pid, version, config, state directory); also
        the cheapest liveness check."""
        return DaemonInfo.from_json(self._call("GET", "/v1/daemon", None, timeout))

    def services(self, *, members: bool = False, timeout: Optional[float] = None) -> List[Service]:
        """Every service's status; ``members`` adds each one's member tree."""
        doc = self._call("GET", "/v1/services", {"members": "1"} if members else None, timeout)
        return [Service.from_json(d) for d in doc or [] if isinstance(d, dict)]

    @overload
    def status(self, name: None = None, *, timeout: Optional[float] = None) -> List[Service]: ...

    @overload
    def status(self, name: str, *, timeout: Optional[float] = None) -> Service: ...

    def status(self, name: Optional[str] = None, *, timeout: Optional[float] = None) -> Union[Service, List[Service]]:
        """One service's status with its member tree, or (no name) every
        service's, without members."""
        if name is None:
            return self.services(timeout=timeout)
        return Service.from_json(self._call("GET", f"/v1/services/{quote(name, safe='')}", None, timeout))

    def members(self, name: str, *, timeout: Optional[float] = None) -> List[Process]:
        """The processes of a service's tree (pid, ppid, start, cmdline, RSS)."""
        return self.status(name, timeout=timeout).members

    def ensure(
        self,
        name: str,
        *,
        timeout: Optional[float] = None,
        profile: Optional[str] = None,
        args: Optional[Sequence[str]] = None,
        env: Optional[Mapping[str, str]] = None,
        restart_if_different: bool = False,
    ) -> Service:
        """Make a service ready and return once it is, starting it if
        needed. Idempotent: concurrent ensures (of any number of threads or
        programs) lead to one instance; during a restart corral's restart
        policy scheduled, it waits for that one. The call to make after
        losing the connection to the server.

        ``args`` and ``env`` are the instance's own arguments (after the
        command and the profile's) and environment (over the service's
        env): the user's launch options. None leaves them out (what runs
        is accepted); given, even empty, a running instance with others is
        :class:`~corral.errors.ProfileMismatch`, or is restarted with them
        with ``restart_if_different``. docs/api.md, "Launch options"."""
        return self._action(name, "ensure", timeout, args, env, profile=profile, restart_if_different=restart_if_different)

    def start(
        self,
        name: str,
        *,
        wait: bool = False,
        profile: Optional[str] = None,
        args: Optional[Sequence[str]] = None,
        env: Optional[Mapping[str, str]] = None,
        restart_if_different: bool = False,
        timeout: Optional[float] = None,
    ) -> Service:
        """Start a service (its ``after`` services first); return once it
        runs, or once ready with ``wait``. A running one is left as it is
        (``args``, ``env``: as for :meth:`ensure`)."""
        return self._action(name, "start", timeout, args, env, wait=wait, profile=profile, restart_if_different=restart_if_different)

    def stop(self, name: str, *, timeout: Optional[float] = None) -> Service:
        """Stop a service; return once its tree is verified empty
        (``last_stop`` has the report)."""
        return self._action(name, "stop", timeout)

    def restart(
        self,
        name: str,
        *,
        wait: bool = False,
        profile: Optional[str] = None,
        args: Optional[Sequence[str]] = None,
        env: Optional[Mapping[str, str]] = None,
        timeout: Optional[float] = None,
    ) -> Service:
        """Stop a service completely, then start it (ready with ``wait``),
        with the instance's profile, arguments and environment unless
        ``profile``, ``args`` or ``env`` name others (``args=[]``: none)."""
        return self._action(name, "restart", timeout, args, env, wait=wait, profile=profile)

    def define(self, name: str, definition: Mapping[str, Any], *, timeout: Optional[float] = None) -> Service:
        """Define service ``name``, or change its definition, through the
        API (PUT /v1/services/NAME). ``definition`` has the keys of a
        ``[services.NAME]`` table of corral.toml, e.g.
        ``{"command": ["python", "launch.py"], "ready": {"http": "http://127.0.0.1:7860/"}}``;
        it is validated as the file is (:class:`~corral.errors.BadRequest`
        naming the key; nothing changes), stored in the daemon's state
        directory (it survives the daemon), and applied as a reload applies
        a file: a new service starts if ``autostart`` (the default), a
        running one whose definition changed is restarted with it. A
        service of the configuration file is
        :class:`~corral.errors.DefinedInFile`. Returns its status."""
        if not isinstance(definition, Mapping):
            raise TypeError("definition must be a mapping of the keys of a [services.NAME] table")
        return Service.from_json(self._call("PUT", f"/v1/services/{quote(name, safe='')}", None, timeout, dict(definition)))

    def remove(self, name: str, *, timeout: Optional[float] = None) -> Service:
        """Stop a service defined through :meth:`define` completely (as
        :meth:`stop` does) and forget its definition; returns its last
        status (``last_stop`` has the report). A service of the
        configuration file is :class:`~corral.errors.DefinedInFile`."""
        return Service.from_json(self._call("DELETE", f"/v1/services/{quote(name, safe='')}", None, timeout))

    def reload(self, *, timeout: Optional[float] = None) -> ReloadResult:
        """Re-read the configuration and apply what changed; a bad file is
        :class:`~corral.errors.BadConfig` and changes nothing."""
        return ReloadResult.from_json(self._call("POST", "/v1/reload", None, timeout) or {})

    def shutdown(self, *, check: bool = True, timeout: Optional[float] = None) -> ShutdownResult:
        """Stop every service, verify nothing is left, end the daemon, and
        wait (a few seconds at most) until it has let go of its endpoint.
        With ``check`` a result that is not clean raises
        :class:`~corral.errors.ShutdownIncomplete` naming the survivors."""
        res = ShutdownResult.from_json(self._call("POST", "/v1/shutdown", None, timeout) or {})
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline:
            try:
                self.daemon(timeout=1.0)
            except DaemonUnreachable:
                break
            except CorralError:
                break
            time.sleep(0.02)
        if check and not res.clean:
            raise ShutdownIncomplete(_shutdown_message(res), res)
        return res

    def logs(
        self,
        name: str,
        *,
        n: int = 100,
        follow: bool = False,
        after: Optional[int] = None,
        reconnect: bool = False,
        timeout: Optional[float] = None,
        heartbeat: Optional[float] = None,
    ) -> "Stream[LogLine]":
        """A service's output: the last ``n`` lines (0: all kept), then,
        with ``follow``, new ones as they come. See :class:`Stream` for
        ``after``, ``reconnect``, ``timeout`` and ``heartbeat``."""
        return Stream(self, f"/v1/services/{quote(name, safe='')}/logs", LogLine.from_json, n=n, follow=follow, after=after,
                      reconnect=reconnect, timeout=timeout, heartbeat=heartbeat)

    def events(
        self,
        *,
        n: int = 100,
        follow: bool = False,
        after: Optional[int] = None,
        reconnect: bool = False,
        timeout: Optional[float] = None,
        heartbeat: Optional[float] = None,
    ) -> "Stream[Event]":
        """The journal's events (spawn, ready, exit, restart, …): the last
        ``n``, then new ones with ``follow``. See :class:`Stream`."""
        return Stream(self, "/v1/events", Event.from_json, n=n, follow=follow, after=after,
                      reconnect=reconnect, timeout=timeout, heartbeat=heartbeat)


def _launch(args: Optional[Sequence[str]], env: Optional[Mapping[str, str]]) -> Optional[Dict[str, Any]]:
    """The body of a start, ensure or restart: the launch options given
    (None when neither is)."""
    if args is None and env is None:
        return None
    body: Dict[str, Any] = {}
    if args is not None:
        if isinstance(args, (str, bytes)):
            raise TypeError("args must be a list of strings, not a string (split it: ['--port', '7861'])")
        body["args"] = list(args)
    if env is not None:
        if not isinstance(env, Mapping):
            raise TypeError("env must be a mapping of names to strings")
        body["env"] = dict(env)
    return body


def _pid(ep: Endpoint) -> str:
    return f" (pid {ep.pid})" if ep.pid else ""


def _shutdown_message(res: ShutdownResult) -> str:
    parts = [f"shutdown not verified clean: stopped {res.stopped}"]
    if res.survivors:
        parts.append(f"{len(res.survivors)} supervised processes are still alive: " + "; ".join(
            f"pid {s.pid} of {s.service} (instance {s.instance}): {' '.join(s.cmdline)}" for s in res.survivors))
    if res.errors:
        parts.append("errors: " + "; ".join(res.errors))
    if res.unverified:
        parts.append("not proved empty in this tier: " + "; ".join(res.unverified))
    if res.daemon_exit not in (None, 0):
        parts.append(f"the daemon exited with status {res.daemon_exit}")
    return "; ".join(parts)


T = TypeVar("T", LogLine, Event)


class Stream(Generic[T]):
    """An iterator over log lines or events, resumable by sequence number
    and stoppable from any thread.

    - ``after=SEQ`` yields only items numbered above SEQ (pass a previous
      stream's :attr:`last_seq` to resume where it ended; the daemon is
      asked ``after=SEQ``, and what it no longer keeps is counted in
      :attr:`missed`).
    - ``reconnect=True`` (with ``follow``) survives the daemon going away
      and a connection gone silent: the stream reconnects, with backoff,
      and resumes with ``after=`` :attr:`last_seq` (and the ``epoch`` of
      its numbering); a log stream that finds a new daemon (another
      ``Corral-Epoch``: a new daemon numbers lines from 1) starts over at
      its first line (events are numbered on from the journal, so they just
      resume). Without it a
      follow stream whose daemon went away raises
      :class:`~corral.errors.ConnectionLost`, and one gone silent
      :class:`~corral.errors.NotAnswering`.
    - ``heartbeat`` (seconds, with ``follow``) asks the daemon for a
      heartbeat line that often while there is nothing to send (default:
      the daemon's, 15 s). Heartbeats are never yielded; a follow that gets
      no line for twice the interval and :attr:`heartbeat_slack` seconds
      more takes its connection as dead.
    - ``timeout`` ends the stream after that many seconds
      (:attr:`timed_out` is then True).
    - :meth:`close` (any thread) ends it; iteration then stops at once.

    Use it as a context manager so that its connection is closed even when
    the loop is left early.
    """

    heartbeat_slack: float = 5.0
    """Seconds a follow waits beyond two heartbeat intervals before it
    takes its connection as dead (a loaded daemon may send one late)."""

    def __init__(
        self,
        client: Corral,
        path: str,
        parse: Callable[[Mapping[str, Any]], T],
        *,
        n: int,
        follow: bool,
        after: Optional[int],
        reconnect: bool,
        timeout: Optional[float],
        heartbeat: Optional[float] = None,
    ) -> None:
        self._client, self._path = client, path
        self._parse: Callable[[Mapping[str, Any]], T] = parse
        self._n, self._follow, self._reconnect = n, follow, reconnect and follow
        self._heartbeat = heartbeat
        self._silent: Optional[str] = None  # why the connection was taken as dead
        self._epoch = ""  # the numbering last_seq belongs to (Corral-Epoch)
        self.last_seq: int = after or 0
        """The number of the last item yielded (or ``after``)."""
        self._have_seq = after is not None
        self.missed: int = 0
        """Items skipped over: numbers the daemon no longer kept on resume,
        or dropped for a follower too slow to read them."""
        self.reconnects: int = 0
        """How often the stream reconnected."""
        self.heartbeats: int = 0
        """Heartbeat lines received (and not yielded) while following."""
        self.timed_out = False
        self._iterating = False
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._sock: Any = None
        self._conn: Optional[_HTTP] = None
        self._resp: Optional[http.client.HTTPResponse] = None
        self._watch: Optional[_Liveness] = None
        self._timer: Optional[threading.Timer] = None
        if timeout is not None:
            self._timer = threading.Timer(timeout, self._expire)
            self._timer.daemon = True
            self._timer.start()
        try:
            self._open()
        except BaseException:
            self.close()
            raise

    # --- control ---------------------------------------------------------

    def close(self) -> None:
        """End the stream; safe from any thread, and more than once."""
        self._stop.set()
        if self._timer is not None:
            self._timer.cancel()
        with self._lock:
            sock = self._sock
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        # The iterating thread closes the connection when it sees the
        # stop; when none iterates, release it here.
        if self._lock.acquire(blocking=False):
            try:
                if not self._iterating:
                    self._drop()
            finally:
                self._lock.release()

    stop = close

    def _expire(self) -> None:
        self.timed_out = True
        self.close()

    def __enter__(self) -> "Stream[T]":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __iter__(self) -> "Stream[T]":
        return self

    # --- the connection --------------------------------------------------

    def _drop(self) -> None:
        if self._watch is not None:
            self._watch.stop()
        conn, self._conn, self._resp, sock, self._sock = self._conn, None, None, self._sock, None
        if conn is not None:
            conn.close()
        if sock is not None:
            try:
                sock.close()
            except OSError:
                pass

    def _open(self) -> None:
        c = self._client
        # A resume asks for what follows the last item, not for everything
        # kept to skip the start of it.
        q = {"after": str(self.last_seq)} if self._have_seq else {"n": str(self._n)}
        if self._have_seq and self._epoch:
            q["epoch"] = self._epoch  # a new daemon's lines start over instead of being skipped
        if self._follow:
            q["follow"] = "1"
            if self._heartbeat is not None:
                q["heartbeat"] = go_duration(self._heartbeat)
        sock, ep = c._open(None)
        conn = _HTTP(sock)
        with self._lock:
            self._sock, self._conn = sock, conn
        if self._stop.is_set():
            self._drop()
            return
        # A stream has no deadline (a follower waits for as long as nothing
        # happens): only the liveness check tells a quiet daemon from a
        # stopped one.
        watch = self._watch = _Liveness(c, sock, f"GET {self._path}", ep.address)
        try:
            conn.request("GET", self._path + "?" + urlencode(q), headers={"Accept": "application/x-ndjson"})
            resp = conn.getresponse()
        except (OSError, http.client.HTTPException) as e:
            self._drop()
            if self._stop.is_set():
                return
            if watch.fired:
                raise NotAnswering(watch.fired) from None
            raise ConnectionLost(f"GET {self._path}: the connection to the daemon on {ep.address} broke: {e!r}") from None
        if resp.status // 100 != 2:
            body = resp.read()
            self._drop()
            raise from_answer(resp.status, body, f"GET {self._path}")
        # Another numbering than last_seq's (a new daemon's log lines start
        # at 1): the daemon started over at its oldest item; take them all.
        epoch = resp.getheader("Corral-Epoch") or ""
        if self._have_seq and epoch and self._epoch and epoch != self._epoch:
            self.last_seq = 0
        self._epoch = epoch or self._epoch
        try:
            if self._have_seq and int(resp.getheader("Corral-Last-Seq") or "") < self.last_seq:
                self.last_seq = 0
        except ValueError:
            pass
        try:
            every = int(resp.getheader("Corral-Heartbeat-Ms") or "") / 1000
            if every > 0:
                # No line (item or heartbeat) within this: the connection is dead.
                limit = 2 * every + self.heartbeat_slack
                sock.settimeout(limit)
                self._silent = (f"GET {self._path}: the daemon on {ep.address} sent neither an item nor a heartbeat "
                                f"(due every {every}s) for {limit}s: the connection is taken as dead")
        except ValueError:
            pass
        self._resp = resp


    def _reopen(self) -> bool:
        delay = 0.05
        while not self._stop.is_set():
            try:
                self._open()
                self.reconnects += 1
                return self._resp is not None
            except (DaemonUnreachable, Timeout):
                if self._stop.wait(delay):
                    return False
                delay = min(delay * 2, 1.0)
        return False

    # --- iteration -------------------------------------------------------

    def __next__(self) -> T:
        self._iterating = True
        try:
            while True:
                if self._stop.is_set():
                    raise StopIteration
                if self._resp is None:
                    if not self._follow or not self._reconnect or not self._reopen():
                        raise StopIteration
                resp = self._resp
                assert resp is not None
                silent = None
                try:
                    line = resp.readline(4 << 20)
                except socket.timeout:
                    line, silent = b"", self._silent
                except (OSError, http.client.HTTPException, ValueError):
                    line = b""
                if not line:
                    fired = (self._watch.fired if self._watch is not None else None) or silent
                    with self._lock:
                        self._drop()
                    if self._stop.is_set() or not self._follow:
                        raise StopIteration
                    if not self._reconnect:
                        self._stop.set()
                        if fired:
                            raise NotAnswering(fired)
                        raise ConnectionLost(f"GET {self._path}: the stream ended: the daemon went away (pass reconnect=True to resume after it)")
                    continue
                line = line.strip()
                if not line:
                    continue
                try:
                    doc = json.loads(line.decode("utf-8"))
                except ValueError:
                    continue  # a line cut short by a connection that broke
                if not isinstance(doc, dict):
                    continue
                if doc.get("heartbeat") is True:
                    self.heartbeats += 1  # the connection lives; nothing to yield
                    continue
                item = self._parse(doc)
                if self._have_seq:
                    if item.seq <= self.last_seq:
                        continue
                    if item.seq > self.last_seq + 1:
                        self.missed += item.seq - self.last_seq - 1
                self.last_seq, self._have_seq = item.seq, True
                return item
        except StopIteration:
            with self._lock:
                self._drop()
            if self._timer is not None:
                self._timer.cancel()
            raise
        finally:
            self._iterating = False

