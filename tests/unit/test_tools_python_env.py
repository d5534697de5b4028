"""tools/python-env, tools/setup's choice of Python: a 3.11, and a virtualenv where the
system's Python refuses pip installs (PEP 668) or SETTLERS_VENV asks for one."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "tools" / "python-env"


def run(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k not in ("PYTHON", "SETTLERS_VENV")}
    return subprocess.run([str(SCRIPT)], env={**base, **env}, capture_output=True, text=True,
                          timeout=300, check=False)


def shim(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "python3"
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)
    return path


def test_a_python_other_than_3_11_is_refused_with_the_fix(tmp_path: Path) -> None:
    old = shim(tmp_path, 'case "$*" in --version) echo "Python 3.12.3";; esac; exit 1')
    proc = run({"PYTHON": str(old)})
    assert proc.returncode == 1 and not proc.stdout
    assert "needs Python 3.11 (requires-python >=3.11,<3.12)" in proc.stderr
    assert "Python 3.12.3" in proc.stderr and "python3.11-venv" in proc.stderr


def test_this_python_is_used_as_it_is() -> None:
    proc = run({"PYTHON": sys.executable})
    assert proc.returncode == 0, proc.stderr
    assert Path(proc.stdout.strip()).resolve() == Path(sys.executable).resolve()
    assert "virtualenv" not in proc.stderr


@pytest.mark.slow
def test_an_externally_managed_python_gets_a_virtualenv(tmp_path: Path) -> None:
    # A stand-in for Debian's python3: this interpreter, except that it reports the
    # EXTERNALLY-MANAGED marker.
    managed = shim(tmp_path, f'case "$*" in *EXTERNALLY-MANAGED*) echo 1; exit 0;; esac\n'
                             f'exec {sys.executable} "$@"')
    venv = tmp_path / "venv"
    proc = run({"PYTHON": str(managed), "SETTLERS_VENV": str(venv)})
    assert proc.returncode == 0, proc.stderr
    assert "PEP 668" in proc.stderr and f"creating a Python 3.11 virtualenv in {venv}" in (
        proc.stderr)
    python = Path(proc.stdout.strip())
    assert python == venv / "bin" / "python3"
    version = subprocess.run([str(python), "-c", "import sys; print(sys.prefix != "
                              "sys.base_prefix, sys.version_info[:2] == (3, 11))"],
                             capture_output=True, text=True, check=True).stdout.split()
    assert version == ["True", "True"]
    # Made once: the next run reuses it.
    again = run({"PYTHON": str(managed), "SETTLERS_VENV": str(venv)})
    assert again.stdout == proc.stdout and "creating" not in again.stderr
