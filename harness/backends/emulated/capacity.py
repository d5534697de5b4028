"""Node capacity, enforced: one kernel CPU group per emulated node.

Without this an emulated node is a name over the machine's shared cores, and
packing seven pods onto one costs nothing. Here each node gets a cgroup under
``<cpu controller>/settlers-testbed/<cluster-id>/<node>`` whose CFS quota is the
node's CPU capacity at a stated *scale* (machine millicores per Kubernetes
millicore), and every pod's processes live in their node's group. A relayout moves
the processes (a write to ``cgroup.procs``: the whole thread group, no restart).

The capacity stays in Kubernetes units everywhere else (the models' allocatable, the
pods' requests); only the quota is scaled, so the nodes fit into this machine's
cores with room left for the mesh and the order app (:func:`fit_scale`).

cgroup v1 (``cpu/cpu.cfs_quota_us``) and v2 (``cpu.max``) both work. Where the
controller cannot be used (no cgroup file system, no cpu controller, not root, a
write refused) nothing is enforced, the cluster runs as before, and
:attr:`NodeGroups.status` says why. Groups of clusters whose owner died (a
SIGKILLed supervisor) are removed by the next cluster that starts
(:func:`clean_stale`). The root is a parameter, so tests use a fake directory.
"""

from __future__ import annotations

import contextlib
import logging
import os
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from harness.backends.pids import pid_alive

__all__ = [
    "CGROUP_ROOT",
    "PARENT",
    "RESERVE_M",
    "CapacityStatus",
    "NodeGroups",
    "clean_stale",
    "detect",
    "fit_scale",
    "process_cpu_seconds",
]

log = logging.getLogger(__name__)

CGROUP_ROOT = Path("/sys/fs/cgroup")
# Every group this module makes lives under this one, so leftovers are easy to find.
PARENT = "settlers-testbed"
# Machine millicores kept free of the nodes for the mesh relay and the order app.
RESERVE_M = 500
PERIOD_US = 100_000
# A CFS quota below 1 ms is refused by the kernel.
_MIN_QUOTA_US = 1000
# The testbed's groups weigh this many times a lone process (v1 cpu.shares 1024, v2
# cpu.weight 100) when the machine is busy. A group competes with every process
# outside it as *one* entity, so without this a machine running a dozen other tasks
# would give all nodes together a dozenth of the cores, far below their quotas. The
# quotas still cap the nodes; the weight only makes other work yield up to them.
PARENT_WEIGHT = 32

Version = Literal["v1", "v2"]


@dataclass(frozen=True)
class Controller:
    """Where the cpu controller is: the directory groups are made in, and its kind."""

    version: Version
    base: Path


def detect(root: Path = CGROUP_ROOT) -> Controller | str:
    """The cpu controller under ``root``, or why there is none (a sentence)."""
    v1 = next((root / d for d in ("cpu", "cpu,cpuacct")
               if (root / d / "cpu.cfs_quota_us").exists()), None)
    if v1 is not None:
        return Controller("v1", v1)
    controllers = root / "cgroup.controllers"
    if controllers.exists():
        try:
            have = controllers.read_text().split()
        except OSError as exc:
            return f"cannot read {controllers}: {exc.strerror}"
        if "cpu" in have:
            return Controller("v2", root)
        return f"cgroup v2 at {root} has no cpu controller (controllers: {' '.join(have)})"
    if not root.exists():
        return f"no cgroup file system at {root}"
    return f"no cpu controller under {root} (neither v1 cpu/ nor v2 cgroup.controllers)"


def fit_scale(node_cpu_m: Mapping[str, int], cores: int | None = None,
              reserve_m: int = RESERVE_M) -> float:
    """Machine millicores per Kubernetes millicore so that every node's capacity fits
    into this machine's cores minus ``reserve_m``; never above 1 (a node is never
    given more than its capacity)."""
    total = sum(node_cpu_m.values())
    cores = cores or os.cpu_count() or 1
    room = max(cores * 1000 - reserve_m, 100)
    return 1.0 if total <= 0 else min(1.0, room / total)


@dataclass
class CapacityStatus:
    """What is enforced: per node its capacity (Kubernetes millicores) and the quota
    it got (machine millicores), or why nothing is."""

    enforced: bool
    scale: float
    capacity_m: dict[str, int]
    quota_m: dict[str, float] = field(default_factory=dict)
    version: Version | None = None
    reason: str = ""
    cluster_id: str = ""
    path: str = ""   # the cluster's group directory, while enforced

    def line(self) -> str:
        """One sentence for logs and reports."""
        caps = sorted(set(self.capacity_m.values()))
        cap = "/".join(f"{c}m" for c in caps)
        if not self.enforced:
            return (f"node capacity {cap} per node is NOT enforced on the pods' processes: "
                    f"{self.reason}; the pods share the machine's cores as without capacity")
        quotas = sorted(set(round(q) for q in self.quota_m.values()))
        return (f"node capacity {cap} per node enforced with cgroup {self.version} CPU quota "
                f"at scale {self.scale:.4g} ({'/'.join(f'{q}m' for q in quotas)} of this "
                "machine's CPU per node)")

    def to_json(self) -> dict[str, Any]:
        return {"enforced": self.enforced, "scale": self.scale, "version": self.version,
                "reason": self.reason, "capacity_m": dict(self.capacity_m),
                "quota_m": dict(self.quota_m), "cluster_id": self.cluster_id,
                "path": self.path,
                "summary": self.line()}


class CapacityError(RuntimeError):
    """A cgroup write was refused."""


class NodeGroups:
    """The CPU groups of one cluster's nodes; make with :meth:`create` (never raises)."""

    def __init__(self, status: CapacityStatus, controller: Controller | None,
                 rmdir: Callable[[Path], None]) -> None:
        self.status = status
        self._controller = controller
        self._rmdir = rmdir
        self._where: dict[int, str] = {}   # pid -> node, as last placed

    @classmethod
    def create(cls, node_cpu_m: Mapping[str, int], *, scale: float | None = None,
               root: Path = CGROUP_ROOT, cluster_id: str | None = None,
               rmdir: Callable[[Path], None] = os.rmdir) -> NodeGroups:
        """One group per node with its quota; on any failure, none (status says why)."""
        scale = fit_scale(node_cpu_m) if scale is None else scale
        status = CapacityStatus(False, scale, dict(node_cpu_m),
                                cluster_id=cluster_id or f"{os.getpid()}-{uuid.uuid4().hex[:8]}")
        found = detect(root)
        if isinstance(found, str):
            status.reason = found
            return cls(status, None, rmdir)
        status.version = found.version
        self = cls(status, found, rmdir)
        with contextlib.suppress(OSError):
            clean_stale(root, rmdir=rmdir)
        try:
            self._make(node_cpu_m, scale)
        except (OSError, CapacityError) as exc:
            self._give_up(_why(exc))
        return self

    # -- groups ---------------------------------------------------------------------

    @property
    def cluster_dir(self) -> Path:
        assert self._controller is not None
        return self._controller.base / PARENT / self.status.cluster_id

    def group(self, node: str) -> Path:
        return self.cluster_dir / node

    def _make(self, node_cpu_m: Mapping[str, int], scale: float) -> None:
        assert self._controller is not None
        v2 = self._controller.version == "v2"
        parent = self._controller.base / PARENT
        for d in (parent, self.cluster_dir):
            d.mkdir(exist_ok=True)
        if v2:
            # v2 hands a controller down only where the parent enables it.
            for d in (self._controller.base, parent, self.cluster_dir):
                _enable_cpu(d)
        for d in (parent, self.cluster_dir):
            _write_weight(d, v2, PARENT_WEIGHT * 1000)
        for node, cap in node_cpu_m.items():
            quota_us = max(_MIN_QUOTA_US, round(cap * scale * PERIOD_US / 1000))
            g = self.group(node)
            g.mkdir(exist_ok=True)
            if v2:
                _write(g / "cpu.max", f"{quota_us} {PERIOD_US}")
            else:
                _write(g / "cpu.cfs_period_us", str(PERIOD_US))
                _write(g / "cpu.cfs_quota_us", str(quota_us))
            # Among the nodes, weights in proportion to capacity, as the kubelet sets them.
            _write_weight(g, v2, quota_us * 1000 / PERIOD_US)
            self.status.quota_m[node] = quota_us * 1000 / PERIOD_US
        self.status.enforced = True
        self.status.reason = ""
        self.status.path = str(self.cluster_dir)

    def place(self, pids: Mapping[int, str]) -> None:
        """Move each process (and its children) into its node's group; processes
        already there are left alone. On a refused write nothing stays enforced."""
        if not self.status.enforced:
            return
        try:
            for pid, node in pids.items():
                if self._where.get(pid) == node:
                    continue
                if node not in self.status.quota_m:
                    raise CapacityError(f"no group for node {node!r}")
                for p in (pid, *_descendants(pid)):
                    _move(self.group(node), p)
                self._where[pid] = node
        except (OSError, CapacityError) as exc:
            self._give_up(_why(exc))

    def usage(self) -> dict[str, dict[str, float]]:
        """Per node, what the kernel counted: CPU seconds used (v2; v1 keeps usage in
        cpuacct, see :func:`process_cpu_seconds`) and periods throttled."""
        out: dict[str, dict[str, float]] = {}
        if self._controller is None or not self.status.enforced:
            return out
        for node in self.status.quota_m:
            out[node] = read_stat(self.group(node), self._controller.version)
        return out

    def remove(self) -> None:
        """Remove this cluster's groups (processes still in them go back to the root)."""
        if self._controller is None:
            return
        _remove_cluster(self._controller.base, self.cluster_dir, self._rmdir)
        self._where.clear()

    def _give_up(self, reason: str) -> None:
        log.warning("node capacity not enforced: %s", reason)
        self.remove()
        self.status.enforced = False
        self.status.quota_m = {}
        self.status.reason = reason
        self.status.path = ""


def read_stat(group: Path, version: Version) -> dict[str, float]:
    """``cpu.stat`` of a group: usage_s (v2 only), periods, throttled periods."""
    stat: dict[str, int] = {}
    with contextlib.suppress(OSError, ValueError):
        for line in (group / "cpu.stat").read_text().splitlines():
            key, _, value = line.partition(" ")
            stat[key] = int(value)
    out = {"periods": float(stat.get("nr_periods", 0)),
           "throttled": float(stat.get("nr_throttled", 0))}
    if version == "v2" and "usage_usec" in stat:
        out["usage_s"] = stat["usage_usec"] / 1e6
    return out


def process_cpu_seconds(pids: Iterable[int], proc: Path = Path("/proc")) -> float:
    """User + system CPU seconds of the processes (gone ones count 0)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            fields = (proc / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        total += int(fields[11]) + int(fields[12])   # utime, stime (fields 14, 15)
    return total / tick


def clean_stale(root: Path = CGROUP_ROOT, *,
                rmdir: Callable[[Path], None] = os.rmdir) -> list[str]:
    """Remove the groups of clusters whose owning process is gone; their ids."""
    found = detect(root)
    if isinstance(found, str):
        return []
    parent = found.base / PARENT
    removed = []
    for d in sorted(parent.iterdir()) if parent.is_dir() else []:
        owner = d.name.split("-", 1)[0]
        if d.is_dir() and owner.isdigit() and not pid_alive(int(owner)):
            _remove_cluster(found.base, d, rmdir)
            removed.append(d.name)
    return removed


# -- file-level helpers -----------------------------------------------------------------

def _remove_cluster(base: Path, cluster_dir: Path, rmdir: Callable[[Path], None]) -> None:
    if not cluster_dir.is_dir():
        return
    for g in [p for p in cluster_dir.iterdir() if p.is_dir()]:
        for pid in _procs(g):
            with contextlib.suppress(OSError):
                _write(base / "cgroup.procs", str(pid))
        with contextlib.suppress(OSError):
            rmdir(g)
    with contextlib.suppress(OSError):
        rmdir(cluster_dir)


def _procs(group: Path) -> list[int]:
    try:
        return [int(x) for x in (group / "cgroup.procs").read_text().split()]
    except (OSError, ValueError):
        return []


def _enable_cpu(d: Path) -> None:
    control = d / "cgroup.subtree_control"
    with contextlib.suppress(OSError):
        if "cpu" in control.read_text().split():
            return
    _write(control, "+cpu")


def _write_weight(group: Path, v2: bool, millicores: float) -> None:
    """The group's weight for ``millicores``: 1024 shares (v1) or weight 100 (v2) a core."""
    if v2:
        _write(group / "cpu.weight", str(min(10_000, max(1, round(millicores / 10)))))
    else:
        _write(group / "cpu.shares", str(min(262_144, max(2, round(millicores * 1.024)))))


def _move(group: Path, pid: int) -> None:
    try:
        _write(group / "cgroup.procs", str(pid))
    except ProcessLookupError:
        pass   # exited meanwhile: nothing to cap (the cluster notices crashes itself)
    except OSError as exc:
        if exc.errno == 3:   # ESRCH
            return
        raise


def _write(path: Path, text: str) -> None:
    # One write per value, as the cgroup file system wants it (truncation is a no-op
    # there); in the fake tree of the tests the control files are plain files.
    with open(path, "w") as f:
        f.write(text)


def _descendants(pid: int, proc: Path = Path("/proc")) -> list[int]:
    out: list[int] = []
    todo = [pid]
    while todo:
        p = todo.pop()
        try:
            tasks = list((proc / str(p) / "task").iterdir())
        except OSError:
            continue
        for t in tasks:
            with contextlib.suppress(OSError, ValueError):
                kids = [int(c) for c in (t / "children").read_text().split()]
                out += kids
                todo += kids
    return out



def _why(exc: BaseException) -> str:
    if isinstance(exc, PermissionError):
        return (f"no permission to write {exc.filename} (run as root, or delegate a cgroup "
                "to this user)")
    if isinstance(exc, OSError):
        where = f" {exc.filename}" if exc.filename else ""
        return f"cgroup write refused ({exc.strerror or exc}){where}"
    return str(exc)
