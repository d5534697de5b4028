# Shared start of the order-app Job and the `helm test` Job (POSIX sh).
#
# 1. At exit, ask an Istio sidecar to quit (POST localhost:15020/quitquitquit): with a
#    classic sidecar the pod, hence the Job, would otherwise never complete. Without a
#    sidecar (or with a native one, which Kubernetes stops itself) the call fails at
#    once and is ignored.
# 2. Wait until every producer answers its health check ($SETTLERS_WAIT_TARGETS,
#    "host:port ..."; at most $SETTLERS_WAIT_SECONDS): the Job may start before the
#    producers are Ready (it runs right after `helm install`), and a sidecar's proxy
#    may not route the first connection yet; every failed check is retried.
quit_proxy() {
  python3 - <<'PY' || true
import urllib.request
try:
    urllib.request.urlopen(urllib.request.Request(
        "http://127.0.0.1:15020/quitquitquit", method="POST"), timeout=2).close()
    print("asked the Istio sidecar to quit")
except Exception:
    pass
PY
}
trap quit_proxy EXIT
python3 - <<'PY' || exit 1
import os, sys, time, urllib.request

targets = os.environ.get("SETTLERS_WAIT_TARGETS", "").split()
grpc_wire = os.environ.get("SETTLERS_WAIT_PROTOCOL") == "grpc"
limit = float(os.environ.get("SETTLERS_WAIT_SECONDS", "300"))


def ready(address):
    try:
        if grpc_wire:
            import grpc
            with grpc.insecure_channel(address) as channel:
                # grpc.health.v1.Health/Check, service "": b"\x08\x01" = SERVING
                check = channel.unary_unary("/grpc.health.v1.Health/Check")
                return check(b"", timeout=2) == b"\x08\x01"
        with urllib.request.urlopen(f"http://{address}/healthz", timeout=2) as reply:
            return reply.status == 200
    except Exception:
        return False


deadline = time.monotonic() + limit
waiting = list(targets)
while True:
    waiting = [t for t in waiting if not ready(t)]
    if not waiting:
        break
    if time.monotonic() > deadline:
        sys.exit(f"producers not ready after {limit:g} s: {' '.join(waiting)}")
    time.sleep(1)
print(f"{len(targets)} producer(s) ready")
PY
