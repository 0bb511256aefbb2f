"""Python client of corral, the process supervisor whose supervised
programs, and everything they spawn, can always be stopped completely.

    import os
    from corral import Corral

    with Corral.launch("corral.toml", exit_with=os.getpid()) as corral:
        corral.ensure("webui", timeout=600)      # ready when it returns
        ...                                       # the app's work
    # here: verified shutdown; ShutdownIncomplete if anything survived

Standard library only; Python 3.9 or later. The daemon's HTTP API is
described in docs/api.md of the corral repository; the Go client
(client/) is the reference for the wire types.
"""

from .client import Corral, Stream
from .endpoint import Endpoint, default_state_dir, print_endpoint, read_endpoint
from .errors import (
    AlreadyRunning,
    BadConfig,
    BadRequest,
    ConnectionLost,
    CorralError,
    DaemonError,
    DaemonUnreachable,
    DefinedInFile,
    Exited,
    External,
    Frozen,
    Internal,
    LaunchFailed,
    Leftover,
    MethodNotAllowed,
    NoDaemon,
    NotAnswering,
    NotFound,
    NotReady,
    PermissionDenied,
    PortInUse,
    ProfileMismatch,
    Runaway,
    ServiceFailed,
    ShutdownIncomplete,
    ShuttingDown,
    SpawnFailed,
    StartLimit,
    StopIncomplete,
    Stopped,
    Timeout,
    Unhealthy,
    UnknownService,
    Untrusted,
)
from .launch import THIS_PROCESS, Launched, launch
from .wire import (
    DaemonInfo,
    Event,
    ExitInfo,
    Limits,
    LogLine,
    Process,
    ReloadResult,
    Service,
    ShutdownResult,
    StopReport,
    Stray,
    Survivor,
)

__version__ = "0.1.0"

__all__ = [
    "Corral",
    "Launched",
    "launch",
    "THIS_PROCESS",
    "Stream",
    "Endpoint",
    "read_endpoint",
    "print_endpoint",
    "default_state_dir",
    # errors
    "CorralError",
    "DaemonUnreachable",
    "NoDaemon",
    "ConnectionLost",
    "NotAnswering",
    "PermissionDenied",
    "Untrusted",
    "DaemonError",
    "BadRequest",
    "BadConfig",
    "UnknownService",
    "NotFound",
    "MethodNotAllowed",
    "ProfileMismatch",
    "External",
    "Frozen",
    "StopIncomplete",
    "Leftover",
    "Stopped",
    "PortInUse",
    "DefinedInFile",
    "ServiceFailed",
    "NotReady",
    "Unhealthy",
    "Exited",
    "StartLimit",
    "SpawnFailed",
    "Runaway",
    "ShuttingDown",
    "Timeout",
    "Internal",
    "ShutdownIncomplete",
    "LaunchFailed",
    "AlreadyRunning",
    # wire types
    "DaemonInfo",
    "Service",
    "Process",
    "StopReport",
    "ExitInfo",
    "Limits",
    "LogLine",
    "Event",
    "ReloadResult",
    "Stray",
    "Survivor",
    "ShutdownResult",
]
