"""Exceptions: one class per error code of the daemon, plus reaching it.

The daemon answers every failure with ``{"error", "code", "service"}``
(docs/api.md); :func:`from_answer` turns that into the class of its code,
so a program tells "the WebUI is not ready yet" from "there is no such
service" with ``except`` instead of comparing strings. Failures to reach
the daemon at all have classes of their own: whether a request took effect
differs between them (:class:`NoDaemon`: nothing was sent;
:class:`ConnectionLost` and :class:`NotAnswering`: unknown).

Some classes also derive from the matching built-in (``TimeoutError``,
``ConnectionError``, ``PermissionError``), so generic code that knows
nothing of corral still handles them sensibly.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Dict, Optional, Type

if TYPE_CHECKING:  # pragma: no cover
    from .wire import ShutdownResult


class CorralError(Exception):
    """Base of every error this package raises.

    ``code`` is the daemon's machine-readable code (``""`` for failures
    that did not come from the daemon), ``service`` the service the error
    is about (the dependency that failed, for a start of a service that
    starts after it), ``status`` the HTTP status (0: no answer).
    """

    code: str = ""

    def __init__(self, message: str, *, code: Optional[str] = None, service: str = "", status: int = 0) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.service = service
        self.status = status

    def __str__(self) -> str:
        return self.message


# --- reaching the daemon -------------------------------------------------


class DaemonUnreachable(CorralError, ConnectionError):
    """The daemon could not be talked to (see the subclasses)."""


class NoDaemon(DaemonUnreachable):
    """Nothing answers for this state directory: no endpoint, no socket, or
    it refuses connections. Nothing was sent, so nothing took effect: start
    a daemon (``corral up``, or :meth:`corral.Corral.launch`)."""


class ConnectionLost(DaemonUnreachable):
    """The connection broke after the request was sent (the daemon exited
    or was killed meanwhile): whether the request took effect is unknown."""


class NotAnswering(DaemonUnreachable):
    """The daemon stopped answering while a request without a timeout of
    its own waited (a liveness check got no answer: it may be stopped with
    SIGSTOP, or hung). Whether the request took effect is unknown."""


class PermissionDenied(CorralError, PermissionError):
    """The socket, or its directory, is not this user's to use."""


class Untrusted(CorralError):
    """The endpoint is served by another process than the daemon that
    wrote the endpoint file, or by another user: nothing was sent to it,
    since a stand-in's answer to a shutdown would be believed."""


# --- the daemon's answers ------------------------------------------------


class DaemonError(CorralError):
    """An error answer of the daemon; its subclasses are its codes. A code
    this client does not know yet arrives as a plain DaemonError whose
    ``code`` says it."""


class BadRequest(DaemonError):
    """``bad_request`` (400): the request's input is wrong (unknown profile,
    bad timeout, unknown action); nothing was done."""

    code = "bad_request"


class BadConfig(DaemonError):
    """``bad_config`` (400): a reload found the configuration invalid or
    unreadable (the message has file:line:col); nothing changed."""

    code = "bad_config"


class UnknownService(DaemonError):
    """``unknown_service`` (404): no service of that name in the configuration."""

    code = "unknown_service"


class NotFound(DaemonError):
    """``not_found`` (404): no route of that path: a client newer than the
    daemon, or a mistyped path."""

    code = "not_found"


class MethodNotAllowed(DaemonError):
    """``method_not_allowed`` (405): the path's routes take other methods
    (the answer's Allow header lists them)."""

    code = "method_not_allowed"


class ProfileMismatch(DaemonError):
    """``profile_mismatch`` (409): the running instance has another profile,
    other arguments or another environment than the call names; restart it,
    or pass ``restart_if_different=True``."""

    code = "profile_mismatch"


class External(DaemonError):
    """``external`` (409): a server corral did not start serves the
    service; corral will not touch it."""

    code = "external"


class Frozen(DaemonError):
    """``frozen`` (409): the watchdog froze the service's tree; stop or restart it."""

    code = "frozen"


class StopIncomplete(DaemonError):
    """``stop_incomplete`` (409): a stop could not empty the tree; nothing
    starts beside it until a stop succeeds."""

    code = "stop_incomplete"


class Leftover(DaemonError):
    """``leftover`` (409): a tree an earlier run left survived a reap;
    nothing starts beside it."""

    code = "leftover"


class Stopped(DaemonError):
    """``stopped`` (409): the service was stopped while the request waited."""

    code = "stopped"


class PortInUse(DaemonError):
    """``port_in_use`` (409): a port the service needs is held by a process
    corral does not own (the message names it)."""

    code = "port_in_use"


class DefinedInFile(DaemonError):
    """``defined_in_file`` (409): :meth:`~corral.Corral.define` or
    :meth:`~corral.Corral.remove` of a service the configuration file
    defines; change it in the file and reload."""

    code = "defined_in_file"


class ServiceFailed(DaemonError):
    """A 502: the supervised program failed, not corral (the subclasses
    say how)."""


class NotReady(ServiceFailed):
    """``not_ready`` (502): the readiness probe failed. ``reason`` is the
    probe's own account: its target, timeout and last error."""

    code = "not_ready"

    @property
    def reason(self) -> str:
        """What the probe saw (the daemon's message)."""
        return self.message


class Unhealthy(ServiceFailed):
    """``unhealthy`` (502): the liveness probe failed its allowed number of
    times in a row."""

    code = "unhealthy"


class Exited(ServiceFailed):
    """``exited`` (502): the program ended before it was ready and is not restarted."""

    code = "exited"


class StartLimit(ServiceFailed):
    """``start_limit`` (502): started too often within the restart window;
    failed until it re-arms (``next_start`` in the status) or is started by hand."""

    code = "start_limit"


class SpawnFailed(ServiceFailed):
    """``spawn_failed`` (502): the program could not be started (missing,
    not executable, bad ``dir``)."""

    code = "spawn_failed"


class Runaway(ServiceFailed):
    """``runaway`` (502): the watchdog ended it past a limit."""

    code = "runaway"


class ShuttingDown(DaemonError):
    """``shutting_down`` (503): the daemon is shutting down and starts nothing."""

    code = "shutting_down"


class Timeout(DaemonError, TimeoutError):
    """``timeout`` (504): the request's own timeout passed; the message says
    what the service was waiting for. Also raised when the daemon's answer
    did not arrive within the timeout (then ``status`` is 0)."""

    code = "timeout"


class Internal(DaemonError):
    """``internal`` (500): a failure of corral itself."""

    code = "internal"


# --- launch and shutdown -------------------------------------------------


class ShutdownIncomplete(CorralError):
    """A verified shutdown could not verify: processes survived (named in
    ``result.survivors``), the daemon reported errors, or it ended in a way
    that proves nothing (killed). Never ignore it: something may be left."""

    def __init__(self, message: str, result: Optional["ShutdownResult"] = None, log_tail: str = "") -> None:
        super().__init__(message)
        self.result = result
        self.log_tail = log_tail


class LaunchFailed(CorralError):
    """The daemon :meth:`corral.Corral.launch` started did not come up:
    ``exit_code`` is its exit status (None: still running, then stopped),
    ``log_tail`` the end of its log, which says why."""

    def __init__(self, message: str, exit_code: Optional[int] = None, log_tail: str = "") -> None:
        super().__init__(message)
        self.exit_code = exit_code
        self.log_tail = log_tail


class AlreadyRunning(CorralError):
    """:meth:`corral.Corral.launch` found a daemon already serving the
    state directory. It is not tethered to this process, so it is not
    adopted: connect to it with :meth:`corral.Corral.connect` instead, or
    shut it down first."""

    def __init__(self, message: str, pid: int = 0) -> None:
        super().__init__(message)
        self.pid = pid


_BY_CODE: Dict[str, Type[DaemonError]] = {
    cls.code: cls
    for cls in (
        BadRequest,
        BadConfig,
        UnknownService,
        NotFound,
        MethodNotAllowed,
        ProfileMismatch,
        External,
        Frozen,
        StopIncomplete,
        Leftover,
        Stopped,
        PortInUse,
        DefinedInFile,
        NotReady,
        Unhealthy,
        Exited,
        StartLimit,
        SpawnFailed,
        Runaway,
        ShuttingDown,
        Timeout,
        Internal,
    )
}


def error_class(code: str) -> Type[DaemonError]:
    """The exception class of a daemon error code (DaemonError for a code
    this client does not know)."""
    return _BY_CODE.get(code, DaemonError)


def from_answer(status: int, body: bytes, what: str) -> DaemonError:
    """The exception for a non-2xx answer: its body if it is the daemon's
    JSON, else a DaemonError naming the status and what was asked."""
    import json

    message, code, service = "", "", ""
    try:
        doc = json.loads(body.decode("utf-8", "replace"))
        if isinstance(doc, dict):
            message = str(doc.get("error") or "")
            code = str(doc.get("code") or "")
            service = str(doc.get("service") or "")
    except ValueError:
        pass
    if not message:
        text = body.decode("utf-8", "replace").strip()
        message = f"{what}: HTTP {status}: {text}" if text else f"{what}: HTTP {status}"
    cls = error_class(code)
    return cls(message, code=code, service=service, status=status)
