# Send one order; fail unless it was answered (order-app sweep only fails outright
# when a target is unreachable, so check the recorded row too). No `exec`: the
# prelude's exit trap must still stop a sidecar.
order-app sweep "$@" --no-progress --out "${TMPDIR:-/tmp}/order.csv" || exit 1
python3 - <<'PY'
import csv, os, sys
rows = list(csv.DictReader(open(os.path.join(os.environ.get("TMPDIR", "/tmp"), "order.csv"))))
bad = [r for r in rows if r.get("ok") != "True"]
for r in rows:
    print(f"order {r['item']} x{r['size']} B: ok={r['ok']} {r['latency_ms']} ms {r['error']}")
sys.exit(1 if not rows or bad else 0)
PY
