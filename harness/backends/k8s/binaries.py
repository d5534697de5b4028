"""Find the Kubernetes binaries that `tools/k8s/build` put in the cache directory.

The binaries live outside git (they are ~500 MB and take a long time to compile), in
``$SETTLERS_K8S_BIN`` or ``~/.cache/settlers-testbed/k8s-bin``, so every clone on the
machine shares one build.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["BINARY_NAMES", "K8sBinaries", "K8sBinariesMissing", "bin_dir", "binaries"]

BINARY_NAMES = (
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kubectl",
    "etcd",
    "kwok",
    "kwokctl",
    "helm",
)


class K8sBinariesMissing(RuntimeError):
    """The cache directory lacks one or more binaries: run `tools/k8s/build`."""


@dataclass(frozen=True)
class K8sBinaries:
    """Absolute paths of every binary of the local control plane."""

    dir: Path
    kube_apiserver: Path
    kube_controller_manager: Path
    kube_scheduler: Path
    kubectl: Path
    etcd: Path
    kwok: Path
    kwokctl: Path
    helm: Path

    def versions(self) -> dict[str, str]:
        """Component -> version as recorded by the build (`VERSIONS` file)."""
        out: dict[str, str] = {}
        stamp = self.dir / "VERSIONS"
        if stamp.is_file():
            for line in stamp.read_text().splitlines():
                key, sep, value = line.partition("=")
                if sep:
                    out[key.strip()] = value.strip()
        return out


def bin_dir() -> Path:
    """The cache directory, whether or not it has been built yet."""
    env = os.environ.get("SETTLERS_K8S_BIN")
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "settlers-testbed" / "k8s-bin"


def binaries(directory: Path | None = None) -> K8sBinaries:
    """Return the binaries, or raise `K8sBinariesMissing` naming what is missing."""
    root = (directory or bin_dir()).resolve()
    paths = {name: root / name for name in BINARY_NAMES}
    missing = [n for n, p in paths.items() if not (p.is_file() and os.access(p, os.X_OK))]
    if missing:
        raise K8sBinariesMissing(
            f"Kubernetes binaries missing in {root}: {', '.join(missing)}. "
            "Run `tools/k8s/build` (or `tools/setup --k8s`) to build them from the Go "
            "module proxy, or point SETTLERS_K8S_BIN at a directory that has them."
        )
    return K8sBinaries(dir=root, **{n.replace("-", "_"): p for n, p in paths.items()})
