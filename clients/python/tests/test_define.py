"""Launch options (args=, env=) and services defined through the API
(define, remove) against the real daemon."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Dict

import pytest

import corral
from conftest import assert_all_gone, free_port, ident, late_http, marked, wait_until, write_config

Launch = Callable[..., corral.Launched]

# A program that prints what it was started with, then stays.
SHOW = {
    "command": ["/bin/sh", "-c", 'echo "args:$* token:$TOKEN mode:$MODE"; exec sleep 1000', "sh"],
    "env": {"MODE": "config"},
    "ready": {"log": "^args:", "timeout": "20s"},
    "stop": {"grace": "2s"},
    "autostart": False,
}


def last_line(c: corral.Corral, name: str) -> str:
    lines = [ln.text for ln in c.logs(name, n=1)]
    return lines[-1] if lines else ""


def test_launch_options_reach_the_program(launch: Launch, workdir: Path) -> None:
    c = launch(write_config(workdir, {"show": SHOW}))
    s = c.ensure("show", args=["--port", "7861", "a b"], env={"TOKEN": "s3cret"}, timeout=20)
    assert last_line(c, "show") == "args:--port 7861 a b token:s3cret mode:config"
    assert s.args == ["--port", "7861", "a b"] and s.env_keys == ["TOKEN"]
    assert "s3cret" not in json.dumps(s.raw), "the status shows an environment value"

    # Other options are refused and touch nothing; none accepts what runs.
    with pytest.raises(corral.ProfileMismatch, match=r'not \["--port" "1"\]'):
        c.ensure("show", args=["--port", "1"], timeout=20)
    with pytest.raises(corral.ProfileMismatch, match="TOKEN has another value"):
        c.ensure("show", env={"TOKEN": "other"}, timeout=20)
    assert c.ensure("show", timeout=20).instance == s.instance

    # A restart keeps them unless named; args=[] drops the arguments.
    r = c.restart("show", env={"MODE": "app"}, wait=True, timeout=20)
    assert r.instance != s.instance and r.args == ["--port", "7861", "a b"] and r.env_keys == ["MODE"]
    assert last_line(c, "show") == "args:--port 7861 a b token: mode:app"
    r = c.restart("show", args=[], wait=True, timeout=20)
    assert r.args == [] and last_line(c, "show") == "args: token: mode:app"
    # Asked to, other options replace the instance.
    again = c.ensure("show", args=["x"], restart_if_different=True, timeout=20)
    assert again.instance != r.instance and marked(r.instance) == set()

    with pytest.raises(TypeError, match="not a string"):
        c.start("show", args="--port 1")  # type: ignore[arg-type]
    with pytest.raises(corral.BadRequest, match="CORRAL_INSTANCE is set by corral"):
        c.start("show", env={"CORRAL_INSTANCE": "x"})
    with pytest.raises(corral.BadRequest, match="env must be an object of strings"):
        c.start("show", env={"PORT": 8080})  # type: ignore[dict-item]


def test_define_start_remove(launch: Launch, workdir: Path) -> None:
    port = free_port()
    c = launch(write_config(workdir, {"file": late_http(free_port(), 0.1)}))
    definition: Dict[str, Any] = late_http(port, 0.1)

    with pytest.raises(corral.BadRequest, match=r"services\.api\.ready\.timeout: \"soon\" is not a duration"):
        c.define("api", dict(definition, ready={"http": f"http://127.0.0.1:{port}/", "timeout": "soon"}))
    with pytest.raises(corral.BadRequest, match=r'services\.api\.comand: unknown key \(did you mean "command"\?\)'):
        c.define("api", {"comand": ["x"]})
    with pytest.raises(corral.UnknownService):
        c.status("api")
    with pytest.raises(corral.DefinedInFile, match="edit it there and run corral reload"):
        c.define("file", definition)
    with pytest.raises(corral.DefinedInFile):
        c.remove("file")

    s = c.define("api", definition)
    assert s.name == "api" and s.state == "stopped"
    s = c.ensure("api", timeout=20)
    assert s.ready
    tree = {i for i in (ident(p.pid) for p in c.members("api")) if i}
    assert tree

    gone = c.remove("api")
    assert gone.state == "stopped" and gone.last_stop is not None and gone.last_stop.survivors == []
    assert_all_gone(tree, 1, "the removed service's tree")  # remove returned: it is gone already
    assert marked(s.instance) == set()
    with pytest.raises(corral.UnknownService):
        c.status("api")
    with pytest.raises(corral.UnknownService):
        c.remove("api")


def test_defined_service_survives_the_daemon(launch: Launch, workdir: Path) -> None:
    cfg = write_config(workdir, {"file": late_http(free_port(), 0.1)})
    c = launch(cfg)
    c.define("api", late_http(free_port(), 0.1))
    assert (workdir / ".corral" / "services.json").exists()
    c.shutdown()
    c = launch(cfg)
    assert c.status("api").state == "stopped"  # autostart = false
    assert c.ensure("api", timeout=20).ready
    wait_until(lambda: c.remove("api").state == "stopped", 20, "the removal")
