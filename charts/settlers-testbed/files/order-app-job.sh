# Run `order-app sweep "$@"`; print the raw table between marker lines so that the
# results survive in the pod log (the pod's filesystem does not outlive it).
order-app sweep "$@" --no-progress --out "${TMPDIR:-/tmp}/orders.csv"
rc=$?
echo "=== orders.csv begin ==="
cat "${TMPDIR:-/tmp}/orders.csv" 2>/dev/null
echo "=== orders.csv end (exit $rc) ==="
exit $rc
