"""The package builds a wheel offline with Debian's setuptools (and
python3-wheel), and the wheel carries the package and its py.typed marker.
Skipped where setuptools is not installed."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from conftest import HERE


def test_wheel_builds_offline(tmp_path: Path) -> None:
    pytest.importorskip("setuptools")
    pytest.importorskip("wheel")
    project = HERE.parent
    copy = tmp_path / "src"
    # A copy, so that the build's byproducts never land in the tree.
    shutil.copytree(project, copy, ignore=shutil.ignore_patterns("build", "dist", "*.egg-info", "__pycache__", ".pytest_cache", "tests"))
    out = tmp_path / "dist"
    out.mkdir()
    # What a PEP 517 frontend (pip wheel --no-build-isolation, python -m
    # build --no-isolation) does, without needing one installed.
    p = subprocess.run([sys.executable, "-c", "import sys, setuptools.build_meta as b; print(b.build_wheel(sys.argv[1]))",
                        str(out)], cwd=copy, capture_output=True, timeout=120)
    assert p.returncode == 0, p.stderr.decode()
    wheels = list(out.glob("corral_client-*.whl"))
    assert len(wheels) == 1
    names = set(zipfile.ZipFile(wheels[0]).namelist())
    for f in ("corral/__init__.py", "corral/client.py", "corral/_transport.py", "corral/py.typed"):
        assert f in names, f"{f} missing from the wheel: {sorted(names)}"
    meta = zipfile.ZipFile(wheels[0]).read(next(n for n in names if n.endswith("METADATA"))).decode()
    assert "Requires-Python: >=3.9" in meta
