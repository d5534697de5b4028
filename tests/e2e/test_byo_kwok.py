"""Bring your own scheduler to the kwok backend: `harness run --backend kwok` measures a
scheduler the user wrote (a tiny binder, named by its schedulerName, started through
--external-command) and an extender the user serves at a URL (--external-extender), like
the built-in policies. docs/schedulers.md "Bring your own scheduler" shows this run."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path

import pytest

from results.store import ResultsStore

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

# Binds every pending pod carrying its schedulerName to the first node, through the
# Binding API: the smallest custom scheduler there is.
MY_SCHEDULER = '''\
"""Bind every pending pod with schedulerName argv[1] to the first node."""
import os, sys, time
from kubernetes import client, config

config.load_kube_config(os.environ["KUBECONFIG"])
core = client.CoreV1Api()
mine = sys.argv[1]
while True:
    first = min(n.metadata.name for n in core.list_node().items)
    pending = core.list_pod_for_all_namespaces(
        field_selector=f"spec.schedulerName={mine},spec.nodeName=").items
    for pod in pending:
        binding = client.V1Binding(
            metadata=client.V1ObjectMeta(name=pod.metadata.name),
            target=client.V1ObjectReference(api_version="v1", kind="Node", name=first))
        try:
            core.create_namespaced_binding(pod.metadata.namespace, binding,
                                           _preload_content=False)
        except client.ApiException as exc:
            if exc.status not in (404, 409):  # deleted or bound meanwhile
                raise
    time.sleep(0.1)
'''

# A prioritize extender that likes node-1: score 10 (the most an extender gives) there,
# 0 elsewhere.
MY_EXTENDER = '''\
"""A scheduler extender on 127.0.0.1:argv[1]: /prioritize scores node-1 10, others 0."""
import json, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Extender(BaseHTTPRequestHandler):
    def do_POST(self):
        args = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        nodes = args.get("NodeNames") or [
            n["metadata"]["name"] for n in (args.get("Nodes") or {}).get("items", [])]
        body = json.dumps([{"Host": n, "Score": 10 if n == "node-1" else 0}
                           for n in nodes]).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Extender).serve_forever()
'''


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _wait_listening(port: int, proc: subprocess.Popen[bytes], timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the extender exited"
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"nothing listens on 127.0.0.1:{port}")


def test_your_scheduler_and_your_extender_are_measured_on_kwok(
    k8s_binaries: object, tmp_path: Path,
) -> None:
    (tmp_path / "my_scheduler.py").write_text(MY_SCHEDULER)
    (tmp_path / "my_extender.py").write_text(MY_EXTENDER)
    port = _free_port()
    extender = subprocess.Popen([sys.executable, str(tmp_path / "my_extender.py"), str(port)])
    try:
        _wait_listening(port, extender)
        run = subprocess.run(
            [sys.executable, "-c", "from harness.cli import main; main()", "run",
             "--backend", "kwok",
             "--external-scheduler", "mine=my-scheduler",
             "--external-command",
             f"mine={sys.executable} {tmp_path / 'my_scheduler.py'} {{scheduler_name}}",
             "--external-extender", f"near=http://127.0.0.1:{port}/,weight=5",
             "--nodes", "3", "--items", "flour,bread", "--deployments", "10",
             "--sizes", "16,4096", "--protocol", "http", "--repetitions", "1",
             "--layout-budget", "3", "--warmup-orders", "1", "--warmup-seconds", "2",
             "--out", str(tmp_path / "run")],
            env={**os.environ, "SETTLERS_KWOK_WORKDIR": str(tmp_path / "kwok"),
                 "COLUMNS": "100"},
            capture_output=True, text=True, timeout=900, check=False,
        )
    finally:
        extender.terminate()
        extender.wait(10)
    out = run.stdout + run.stderr
    assert run.returncode == 0, out
    (tmp_path / "output.txt").write_text(out)  # docs/schedulers.md shows a run like this

    store = ResultsStore.open(tmp_path / "run")
    placements = store.read_table("placements")
    assert list(placements["scheduler"].unique()) == ["kube_default", "mine", "near"]
    assert (placements.groupby("scheduler").size() == 10).all()
    placed = {s: [json.loads(a) for a in g["assignments"]]
              for s, g in placements.groupby("scheduler")}
    # mine binds everything to the first node; near's extender pulls pods to node-1.
    for assignments in placed["mine"]:
        assert set(assignments.values()) == {"node-1"}, assignments
    near = Counter(node for assignments in placed["near"] for node in assignments.values())
    assert near.most_common(1)[0][0] == "node-1", near
    samples = store.samples()
    assert samples["ok"].all(), samples.loc[~samples["ok"], "error"].tolist()
    manifest = store.manifest()
    assert manifest.scheduler_traffic["mine"].startswith("your scheduler my-scheduler")
    assert manifest.scheduler_traffic["near"].startswith(
        f"your extender at http://127.0.0.1:{port}/")
    assert "mine" in out and "near" in out  # the report's rows
    print(textwrap.indent(out, "  "))
