"""Leave nothing behind: the pods' processes, mounts, sandbox namespaces and cgroups.

containerd and the kubelet clean up after pods they are told to delete, but `down`
must also work after a crash or a SIGKILL, so it does not rely on them: every process
in a node's cgroup subtree is killed, every mount under the node's directories is
unmounted (deepest first), every pod network namespace holding one of the cluster's
pod addresses is deleted, and the cgroup subtree is removed bottom-up.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import signal
import subprocess
import time
from pathlib import Path

__all__ = [
    "cgroup_dirs",
    "kill_cgroup_tree",
    "mounts_under",
    "pod_netns_in",
    "processes_with_arg",
    "remove_cgroup_tree",
    "unmount_under",
]

CGROUP_ROOT = Path("/sys/fs/cgroup")


def _unescape(path: str) -> str:
    # /proc/self/mountinfo escapes space, tab, newline and backslash as \ooo.
    return path.encode().decode("unicode_escape") if "\\" in path else path


def mounts_under(*roots: Path, mountinfo: str | None = None) -> list[str]:
    """Mount points at or under any of ``roots``, deepest first."""
    text = mountinfo if mountinfo is not None else Path("/proc/self/mountinfo").read_text()
    prefixes = [str(r).rstrip("/") for r in roots]
    found = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 5:
            continue
        point = _unescape(fields[4])
        if any(point == p or point.startswith(p + "/") for p in prefixes):
            found.append(point)
    return sorted(set(found), key=lambda p: (-p.count("/"), p))


def unmount_under(*roots: Path) -> list[str]:
    """Unmount (lazily if busy) everything under ``roots``; return what was unmounted."""
    done = []
    for _ in range(5):   # a mount can hide another at the same point
        points = mounts_under(*roots)
        if not points:
            break
        for point in points:
            if subprocess.run(["umount", point], capture_output=True).returncode != 0:
                subprocess.run(["umount", "-l", point], capture_output=True)
            done.append(point)
    return done


def cgroup_dirs(rel: str, root: Path = CGROUP_ROOT) -> list[Path]:
    """The directory of cgroup ``rel`` in every mounted hierarchy that has it."""
    if not root.is_dir():
        return []
    out = []
    for hierarchy in sorted(root.iterdir()):
        d = hierarchy / rel.lstrip("/")
        if d.is_dir():
            out.append(d)
    return out


def _procs(d: Path) -> set[int]:
    pids: set[int] = set()
    for dirpath, _dirs, files in os.walk(d):
        if "cgroup.procs" in files:
            with contextlib.suppress(OSError, ValueError):
                pids.update(int(x) for x in (Path(dirpath) / "cgroup.procs").read_text().split())
    return pids


def kill_cgroup_tree(rel: str, timeout_s: float = 20.0) -> int:
    """SIGKILL every process in cgroup ``rel`` and below, until none is left; returns how
    many were killed. (No cgroup.kill on v1: a fork between listing and killing is caught
    by the next round.)"""
    killed: set[int] = set()
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        pids = set().union(*(_procs(d) for d in cgroup_dirs(rel))) if cgroup_dirs(rel) else set()
        if not pids:
            break
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        killed |= pids
        time.sleep(0.05)
    return len(killed)


def remove_cgroup_tree(rel: str) -> int:
    """rmdir the cgroup subtree ``rel`` (bottom-up) in every hierarchy; returns the number
    of directories removed. Directories whose processes are still exiting are retried."""
    removed = 0
    for _ in range(50):
        left = False
        for top in cgroup_dirs(rel):
            for dirpath, _dirs, _files in sorted(os.walk(top), key=lambda t: -t[0].count("/")):
                try:
                    os.rmdir(dirpath)
                    removed += 1
                except FileNotFoundError:
                    pass
                except OSError:
                    left = True
        if not left:
            break
        time.sleep(0.1)
    return removed


def pod_netns_in(cidr: str) -> list[str]:
    """Names of /run/netns entries (containerd's ``cni-*``) whose interfaces hold an
    address in ``cidr``: the pod sandboxes of this cluster."""
    net = ipaddress.ip_network(cidr)
    found = []
    root = Path("/run/netns")
    for entry in sorted(root.glob("cni-*")) if root.is_dir() else []:
        proc = subprocess.run(["ip", "-n", entry.name, "-j", "addr"], capture_output=True,
                              text=True, timeout=10)
        if proc.returncode != 0:
            # A namespace file whose namespace is gone (a crashed containerd): ours only if
            # nothing can tell; leave it to its owner.
            continue
        with contextlib.suppress(ValueError):
            for link in json.loads(proc.stdout or "[]"):
                for a in link.get("addr_info", []):
                    if a.get("family") == "inet" and ipaddress.ip_address(a["local"]) in net:
                        found.append(entry.name)
    return sorted(set(found))


def processes_with_arg(arg: str) -> list[int]:
    """Pids whose command line contains ``arg`` as one argument (containerd's shims name
    their containerd's socket with ``-address``)."""
    out = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            argv = (d / "cmdline").read_bytes().split(b"\0")
            if arg.encode() in argv:
                out.append(int(d.name))
    return out
