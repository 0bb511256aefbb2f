"""A small TOML writer for corral.toml files built from Python values.

Programs that launch corral usually know their service's command only at
run time (the user's launch arguments, a port chosen at start). Writing
the file by string formatting breaks on the first argument with a quote or
a backslash; this writes every string as a TOML basic string (JSON's
escapes are a subset of TOML's), so any argv survives the round trip.

Layout: a mapping whose values are all mappings becomes a level of table
headers (``services`` → ``[services.webui]``); any other mapping is a
table whose nested mappings are inline tables (``ready = { http = … }``).
"""

from __future__ import annotations

import json
import math
import re
from typing import Any, List, Mapping

__all__ = ["dumps", "dump_value"]

_BARE = re.compile(r"^[A-Za-z0-9_-]+$")


def _key(k: str) -> str:
    return k if _BARE.match(k) else json.dumps(k)


def dump_value(v: Any) -> str:
    """One TOML value: str, bool, int, float, list/tuple, or mapping
    (an inline table)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if not math.isfinite(v):
            raise ValueError(f"TOML has no {v!r} corral would accept")
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)  # ensure_ascii: \\uXXXX, valid TOML
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(dump_value(x) for x in v) + "]"
    if isinstance(v, Mapping):
        return "{ " + ", ".join(f"{_key(str(k))} = {dump_value(x)}" for k, x in v.items()) + " }" if v else "{}"
    raise TypeError(f"no TOML for {type(v).__name__}: {v!r}")


def dumps(doc: Mapping[str, Any]) -> str:
    """The TOML text of ``doc`` (see the module doc for its layout)."""
    out: List[str] = []
    top = {k: v for k, v in doc.items() if not isinstance(v, Mapping)}
    for k, v in top.items():
        out.append(f"{_key(str(k))} = {dump_value(v)}")
    for k, v in doc.items():
        if isinstance(v, Mapping):
            _table(out, [str(k)], v)
    return "\n".join(out).lstrip("\n") + "\n"


def _table(out: List[str], path: List[str], t: Mapping[str, Any]) -> None:
    if t and all(isinstance(v, Mapping) for v in t.values()):
        for k, v in t.items():
            _table(out, path + [str(k)], v)
        return
    out.append("")
    out.append("[" + ".".join(_key(p) for p in path) + "]")
    for k, v in t.items():
        out.append(f"{_key(str(k))} = {dump_value(v)}")
