"""Where a daemon listens, found without re-implementing corral's rules.

A running daemon writes ``endpoint.json`` into its state directory::

    {"version": 1, "transport": "unix", "address": "/…/.corral/corral.sock",
     "pid": 4242, "state_dir": "/…/.corral"}

``transport`` is ``"unix"`` (a unix socket) or ``"pipe"`` (a Windows named
pipe, ``\\\\.\\pipe\\corral-…``). On Windows the pipe's name is a hash of the
absolute state directory; a second implementation of that hash would break
on the first path that differs in case or separators, so this package never
computes it: it reads the file, or asks the binary
(``corral daemon --print-endpoint``), which prints the same JSON without
``pid`` and without starting anything.

Until a daemon writes the file (older daemons do not), a unix socket is
found at ``<state dir>/corral.sock``, the path docs/api.md documents.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Optional, Sequence

from .errors import CorralError, NoDaemon

__all__ = [
    "ENDPOINT_NAME",
    "SOCKET_NAME",
    "Endpoint",
    "read_endpoint",
    "print_endpoint",
    "default_state_dir",
    "find_corral",
]

ENDPOINT_NAME = "endpoint.json"
"""The endpoint file in the state directory (daemon.EndpointName)."""

SOCKET_NAME = "corral.sock"
"""The unix socket's name in the state directory (ipc.SocketName)."""

ENDPOINT_VERSION = 1

TRANSPORTS = ("unix", "pipe")


@dataclass(frozen=True)
class Endpoint:
    """Where to connect: ``transport`` ``"unix"`` or ``"pipe"``, its
    ``address``, the daemon's ``pid`` (0 when not known: a computed
    endpoint, or the socket fallback) and ``state_dir``."""

    transport: str
    address: str
    pid: int = 0
    state_dir: str = ""
    source: str = ""
    """Where it came from, for messages: the endpoint file, the binary, or
    the socket fallback."""

    @classmethod
    def from_json(cls, doc: object, source: str) -> "Endpoint":
        """Validate and read the endpoint JSON; another ``version`` is
        refused rather than guessed at."""
        if not isinstance(doc, dict):
            raise CorralError(f"{source}: not an endpoint (a JSON object is expected)")
        if doc.get("version") != ENDPOINT_VERSION:
            raise CorralError(f"{source}: endpoint version {doc.get('version')!r}; this client reads version {ENDPOINT_VERSION}")
        transport, address = doc.get("transport"), doc.get("address")
        if transport not in TRANSPORTS or not isinstance(address, str) or not address:
            raise CorralError(f"{source}: transport {transport!r}, address {address!r}: not an endpoint")
        pid = doc.get("pid", 0)
        state_dir = doc.get("state_dir", "")
        return cls(
            transport=str(transport),
            address=address,
            pid=pid if isinstance(pid, int) and not isinstance(pid, bool) else 0,
            state_dir=state_dir if isinstance(state_dir, str) else "",
            source=source,
        )

    def usable_here(self) -> bool:
        """Whether this platform has the endpoint's transport."""
        return (self.transport == "pipe") == (sys.platform == "win32")


def read_endpoint(state_dir: str) -> Optional[Endpoint]:
    """The endpoint file of ``state_dir``, or None when there is none (no
    daemon has listened there since the last one ended cleanly). The file
    does not prove its daemon alive: connecting does."""
    path = os.path.join(state_dir, ENDPOINT_NAME)
    if not hasattr(os, "O_NOFOLLOW") and os.path.islink(path):
        raise CorralError(f"{path} is a symlink; an endpoint file is never read through one")
    data = b""
    for attempt in range(20):
        try:
            # Not through a symlink (where the platform can say so), and
            # binary: no newline translation on Windows.
            flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
            fd = os.open(path, flags)
        except FileNotFoundError:
            return None
        except PermissionError:
            if sys.platform == "win32" and attempt < 19:
                # The daemon's rename over the file holds it for a moment.
                time.sleep(0.01)
                continue
            raise
        with os.fdopen(fd, "rb") as f:
            data = f.read(64 << 10)
        break
    try:
        doc = json.loads(data.decode("utf-8"))
    except ValueError as e:
        raise CorralError(f"{path}: unreadable endpoint file: {e}") from None
    ep = Endpoint.from_json(doc, path)
    if not ep.state_dir:
        ep = Endpoint(ep.transport, ep.address, ep.pid, os.path.abspath(state_dir), ep.source)
    return ep


def find_corral(corral: Optional[str] = None) -> str:
    """The corral binary: ``corral`` if given, else ``$CORRAL_BIN``, else
    ``corral`` on PATH."""
    exe = corral or os.environ.get("CORRAL_BIN") or shutil.which("corral")
    if not exe:
        raise CorralError("no corral binary: pass corral=PATH, set CORRAL_BIN, or put corral on PATH")
    return exe


def print_endpoint(
    corral: Optional[str] = None,
    *,
    config: Optional[str] = None,
    state_dir: Optional[str] = None,
    timeout: float = 30.0,
) -> Endpoint:
    """Ask the binary where a daemon of this configuration (or state
    directory) listens: ``corral daemon --print-endpoint``. It starts
    nothing; the answer has the state directory and, on Windows, the
    pipe's name."""
    exe = find_corral(corral)
    args: Sequence[str] = [exe]
    if config is not None:
        args = [*args, "-c", os.path.abspath(config)]
    if state_dir is not None:
        args = [*args, "--state-dir", os.path.abspath(state_dir)]
    args = [*args, "daemon", "--print-endpoint"]
    try:
        p = subprocess.run(list(args), stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise CorralError(f"{' '.join(args)}: {e}") from None
    if p.returncode != 0:
        err = p.stderr.decode("utf-8", "replace").strip()
        raise CorralError(f"{' '.join(args)} exited {p.returncode}: {err} (a corral without --print-endpoint is too old for this client)")
    try:
        doc = json.loads(p.stdout.decode("utf-8"))
    except ValueError as e:
        raise CorralError(f"{' '.join(args)}: not JSON: {e}") from None
    return Endpoint.from_json(doc, "corral daemon --print-endpoint")


def default_state_dir(config: str = "corral.toml") -> str:
    """``.corral`` beside the configuration file: the default every corral
    command uses without ``--state-dir`` (docs/configuration.md). Used only
    when no binary is at hand to say it (:func:`print_endpoint`)."""
    return os.path.join(os.path.dirname(os.path.abspath(config)), ".corral")


def locate(state_dir: str, computed: Optional[Endpoint] = None) -> Endpoint:
    """The endpoint to connect to now: the endpoint file, else ``computed``
    (from :func:`print_endpoint`), else, on unix, the socket in the state
    directory. Called before every connection, so a daemon restarted
    meanwhile (another pid, maybe another transport) is found."""
    ep = read_endpoint(state_dir)
    if ep is not None:
        if not ep.usable_here():
            raise CorralError(f"{ep.source}: transport {ep.transport!r} does not exist on this platform")
        return ep
    if computed is not None and computed.usable_here():
        return computed
    if sys.platform != "win32":
        return Endpoint("unix", os.path.join(state_dir, SOCKET_NAME), 0, state_dir, "socket fallback")
    raise NoDaemon(
        f"no corral daemon is running for {state_dir}: it has no {ENDPOINT_NAME} "
        "(start one with corral up, or Corral.launch)"
    )
