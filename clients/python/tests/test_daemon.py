"""The client against the real daemon: launch, ensure, members, stop,
restart, reload, errors by code, and the verified shutdown."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path
from typing import Callable, List

import pytest

import corral
from conftest import (
    PROGS,
    PY,
    assert_all_gone,
    descendants,
    environ,
    free_port,
    ident,
    late_http,
    marked,
    tree,
    wait_until,
    write_config,
)

Launch = Callable[..., corral.Launched]


def test_print_endpoint_starts_nothing(corral_bin: str, workdir: Path) -> None:
    cfg = write_config(workdir, {"a": late_http(free_port())})
    ep = corral.print_endpoint(corral_bin, config=cfg)
    assert ep.transport == "unix" and ep.pid == 0
    assert ep.state_dir == str(workdir / ".corral")
    assert ep.address == str(workdir / ".corral" / "corral.sock")
    assert not (workdir / ".corral").exists(), "--print-endpoint created the state directory"
    other = corral.print_endpoint(corral_bin, state_dir=str(workdir / "st"))
    assert other.address == str(workdir / "st" / "corral.sock")


def test_no_daemon(workdir: Path) -> None:
    c = corral.Corral(str(workdir / ".corral"))
    with pytest.raises(corral.NoDaemon, match="no corral daemon"):
        c.daemon()
    with pytest.raises(corral.NoDaemon):
        c.ensure("webui", timeout=1)


def test_launch_ensure_members_stop_shutdown(launch: Launch, workdir: Path) -> None:
    port = free_port()
    cfg = write_config(workdir, {"tree": tree(port, delay=0.7)})
    c = launch(cfg)
    info = c.daemon()
    assert info.pid == c.pid and info.state_dir == str(workdir / ".corral")

    began = time.monotonic()
    s = c.ensure("tree", timeout=20)
    assert time.monotonic() - began >= 0.6, "ensure returned before the server could be ready"
    assert s.ready and s.instance and s.pid == s.leader
    members = c.members("tree")
    # sh, the server, the escapee's first process and its setsid grandchild
    wait_until(lambda: len(c.members("tree")) >= 4, 10, "all four members of the tree")
    members = c.members("tree")
    pids = {p.pid for p in members}
    assert s.pid in pids
    escaped = [p for p in members if p.ppid not in pids]
    assert escaped, "the setsid double-forked grandchild is not listed as a member"
    for p in members:
        assert environ(p.pid).get("CORRAL_INSTANCE") == s.instance
    idents = {i for i in (ident(p.pid) for p in members) if i}
    assert len(idents) == len(members)

    stopped = c.stop("tree")
    assert stopped.state == "stopped"
    assert stopped.last_stop is not None and stopped.last_stop.survivors == []
    # stop returns only once the tree is empty: nothing is left even now
    assert [i for i in idents if ident(i[0]) == i] == []
    assert marked(s.instance) == set()

    c.ensure("tree", timeout=20)
    again = c.members("tree")
    tree_now = {i for i in (ident(p.pid) for p in again) if i}
    daemon_kids = descendants(c.pid)  # the keeper and the service's tree
    res = c.shutdown()
    assert res.clean and res.daemon_exit == 0 and "tree" in res.stopped
    assert c.process.poll() == 0
    assert_all_gone(tree_now | daemon_kids, 5, "the tree and the keeper after a verified shutdown")


def test_context_manager_shuts_down_when_the_block_raises(launch: Launch, workdir: Path) -> None:
    cfg = write_config(workdir, {"web": late_http(free_port(), 0.2)})
    c = launch(cfg)
    with pytest.raises(RuntimeError, match="the app crashed"):
        with c:
            c.ensure("web", timeout=20)
            inst = c.status("web").instance
            raise RuntimeError("the app crashed")
    assert c.process.poll() == 0
    assert marked(inst) == set()


def test_restarts_never_accumulate(launch: Launch, workdir: Path) -> None:
    cfg = write_config(workdir, {"tree": tree(free_port(), delay=0.2)})
    c = launch(cfg)
    c.ensure("tree", timeout=20)
    wait_until(lambda: c.status("tree").member_count >= 4, 10, "the whole tree")
    seen = set()
    for _ in range(3):
        before = c.status("tree")
        old = {i for i in (ident(p.pid) for p in before.members) if i}
        after = c.restart("tree", wait=True, timeout=20)
        assert after.instance != before.instance and after.ready
        assert [i for i in old if ident(i[0]) == i] == [], "a restart left the old instance's processes"
        assert marked(before.instance) == set()
        seen.add(after.instance)
    assert len(seen) == 3


def test_concurrent_ensures_make_one_instance(launch: Launch, workdir: Path) -> None:
    cfg = write_config(workdir, {"web": late_http(free_port(), 0.5)})
    c = launch(cfg)
    got: List[str] = []
    errs: List[BaseException] = []

    def one() -> None:
        try:
            got.append(c.ensure("web", timeout=20).instance)
        except BaseException as e:  # pragma: no cover - reported below
            errs.append(e)

    threads = [threading.Thread(target=one) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errs and len(got) == 6 and len(set(got)) == 1
    assert c.status("web").starts == 1


def test_errors_by_code(launch: Launch, workdir: Path) -> None:
    never = free_port()
    cfg = write_config(workdir, {
        "web": late_http(free_port(), 0.1),
        "slow": late_http(free_port(), 30),
        "never": {
            "command": [PY, "-c", "import time; time.sleep(60)"],
            "ready": {"http": f"http://127.0.0.1:{never}/health", "timeout": "500ms", "interval": "50ms"},
            "restart": {"policy": "never"},
            "autostart": False,
        },
    })
    c = launch(cfg)
    with pytest.raises(corral.UnknownService) as ue:
        c.ensure("nope")
    assert ue.value.service == "nope" and ue.value.status == 404
    with pytest.raises(corral.UnknownService):
        c.status("nope")
    with pytest.raises(corral.UnknownService):
        c.logs("nope")

    with pytest.raises(corral.BadRequest, match="profile"):
        c.start("web", profile="no-such-profile")

    # Routes the daemon does not have answer JSON with a code too.
    with pytest.raises(corral.NotFound, match="no route GET /v1/nope") as nf:
        c._call("GET", "/v1/nope", None, 10)
    assert nf.value.status == 404 and nf.value.service == ""
    with pytest.raises(corral.MethodNotAllowed, match="allowed: GET, HEAD") as na:
        c._call("DELETE", "/v1/daemon", None, 10)
    assert na.value.status == 405

    with pytest.raises(corral.NotReady) as nr:
        c.ensure("never", timeout=10)
    assert f"127.0.0.1:{never}/health" in nr.value.reason, nr.value.reason
    assert nr.value.service == "never"

    began = time.monotonic()
    with pytest.raises(corral.Timeout) as te:
        c.ensure("slow", timeout=1.0)
    assert time.monotonic() - began < 2.5
    assert te.value.status == 504, "the daemon's own timeout answer should arrive first"
    assert isinstance(te.value, TimeoutError)
    c.stop("slow")


def test_shutting_down_refuses_starts(launch: Launch, workdir: Path) -> None:
    cfg = write_config(workdir, {
        # ready once its SIGTERM handler is in place, or the signal would
        # end it before it could ignore it
        "stubborn": {"command": [PY, str(PROGS / "stubborn.py")], "ready": {"log": "ignoring SIGTERM", "timeout": "10s"},
                     "stop": {"grace": "1500ms"}, "autostart": False},
        "web": late_http(free_port(), 0.1),
    })
    c = launch(cfg)
    c.ensure("stubborn", timeout=10)
    result: List[corral.ShutdownResult] = []
    t = threading.Thread(target=lambda: result.append(c.shutdown()))
    t.start()

    def refused() -> bool:
        try:
            c.ensure("web", timeout=5)
        except corral.ShuttingDown as e:
            assert e.status == 503
            return True
        except corral.Stopped:
            pass  # it started before the shutdown began, which stopped it
        return False

    # stubborn ignores SIGTERM: the shutdown is busy for its grace period
    wait_until(refused, 10, "an ensure refused as shutting_down")
    assert t.is_alive(), "the shutdown ended before the refusal could be seen"
    t.join(30)
    assert result and result[0].clean and result[0].daemon_exit == 0


def test_reload_applies_changes_and_refuses_a_bad_file(launch: Launch, workdir: Path) -> None:
    cfg = write_config(workdir, {"a": late_http(free_port(), 0.1)})
    c = launch(cfg)
    write_config(workdir, {"a": late_http(free_port(), 0.1), "b": late_http(free_port(), 0.1)})
    r = c.reload()
    assert r.added == ["b"] and r.removed == []
    assert sorted(s.name for s in c.status()) == ["a", "b"]
    Path(cfg).write_text('[services.a]\ncomand = ["x"]\n')
    with pytest.raises(corral.BadConfig, match=r"corral.toml:\d+:\d+"):
        c.reload()
    assert sorted(s.name for s in c.status()) == ["a", "b"]


def all_threads_stopped(pid: int) -> bool:
    """SIGSTOP is delivered asynchronously: every thread must show state T."""
    states = []
    for t in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{t}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        states.append(stat[stat.rindex(")") + 2])
    return bool(states) and all(s in "tT" for s in states)


def test_a_stopped_daemon_is_not_answering(launch: Launch, workdir: Path) -> None:
    cfg = write_config(workdir, {"web": late_http(free_port(), 0.1)})
    c = launch(cfg)
    c.ensure("web", timeout=10)
    c.liveness_every, c.liveness_timeout = 0.2, 0.5
    os.kill(c.pid, signal.SIGSTOP)
    try:
        wait_until(lambda: all_threads_stopped(c.pid), 5, "the daemon's threads stopped")
        with pytest.raises(corral.Timeout):
            c.daemon(timeout=0.5)
        began = time.monotonic()
        with pytest.raises(corral.NotAnswering, match="stopped answering"):
            c.stop("web")  # no timeout of its own: the liveness check ends it
        assert time.monotonic() - began < 3
    finally:
        os.kill(c.pid, signal.SIGCONT)
    assert c.daemon(timeout=5).pid == c.pid


def test_launch_refuses_a_second_daemon(launch: Launch, workdir: Path) -> None:
    cfg = write_config(workdir, {"a": late_http(free_port(), 0.1)})
    first = launch(cfg)
    with pytest.raises(corral.AlreadyRunning) as ar:
        launch(cfg)
    assert ar.value.pid == first.pid


def test_launch_failure_says_why(launch: Launch, workdir: Path) -> None:
    cfg = workdir / "corral.toml"
    cfg.write_text('[services.a]\ncommand = ["x"]\nrestart = { backoff = "soon" }\n')
    with pytest.raises(corral.LaunchFailed) as lf:
        launch(str(cfg))
    assert lf.value.exit_code not in (None, 0)
    assert "corral.toml:3" in lf.value.log_tail and "soon" in lf.value.log_tail


def test_ensure_failure_at_launch_leaves_nothing(launch: Launch, workdir: Path) -> None:
    cfg = write_config(workdir, {"bad": {"command": [PY, "-c", "import sys; sys.exit(3)"],
                                         "ready": {"tcp": f"127.0.0.1:{free_port()}", "timeout": "5s"},
                                         "restart": {"policy": "never"}, "autostart": False}})
    with pytest.raises(corral.ServiceFailed):
        launch(cfg, ensure=["bad"], ensure_timeout=10)
    # the daemon launch started for it was shut down, verified, before
    # the error came
    assert "verified: 0 supervised processes remain" in (workdir / ".corral" / "daemon.log").read_text()
    with pytest.raises(corral.NoDaemon):
        corral.Corral(str(workdir / ".corral")).daemon(timeout=2)


def test_endpoint_file_is_believed_only_for_its_pid(launch: Launch, workdir: Path) -> None:
    """The file a daemon writes (daemon.WriteEndpoint) is read before every
    connection, and the kernel must confirm the pid it names."""
    import json

    cfg = write_config(workdir, {"a": late_http(free_port(), 0.1)})
    c = launch(cfg)
    sd = workdir / ".corral"
    sock = str(sd / "corral.sock")
    plain = corral.Corral(str(sd))

    def endpoint(**kw: object) -> None:
        doc = {"version": 1, "transport": "unix", "address": sock, "pid": c.pid, "state_dir": str(sd)}
        doc.update(kw)
        tmp = sd / "endpoint.json.tmp"
        tmp.write_text(json.dumps(doc) + "\n")
        os.replace(tmp, sd / "endpoint.json")

    endpoint()
    assert plain.endpoint().pid == c.pid and plain.daemon().pid == c.pid
    endpoint(pid=1)
    with pytest.raises(corral.Untrusted, match=f"served by pid {c.pid}"):
        plain.daemon()
    endpoint(address=str(sd / "gone.sock"), pid=999999)
    with pytest.raises(corral.NoDaemon, match="999999"):
        plain.daemon()
    (sd / "endpoint.json").unlink()
    assert plain.daemon().pid == c.pid  # the socket fallback


def test_daemon_writes_and_removes_its_endpoint_file(launch: Launch, corral_bin: str, workdir: Path) -> None:
    cfg = write_config(workdir, {"a": late_http(free_port(), 0.1)})
    c = launch(cfg)
    ep = corral.read_endpoint(str(workdir / ".corral"))
    if ep is None:
        pytest.skip("this daemon writes no endpoint.json yet (daemon.WriteEndpoint is not called in daemon.Run)")
    assert ep.pid == c.pid
    printed = corral.print_endpoint(corral_bin, config=cfg)
    assert (ep.transport, ep.address, ep.state_dir) == (printed.transport, printed.address, printed.state_dir)
    assert (os.stat(workdir / ".corral" / "endpoint.json").st_mode & 0o777) == 0o600
    c.shutdown()
    assert corral.read_endpoint(str(workdir / ".corral")) is None, "the endpoint file outlived its daemon"
