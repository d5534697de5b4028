"""tools/image: what decides that an image is rebuilt, without building anything.

tools/image/inputs.py hashes the project image's inputs (the Dockerfile, .dockerignore
and the files its COPY lines take); tools/image/build compares such hashes with the
stamps beside its archives (`--list` says which archives are up to date).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / "tools" / "image" / "build"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("_image_inputs_under_test",
                                                  ROOT / "tools" / "image" / "inputs.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


inputs = _load()

DOCKERFILE = """\
ARG BASE=python:3
FROM ${BASE} AS build
# a comment
COPY pyproject.toml README.md* ./
COPY --chown=1:1 pkg \\
     ./pkg
COPY ["data", "/data"]
RUN echo hi
FROM ${BASE}
COPY --from=build /opt/venv /opt/venv
"""


@pytest.fixture()
def context(tmp_path: Path) -> Path:
    (tmp_path / "Dockerfile").write_text(DOCKERFILE)
    (tmp_path / ".dockerignore").write_text("*\n!pkg/\n**/__pycache__\n**/*.pyc\n")
    (tmp_path / "pyproject.toml").write_text("[project]\n")
    (tmp_path / "README.md").write_text("readme\n")
    (tmp_path / "pkg" / "sub").mkdir(parents=True)
    (tmp_path / "pkg" / "a.py").write_text("a = 1\n")
    (tmp_path / "pkg" / "sub" / "b.py").write_text("b = 2\n")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "x.json").write_text("{}\n")
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "notes.md").write_text("not copied\n")
    return tmp_path


def _hash(context: Path, *extra: str) -> str:
    digest: str = inputs.input_hash(context, context / "Dockerfile", extra)
    return digest


def test_the_sources_are_what_copy_takes_from_the_context() -> None:
    assert inputs.context_sources(DOCKERFILE) == [
        "pyproject.toml", "README.md*", "pkg", "data"]


def test_the_real_dockerfile_copies_every_package_and_nothing_from_a_stage() -> None:
    sources = inputs.context_sources((ROOT / "Dockerfile").read_text())
    assert {"pyproject.toml", "settlers", "order_app", "schedulers", "results",
            "harness", "analysis"} <= set(sources)
    assert "/opt/venv" not in sources


def test_the_hashed_files_skip_bytecode_and_what_is_not_copied(context: Path) -> None:
    (context / "pkg" / "__pycache__").mkdir()
    (context / "pkg" / "__pycache__" / "a.cpython-311.pyc").write_bytes(b"\0")
    files = inputs.context_files(context, inputs.context_sources(DOCKERFILE),
                                 inputs.ignored_names((context / ".dockerignore").read_text()))
    assert [str(f) for f in files] == [
        "README.md", "data/x.json", "pkg/a.py", "pkg/sub/b.py", "pyproject.toml"]


def test_the_hash_is_stable_and_ignores_files_outside_the_image(context: Path) -> None:
    before = _hash(context)
    assert _hash(context) == before
    (context / "docs" / "notes.md").write_text("edited\n")
    (context / "pkg" / "__pycache__").mkdir()
    (context / "pkg" / "__pycache__" / "a.cpython-311.pyc").write_bytes(b"\1")
    assert _hash(context) == before


@pytest.mark.parametrize("change", [
    lambda c: (c / "pkg" / "sub" / "b.py").write_text("b = 3\n"),
    lambda c: (c / "pkg" / "new.py").write_text(""),
    lambda c: (c / "pkg" / "a.py").chmod(0o755),
    lambda c: (c / "pkg" / "a.py").rename(c / "pkg" / "a2.py"),
    lambda c: (c / "README.md").write_text("changed\n"),
    lambda c: (c / "Dockerfile").write_text(DOCKERFILE + "EXPOSE 80\n"),
    lambda c: (c / ".dockerignore").write_text("*\n"),
], ids=["content", "new-file", "mode", "rename", "glob-source", "dockerfile", "dockerignore"])
def test_a_change_to_an_input_changes_the_hash(context: Path, change: object) -> None:
    before = _hash(context)
    change(context)  # type: ignore[operator]
    assert _hash(context) != before


def test_the_extra_strings_count(context: Path) -> None:
    assert _hash(context, "base 1") != _hash(context, "base 2")
    assert _hash(context, "ab", "c") != _hash(context, "a", "bc")


def _tool(image_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SETTLERS_IMAGE_DIR": str(image_dir)}
    return subprocess.run([str(BUILD), *args], capture_output=True, text=True, env=env,
                          timeout=60, check=False)


@pytest.mark.skipif(shutil.which("sha256sum") is None, reason="needs coreutils' sha256sum")
def test_list_reports_an_archive_fresh_only_when_its_stamp_matches(tmp_path: Path) -> None:
    missing = _tool(tmp_path, "--list", "--only", "pause")
    assert missing.returncode == 1
    assert "missing or stale" in missing.stderr
    hashes = dict(line.split() for line in _tool(tmp_path, "--inputs").stdout.splitlines())
    assert {"base", "app", "pause"} <= set(hashes)
    archive = tmp_path / "settlers-pause-3.10.tar"
    archive.write_bytes(b"archive")
    (tmp_path / "settlers-pause-3.10.tar.stamp").write_text(hashes["pause"] + "\n")
    fresh = _tool(tmp_path, "--list", "--only", "pause")
    assert fresh.returncode == 0, fresh.stderr
    assert fresh.stdout.split() == ["localhost/settlers-pause:3.10", str(archive)]
    (tmp_path / "settlers-pause-3.10.tar.stamp").write_text(hashes["app"] + "\n")
    assert _tool(tmp_path, "--list", "--only", "pause").returncode == 1
    assert _tool(tmp_path, "--list").returncode == 1  # base and app are missing


def test_help_and_a_wrong_option() -> None:
    shown = subprocess.run([str(BUILD), "--help"], capture_output=True, text=True,
                           timeout=60, check=False)
    assert shown.returncode == 0
    assert "ctr -n k8s.io images import" in shown.stdout
    wrong = subprocess.run([str(BUILD), "--only", "nope"], capture_output=True, text=True,
                           timeout=60, check=False)
    assert wrong.returncode == 2
    assert "not base, app, pause or scheduler" in wrong.stderr
