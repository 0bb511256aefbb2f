"""Dataclasses of the daemon's wire types (client/types.go is the reference).

Each has ``from_json(dict)``. Fields this client does not know yet are
not lost: every object keeps the decoded JSON in ``raw``, so a newer
daemon's additions are readable before this package learns their names.
Times are timezone-aware ``datetime`` (None for Go's zero time, which the
daemon sends for "never"); Go durations (nanoseconds) become seconds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Dict, List, Mapping, Optional

__all__ = [
    "Process",
    "StopReport",
    "ExitInfo",
    "Limits",
    "Service",
    "DaemonInfo",
    "LogLine",
    "Event",
    "ReloadResult",
    "Survivor",
    "ShutdownResult",
    "parse_time",
]

_RFC3339 = re.compile(
    r"^(\d{4})-(\d\d)-(\d\d)[Tt ](\d\d):(\d\d):(\d\d)(?:\.(\d+))?(Z|z|[+-]\d\d:\d\d)$"
)


def parse_time(s: Any) -> Optional[datetime]:
    """Parse Go's RFC 3339 time (nanoseconds, ``Z`` or an offset), which
    ``datetime.fromisoformat`` before Python 3.11 does not read. Go's zero
    time (year 1) and anything unreadable are None."""
    if not isinstance(s, str):
        return None
    m = _RFC3339.match(s)
    if not m:
        return None
    y, mo, d, h, mi, sec = (int(m.group(i)) for i in range(1, 7))
    if y <= 1:
        return None
    frac = m.group(7) or ""
    micro = int((frac + "000000")[:6]) if frac else 0
    tz = m.group(8)
    if tz in ("Z", "z"):
        tzinfo = timezone.utc
    else:
        sign = 1 if tz[0] == "+" else -1
        tzinfo = timezone(sign * timedelta(hours=int(tz[1:3]), minutes=int(tz[4:6])))
    try:
        return datetime(y, mo, d, h, mi, sec, micro, tzinfo=tzinfo)
    except ValueError:
        return None


def _s(d: Mapping[str, Any], k: str) -> str:
    v = d.get(k)
    return v if isinstance(v, str) else ""


def _i(d: Mapping[str, Any], k: str) -> int:
    v = d.get(k)
    return int(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else 0


def _f(d: Mapping[str, Any], k: str) -> float:
    v = d.get(k)
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else 0.0


def _b(d: Mapping[str, Any], k: str) -> bool:
    return d.get(k) is True


def _strs(d: Mapping[str, Any], k: str) -> List[str]:
    v = d.get(k)
    return [x for x in v if isinstance(x, str)] if isinstance(v, list) else []


def _ints(d: Mapping[str, Any], k: str) -> List[int]:
    v = d.get(k)
    return [int(x) for x in v if isinstance(x, int) and not isinstance(x, bool)] if isinstance(v, list) else []


def _dicts(d: Mapping[str, Any], k: str) -> List[Mapping[str, Any]]:
    v = d.get(k)
    return [x for x in v if isinstance(x, dict)] if isinstance(v, list) else []


def _dict(d: Mapping[str, Any], k: str) -> Optional[Mapping[str, Any]]:
    v = d.get(k)
    return v if isinstance(v, dict) else None


@dataclass
class Process:
    """One member of a service's tree."""

    pid: int
    ppid: int
    pgid: int
    start: Optional[datetime]
    cmdline: List[str]
    rss: int
    state: str
    start_ticks: int
    cpu_seconds: float = 0.0
    """Processor time used (with the children it waited for), in seconds."""
    gpu_memory: Optional[int] = None
    """GPU memory held, in bytes, where nvidia-smi answers; else None."""
    raw: Dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "Process":
        return cls(
            pid=_i(d, "pid"),
            ppid=_i(d, "ppid"),
            pgid=_i(d, "pgid"),
            start=parse_time(d.get("start")),
            cmdline=_strs(d, "cmdline"),
            rss=_i(d, "rss"),
            state=_s(d, "state"),
            start_ticks=_i(d, "start_ticks"),
            cpu_seconds=_f(d, "cpu_seconds"),
            gpu_memory=_i(d, "gpu_memory") if d.get("gpu_memory") is not None else None,
            raw=dict(d),
        )


@dataclass
class StopReport:
    """What stopping a tree did. ``duration`` is in seconds."""

    signal: str
    signalled: int
    exited_on_signal: int
    killed: int
    duration: float
    survivors: List[Process]
    unverified: str = ""
    """Why the tree's tier could not prove it empty though no member was
    found (the stop is then not verified); "" after a verified stop."""
    raw: Dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "StopReport":
        return cls(
            signal=_s(d, "signal"),
            signalled=_i(d, "signalled"),
            exited_on_signal=_i(d, "exited_on_signal"),
            killed=_i(d, "killed"),
            duration=_i(d, "duration") / 1e9,
            survivors=[Process.from_json(p) for p in _dicts(d, "survivors")],
            unverified=_s(d, "unverified"),
            raw=dict(d),
        )


@dataclass
class ExitInfo:
    """How an instance ended."""

    at: Optional[datetime]
    code: int
    signaled: bool
    description: str
    requested: bool
    raw: Dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "ExitInfo":
        return cls(
            at=parse_time(d.get("at")),
            code=_i(d, "code"),
            signaled=_b(d, "signaled"),
            description=_s(d, "description"),
            requested=_b(d, "requested"),
            raw=dict(d),
        )


@dataclass
class Limits:
    """A service's runaway limits and what a breach does (``memory`` in bytes)."""

    processes: int
    memory: int
    fork_rate: float
    on_limit: str
    raw: Dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "Limits":
        return cls(
            processes=_i(d, "processes"),
            memory=_i(d, "memory"),
            fork_rate=_f(d, "fork_rate"),
            on_limit=_s(d, "on_limit"),
            raw=dict(d),
        )


@dataclass
class Service:
    """A service's status (docs/api.md, "A service's status").

    ``pid`` is the main process, ``leader`` the first process of the
    instance; ``members`` is filled by :meth:`corral.Corral.status` of one
    service (and by a list with ``members=True``).
    """

    name: str
    state: str
    reason: str = ""
    code: str = ""
    since: Optional[datetime] = None
    instance: str = ""
    pid: int = 0
    leader: int = 0
    main_from: str = ""
    previous_pid: int = 0
    mechanism: str = ""
    profile: str = ""
    args: List[str] = field(default_factory=list)
    """The instance's own arguments (launch options)."""
    env_keys: List[str] = field(default_factory=list)
    """The names of the instance's own environment variables; the values are never shown."""
    started_at: Optional[datetime] = None
    restarts: int = 0
    starts: int = 0
    next_start: Optional[datetime] = None
    last_exit: Optional[ExitInfo] = None
    external_pids: List[int] = field(default_factory=list)
    last_stop: Optional[StopReport] = None
    limits: Optional[Limits] = None
    frozen: bool = False
    kernel_limit: bool = False
    members: List[Process] = field(default_factory=list)
    member_count: int = 0
    rss: int = 0
    cpu_seconds: float = 0.0
    """Processor time of the tree's live members, in seconds."""
    gpu_memory: Optional[int] = None
    """GPU memory of the tree, in bytes; None where nvidia-smi is absent."""
    profiles: List[str] = field(default_factory=list)
    raw: Dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def ready(self) -> bool:
        """The instance runs and passed its readiness probe."""
        return self.state == "ready"

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "Service":
        le, ls, lim = _dict(d, "last_exit"), _dict(d, "last_stop"), _dict(d, "limits")
        return cls(
            name=_s(d, "name"),
            state=_s(d, "state"),
            reason=_s(d, "reason"),
            code=_s(d, "code"),
            since=parse_time(d.get("since")),
            instance=_s(d, "instance"),
            pid=_i(d, "pid"),
            leader=_i(d, "leader"),
            main_from=_s(d, "main_from"),
            previous_pid=_i(d, "previous_pid"),
            mechanism=_s(d, "mechanism"),
            profile=_s(d, "profile"),
            args=_strs(d, "args"),
            env_keys=_strs(d, "env_keys"),
            started_at=parse_time(d.get("started_at")),
            restarts=_i(d, "restarts"),
            starts=_i(d, "starts"),
            next_start=parse_time(d.get("next_start")),
            last_exit=ExitInfo.from_json(le) if le is not None else None,
            external_pids=_ints(d, "external_pids"),
            last_stop=StopReport.from_json(ls) if ls is not None else None,
            limits=Limits.from_json(lim) if lim is not None else None,
            frozen=_b(d, "frozen"),
            kernel_limit=_b(d, "kernel_limit"),
            members=[Process.from_json(p) for p in _dicts(d, "members")],
            member_count=_i(d, "member_count"),
            rss=_i(d, "rss"),
            cpu_seconds=_f(d, "cpu_seconds"),
            gpu_memory=_i(d, "gpu_memory") if d.get("gpu_memory") is not None else None,
            profiles=_strs(d, "profiles"),
            raw=dict(d),
        )


@dataclass
class DaemonInfo:
    """What ``GET /v1/daemon`` answers: who the daemon is."""

    pid: int
    version: str
    config: str
    state_dir: str
    started: Optional[datetime]
    mechanism: str
    """The containment tier new trees get: cgroup-v2, pgroup, job-object
    (none: no tree can start; ``mechanism_note`` says why)."""
    containment: str = ""
    """The containment asked for: auto, cgroup or pgroup."""
    mechanism_note: str = ""
    """Why ``mechanism`` is not the platform's best, or why no tree can start."""
    strays: List["Stray"] = field(default_factory=list)
    """Processes re-parented to the daemon that no live tree holds."""
    raw: Dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "DaemonInfo":
        return cls(
            pid=_i(d, "pid"),
            version=_s(d, "version"),
            config=_s(d, "config"),
            state_dir=_s(d, "state_dir"),
            started=parse_time(d.get("started")),
            mechanism=_s(d, "mechanism"),
            containment=_s(d, "containment"),
            mechanism_note=_s(d, "mechanism_note"),
            strays=[Stray.from_json(x) for x in _dicts(d, "strays")],
            raw=dict(d),
        )


@dataclass
class Stray:
    """A process re-parented to the daemon that no live tree holds (an
    orphan of one of its trees that left its group and rewrote its
    environment). ``service``/``instance`` name its tree when
    ``attributed_by`` (marker, process group, ancestry) says; "" otherwise."""

    pid: int
    ppid: int
    pgid: int
    start: Optional[datetime]
    start_ticks: int
    cmdline: List[str]
    service: str = ""
    instance: str = ""
    attributed_by: str = ""
    raw: Dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "Stray":
        return cls(
            pid=_i(d, "pid"),
            ppid=_i(d, "ppid"),
            pgid=_i(d, "pgid"),
            start=parse_time(d.get("start")),
            start_ticks=_i(d, "start_ticks"),
            cmdline=_strs(d, "cmdline"),
            service=_s(d, "service"),
            instance=_s(d, "instance"),
            attributed_by=_s(d, "attributed_by"),
            raw=dict(d),
        )


@dataclass
class LogLine:
    """One line of a service's output; ``seq`` numbers the lines of one
    service within one daemon's lifetime (a new daemon starts again at 1)."""

    seq: int
    time: Optional[datetime]
    stream: str
    text: str
    raw: Dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "LogLine":
        return cls(seq=_i(d, "seq"), time=parse_time(d.get("time")), stream=_s(d, "stream"), text=_s(d, "text"), raw=dict(d))


@dataclass
class Event:
    """One entry of the event stream (the journal); ``seq`` continues across
    daemon restarts, since a new daemon numbers on from its journal."""

    seq: int
    time: Optional[datetime]
    kind: str
    service: str
    instance: str
    pid: int
    message: str
    fields: Dict[str, str]
    cgroup: str = ""
    start: int = 0
    boot: str = ""
    cmdline: List[str] = field(default_factory=list)
    raw: Dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "Event":
        fl = _dict(d, "fields") or {}
        return cls(
            seq=_i(d, "seq"),
            time=parse_time(d.get("time")),
            kind=_s(d, "kind"),
            service=_s(d, "service"),
            instance=_s(d, "instance"),
            pid=_i(d, "pid"),
            message=_s(d, "message"),
            fields={str(k): str(v) for k, v in fl.items()},
            cgroup=_s(d, "cgroup"),
            start=_i(d, "start"),
            boot=_s(d, "boot"),
            cmdline=_strs(d, "cmdline"),
            raw=dict(d),
        )


@dataclass
class ReloadResult:
    """What a reload changed, by service name."""

    added: List[str]
    removed: List[str]
    changed: List[str]
    unchanged: List[str]
    raw: Dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "ReloadResult":
        return cls(
            added=_strs(d, "added"),
            removed=_strs(d, "removed"),
            changed=_strs(d, "changed"),
            unchanged=_strs(d, "unchanged"),
            raw=dict(d),
        )


@dataclass
class Survivor:
    """A supervised process still alive after a shutdown."""

    service: str
    instance: str
    pid: int
    cmdline: List[str]
    raw: Dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "Survivor":
        return cls(service=_s(d, "service"), instance=_s(d, "instance"), pid=_i(d, "pid"), cmdline=_strs(d, "cmdline"), raw=dict(d))


@dataclass
class ShutdownResult:
    """The outcome of a verified shutdown: clean only with no survivors and
    no errors.

    ``daemon_exit`` is not on the wire: a daemon started by
    :meth:`corral.Corral.launch` sets it to the daemon process's exit
    status once it has exited (0 means the daemon itself verified that no
    supervised process remains).
    """

    stopped: List[str]
    errors: List[str]
    survivors: List[Survivor]
    daemon_exit: Optional[int] = None
    unverified: List[str] = field(default_factory=list)
    """``SERVICE: why`` for each tree its tier could not prove empty: the
    shutdown is then not verified, even with no survivor."""
    raw: Dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def clean(self) -> bool:
        """Nothing survived, nothing went wrong, and every tree was proved empty."""
        return not self.survivors and not self.errors and not self.unverified and self.daemon_exit in (None, 0)

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "ShutdownResult":
        return cls(
            stopped=_strs(d, "stopped"),
            errors=_strs(d, "errors"),
            survivors=[Survivor.from_json(s) for s in _dicts(d, "survivors")],
            unverified=_strs(d, "unverified"),
            raw=dict(d),
        )
