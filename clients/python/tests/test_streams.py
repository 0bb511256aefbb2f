"""Log and event iterators: history, follow, resume by sequence number
(also across a daemon restart), and stopping from another thread."""

from __future__ import annotations

import os
import queue
import signal
import threading
import time
from pathlib import Path
from typing import Any, Callable, List

import pytest

import corral
from conftest import PROGS, PY, free_port, late_http, wait_until, write_config

Launch = Callable[..., corral.Launched]


def counter(n: int, first: int, every: float) -> dict:
    return {"command": [PY, str(PROGS / "counter.py"), str(n), str(first), str(every)],
            "autostart": False, "stop": {"grace": "2s"}}


def texts(lines: List[corral.LogLine]) -> List[str]:
    return [ln.text for ln in lines]


def test_logs_history_follow_and_resume(launch: Launch, workdir: Path) -> None:
    cfg = write_config(workdir, {"count": counter(30, 5, 0.03)})
    c = launch(cfg)
    c.start("count")

    # follow from the start: the first five lines, then stop
    with c.logs("count", n=0, follow=True, timeout=20) as s:
        first = [next(s) for _ in range(5)]
    assert texts(first) == [f"line {i}" for i in range(1, 6)]
    assert [ln.seq for ln in first] == [1, 2, 3, 4, 5] and s.last_seq == 5

    # resume after the last one seen: no duplicate, no gap
    with c.logs("count", follow=True, after=s.last_seq, timeout=20) as r:
        more = [next(r) for _ in range(10)]
    assert texts(more) == [f"line {i}" for i in range(6, 16)]
    assert r.missed == 0

    # history only: everything kept, then the end
    wait_until(lambda: len(list(c.logs("count", n=0))) >= 30, 20, "all 30 lines")
    hist = list(c.logs("count", n=0))
    assert texts(hist) == [f"line {i}" for i in range(1, 31)]
    assert texts(list(c.logs("count", n=3))) == ["line 28", "line 29", "line 30"]
    assert texts(list(c.logs("count", after=27))) == ["line 28", "line 29", "line 30"]


def test_stream_stops_from_another_thread(launch: Launch, workdir: Path) -> None:
    cfg = write_config(workdir, {"quiet": counter(1, 1, 0)})
    c = launch(cfg)
    c.start("quiet")
    s = c.logs("quiet", n=0, follow=True)
    got: "queue.Queue[object]" = queue.Queue()

    def reader() -> None:
        try:
            for line in s:
                got.put(line)
            got.put("end")
        except BaseException as e:  # pragma: no cover - reported below
            got.put(e)

    t = threading.Thread(target=reader)
    t.start()
    assert isinstance(got.get(timeout=10), corral.LogLine)  # "line 1", then silence
    began = time.monotonic()
    s.close()
    assert got.get(timeout=5) == "end"
    t.join(5)
    assert not t.is_alive() and time.monotonic() - began < 2

    # the same for the event stream, and a stream's own timeout
    with c.events(n=0, follow=True, timeout=0.5) as ev:
        began = time.monotonic()
        seen = list(ev)
    assert ev.timed_out and 0.4 < time.monotonic() - began < 3
    assert seen and all(e.seq > 0 for e in seen)


def test_events_follow_a_restart(launch: Launch, workdir: Path) -> None:
    cfg = write_config(workdir, {"web": late_http(free_port(), 0.2)})
    c = launch(cfg)
    c.ensure("web", timeout=20)
    last = list(c.events(n=1))[-1].seq
    with c.events(follow=True, after=last, timeout=20) as ev:
        t = threading.Thread(target=lambda: c.restart("web", wait=True, timeout=20))
        t.start()
        kinds = []
        for e in ev:
            assert e.seq > last
            if e.service == "web":
                kinds.append(e.kind)
            if e.kind == "ready" and e.service == "web":
                break
        t.join(20)
    assert "spawn" in kinds and kinds[-1] == "ready"
    assert kinds.index("signal") < kinds.index("spawn"), kinds  # the old tree went first


def test_streams_resume_across_a_daemon_restart(launch: Launch, workdir: Path) -> None:
    """A follower with reconnect keeps reading through a verified shutdown
    and the start of a new daemon: events continue by number (the journal
    carries them over), log lines start over with the new daemon's."""
    cfg = write_config(workdir, {"count": counter(3, 3, 0)})
    c1 = launch(cfg)
    c1.start("count")
    wait_until(lambda: len(list(c1.logs("count", n=0))) == 3, 10, "three lines")
    plain = corral.Corral(str(workdir / ".corral"))  # finds whichever daemon runs
    events = plain.events(n=0, follow=True, reconnect=True, timeout=30)
    logs = plain.logs("count", n=0, follow=True, reconnect=True, timeout=30)
    ev_q: "queue.Queue[corral.Event]" = queue.Queue()
    log_q: "queue.Queue[corral.LogLine]" = queue.Queue()
    def drain(stream: "corral.Stream[Any]", q: "queue.Queue[Any]") -> None:
        for item in stream:
            q.put(item)

    threads = [threading.Thread(target=drain, args=(events, ev_q)), threading.Thread(target=drain, args=(logs, log_q))]
    for t in threads:
        t.start()
    try:
        wait_until(lambda: log_q.qsize() >= 3, 10, "the first daemon's lines")
        c1.shutdown()
        c2 = launch(cfg)
        c2.start("count")
        started = f"daemon {c2.pid} started"

        seen: List[corral.Event] = []

        def saw_second() -> bool:
            while not ev_q.empty():
                seen.append(ev_q.get())
            return any(started in e.message for e in seen)

        wait_until(saw_second, 20, "the second daemon's start event")
        seqs = [e.seq for e in seen]
        assert seqs == sorted(set(seqs)), f"events repeated or out of order across the restart: {[(e.seq, e.kind, e.message[:50]) for e in seen]}"
        lines = [log_q.get(timeout=10) for _ in range(6)]
        assert [ln.text for ln in lines] == ["line 1", "line 2", "line 3"] * 2
        assert events.reconnects >= 1 and logs.reconnects >= 1
    finally:
        events.close()
        logs.close()
        for t in threads:
            t.join(10)
    assert not any(t.is_alive() for t in threads)


def test_follow_without_reconnect_says_the_daemon_went_away(launch: Launch, workdir: Path) -> None:
    cfg = write_config(workdir, {"count": counter(1, 1, 0)})
    c = launch(cfg)
    s = c.events(n=0, follow=True, timeout=20)
    threading.Timer(0.3, c.shutdown).start()
    with pytest.raises(corral.ConnectionLost, match="went away"):
        for _ in s:
            pass
    assert not s.timed_out


def test_follow_of_a_stopped_daemon_is_not_answering(launch: Launch, workdir: Path) -> None:
    from test_daemon import all_threads_stopped

    cfg = write_config(workdir, {"quiet": counter(1, 1, 0)})
    c = launch(cfg)
    c.liveness_every, c.liveness_timeout = 0.2, 0.5
    s = c.events(n=0, follow=True, timeout=20)
    os.kill(c.pid, signal.SIGSTOP)
    try:
        wait_until(lambda: all_threads_stopped(c.pid), 5, "the daemon's threads stopped")
        began = time.monotonic()
        with pytest.raises(corral.NotAnswering, match="stopped answering"):
            for _ in s:
                pass
        assert time.monotonic() - began < 3 and not s.timed_out
    finally:
        os.kill(c.pid, signal.SIGCONT)
        s.close()


def test_idle_follow_gets_heartbeats_and_never_yields_them(launch: Launch, workdir: Path) -> None:
    cfg = write_config(workdir, {"web": late_http(free_port(), 0.1)})
    c = launch(cfg)
    last = list(c.events(n=1))[-1].seq
    got: "queue.Queue[object]" = queue.Queue()
    with c.events(follow=True, after=last, heartbeat=0.05, timeout=30) as ev:
        def reader() -> None:
            try:
                for e in ev:
                    got.put(e)
            except BaseException as e:  # pragma: no cover - reported below
                got.put(e)

        t = threading.Thread(target=reader)
        t.start()
        wait_until(lambda: ev.heartbeats >= 3, 10, "three heartbeats on an idle follow")
        c.ensure("web", timeout=20)  # events again, after the heartbeats
        while True:
            e = got.get(timeout=10)
            assert isinstance(e, corral.Event) and e.seq > last and e.kind, e  # never a heartbeat
            if e.service == "web" and e.kind == "ready":
                break
        ev.close()
        t.join(10)
    assert not t.is_alive()


def test_follow_whose_heartbeats_stop_is_dead(launch: Launch, workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from test_daemon import all_threads_stopped

    monkeypatch.setattr(corral.Stream, "heartbeat_slack", 0.3)
    cfg = write_config(workdir, {"quiet": counter(1, 1, 0)})
    c = launch(cfg)
    c.liveness_every = 60.0  # only the heartbeats can tell
    s = c.events(n=0, follow=True, heartbeat=0.1, timeout=20)
    assert next(s).seq > 0  # the connection works
    os.kill(c.pid, signal.SIGSTOP)
    try:
        wait_until(lambda: all_threads_stopped(c.pid), 5, "the daemon's threads stopped")
        began = time.monotonic()
        with pytest.raises(corral.NotAnswering, match="neither an item nor a heartbeat"):
            for _ in s:
                pass
        assert time.monotonic() - began < 3 and not s.timed_out
    finally:
        os.kill(c.pid, signal.SIGCONT)
        s.close()
