"""The `helm` command line, as the kubernetes backend and the chart tests use it.

Helm is a subprocess on purpose: the chart is installed exactly as a user would
install it, and no Go library is needed. Values go in as files (``-f``), never as
``--set`` strings, so nothing is re-parsed by helm's ``--set`` syntax.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

__all__ = ["CHART_DIR", "KUBE_VERSION", "Helm", "HelmError", "HelmNotFound", "find_helm"]

# The chart lives in the repository (charts/settlers-testbed), beside the packages.
CHART_DIR = Path(__file__).resolve().parents[3] / "charts" / "settlers-testbed"
# What `helm template` renders for when no cluster is asked (the version
# tools/k8s/build builds); helm's own default (v1.20) is below the chart's kubeVersion.
KUBE_VERSION = "1.36.3"


# libyaml's loader when present: a full render is ~60 objects, 5x faster to parse.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class HelmError(RuntimeError):
    """A helm command failed; the message carries the command and helm's own error."""


class HelmNotFound(HelmError):
    """No helm binary: build it with tools/k8s/build or put one on PATH."""


def find_helm() -> Path:
    """The helm of tools/k8s/build ($SETTLERS_K8S_BIN), else the one on PATH."""
    from harness.backends.k8s.binaries import bin_dir

    built = bin_dir() / "helm"
    if built.is_file() and os.access(built, os.X_OK):
        return built
    found = shutil.which("helm")
    if found:
        return Path(found)
    raise HelmNotFound(
        f"helm not found in {bin_dir()} nor on PATH: run `tools/k8s/build` (builds helm "
        "from the Go module proxy) or install helm 3"
    )


@dataclass
class Helm:
    """Run helm against one cluster (kubeconfig + context) or none (template/lint)."""

    binary: Path = field(default_factory=find_helm)
    kubeconfig: Path | None = None
    context: str | None = None
    timeout_s: float = 600.0

    def run(self, *args: str, values: Sequence[Mapping[str, Any]] = (),
            value_files: Sequence[Path] = ()) -> str:
        """Run ``helm ARGS -f ...``; return stdout or raise HelmError with stderr."""
        cmd = [str(self.binary), *args]
        if self.kubeconfig is not None:
            cmd += ["--kubeconfig", str(self.kubeconfig)]
        if self.context:
            cmd += ["--kube-context", self.context]
        with tempfile.TemporaryDirectory(prefix="settlers-helm-") as tmp:
            files = [str(p) for p in value_files]
            for i, doc in enumerate(values):
                path = Path(tmp) / f"values-{i}.yaml"
                # JSON is YAML: exact for every value type, no YAML-specific surprises.
                path.write_text(json.dumps(doc))
                files.append(str(path))
            for f in files:
                cmd += ["-f", f]
            try:
                proc = subprocess.run(cmd, capture_output=True, text=True,
                                      timeout=self.timeout_s, check=False)
            except subprocess.TimeoutExpired:
                raise HelmError(f"`{_show(cmd)}` took more than {self.timeout_s:.0f} s") from None
        if proc.returncode != 0:
            raise HelmError(f"`{_show(cmd)}` failed (exit {proc.returncode}):\n"
                            f"{proc.stderr.strip() or proc.stdout.strip()}")
        return proc.stdout

    # -- rendering (no cluster) -----------------------------------------------------
    def template(self, values: Sequence[Mapping[str, Any]] = (), *, release: str = "settlers",
                 namespace: str = "default", chart: Path = CHART_DIR,
                 kube_version: str = KUBE_VERSION, value_files: Sequence[Path] = (),
                 extra: Sequence[str] = ()) -> list[dict[str, Any]]:
        """Render the chart; return its objects (hooks such as tests included)."""
        out = self.run("template", release, str(chart), "--namespace", namespace,
                       "--kube-version", kube_version, *extra, values=values,
                       value_files=value_files)
        return [d for d in yaml.load_all(out, Loader=_LOADER) if d]

    def lint(self, values: Sequence[Mapping[str, Any]] = (), *, chart: Path = CHART_DIR,
             strict: bool = True) -> str:
        return self.run("lint", str(chart), *(["--strict"] if strict else []), values=values)

    # -- releases ---------------------------------------------------------------------
    def upgrade_install(self, release: str, namespace: str, values: Sequence[Mapping[str, Any]],
                        *, chart: Path = CHART_DIR, value_files: Sequence[Path] = (),
                        wait: bool = True, timeout: str = "5m") -> str:
        """``helm upgrade --install`` (creates the namespace if needed)."""
        args = ["upgrade", "--install", release, str(chart), "--namespace", namespace,
                "--create-namespace"]
        if wait:
            args += ["--wait", "--timeout", timeout]
        return self.run(*args, values=values, value_files=value_files)

    def uninstall(self, release: str, namespace: str, *, wait: bool = True) -> str:
        args = ["uninstall", release, "--namespace", namespace, "--ignore-not-found"]
        if wait:
            args += ["--wait"]
        return self.run(*args)

    def test(self, release: str, namespace: str, *, timeout: str = "2m") -> str:
        return self.run("test", release, "--namespace", namespace, "--timeout", timeout)

    def get_values(self, release: str, namespace: str) -> dict[str, Any]:
        """The values a release was installed with (the user-supplied ones)."""
        out = self.run("get", "values", release, "--namespace", namespace, "-o", "json")
        doc = json.loads(out or "null")
        return doc if isinstance(doc, dict) else {}

    def list_releases(self, namespace: str) -> list[dict[str, Any]]:
        """Every release in ``namespace`` (any state): name, chart, status, ..."""
        out = self.run("list", "--namespace", namespace, "--all", "-o", "json")
        doc = json.loads(out or "[]")
        return [r for r in doc if isinstance(r, dict)] if isinstance(doc, list) else []

    def status(self, release: str, namespace: str) -> dict[str, Any] | None:
        """The release's status as JSON, or None when it is not installed."""
        try:
            out = self.run("status", release, "--namespace", namespace, "-o", "json")
        except HelmError as exc:
            if "not found" in str(exc):
                return None
            raise
        doc: dict[str, Any] = json.loads(out)
        return doc


def _show(cmd: Sequence[str]) -> str:
    return " ".join([Path(cmd[0]).name, *cmd[1:]])
