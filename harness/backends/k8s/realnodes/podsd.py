"""Pod discovery for Debian's Prometheus, which is built without ``kubernetes_sd``.

A small host process beside Prometheus: it lists the cluster's pods every
``--interval`` seconds and writes the annotated ones (``prometheus.io/scrape: "true"``,
``prometheus.io/port``, ``prometheus.io/path``) as a ``file_sd`` target file, which
Prometheus re-reads when it changes. Each target carries ``namespace``, ``pod`` and
``node`` labels, as the relabelling of a ``kubernetes_sd`` job would give them.

    python -m harness.backends.k8s.realnodes.podsd --kubeconfig K --out targets.json
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import time
from pathlib import Path
from typing import Any

__all__ = ["main", "targets"]


def targets(pods: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """file_sd entries for the running pods that ask to be scraped, sorted."""
    out = []
    for pod in pods:
        meta, spec, status = pod["metadata"], pod.get("spec", {}), pod.get("status", {})
        ann = meta.get("annotations") or {}
        ip = status.get("podIP")
        if (ann.get("prometheus.io/scrape") != "true" or not ip
                or status.get("phase") != "Running"):
            continue
        port = ann.get("prometheus.io/port")
        if not port or not port.isdigit():
            continue
        out.append({"targets": [f"{ip}:{port}"], "labels": {
            "__metrics_path__": ann.get("prometheus.io/path") or "/metrics",
            "namespace": meta["namespace"], "pod": meta["name"],
            "node": spec.get("nodeName") or ""}})
    return sorted(out, key=lambda t: (t["labels"]["namespace"], t["labels"]["pod"]))


def _write(path: Path, doc: list[dict[str, Any]]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(doc, indent=1))
    os.replace(tmp, path)   # Prometheus never reads a half-written file


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--interval", type=float, default=2.0)
    args = parser.parse_args(argv)
    from kubernetes import client, config

    api: Any = client.CoreV1Api(config.new_client_from_config(  # type: ignore[no-untyped-call]
        config_file=args.kubeconfig))
    stop = False

    def on_term(_sig: int, _frame: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_term)
    last: list[dict[str, Any]] | None = None
    if not args.out.exists():
        _write(args.out, [])
    while not stop:
        try:
            pods = json.loads(api.list_pod_for_all_namespaces(
                _preload_content=False, _request_timeout=10).data)["items"]
        except Exception as exc:  # the API may blink: keep the last file
            print(f"podsd: listing pods failed: {exc}", flush=True)
        else:
            doc = targets(pods)
            if doc != last:
                _write(args.out, doc)
                last = doc
        time.sleep(args.interval)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
