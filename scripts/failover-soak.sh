#!/usr/bin/env bash
# Failover soak (not in CI): runs each fault of integration's TestFailover N times (default
# 10) and prints, per fault, the longest gap between acknowledged writes: p50 and max, and
# how many runs failed. Each run starts its own primary and two replicas in containers on a
# Docker network of its own, and removes them.
#
#   bash scripts/failover-soak.sh [N] [FAULT...]     FAULT: Kill Pause Disconnect (default all)
set -euo pipefail

n="${1:-10}"
shift || true
faults=("$@")
[ ${#faults[@]} -gt 0 ] || faults=(Kill Pause Disconnect)

cd "$(dirname "${BASH_SOURCE[0]}")/.."
export TESTCONTAINERS_RYUK_DISABLED=true TESTCONTAINERS_HOST_OVERRIDE="${TESTCONTAINERS_HOST_OVERRIDE:-127.0.0.1}"
export SHARDPROXY_MARIADB_IMAGE="${SHARDPROXY_MARIADB_IMAGE:-$(bash scripts/mariadb-image.sh)}"

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for f in "${faults[@]}"; do
  echo "== $f x $n" >&2
  go test -count="$n" -timeout 0 -v -run "TestFailover/$f\$" ./integration >"$out/$f.log" 2>&1 || true
  gaps=$(grep -o 'FAILOVER fault=[a-z]* gap=[0-9.]*s' "$out/$f.log" | sed 's/.*gap=//; s/s$//' | sort -n)
  runs=$(printf '%s\n' "$gaps" | grep -c . || true)
  fails=$(grep -c -- "--- FAIL: TestFailover/$f" "$out/$f.log" || true)
  if [ "$runs" -eq 0 ]; then
    echo "$f: no run finished (see below)"; tail -40 "$out/$f.log"; continue
  fi
  p50=$(printf '%s\n' "$gaps" | awk -v n="$runs" 'NR == int((n + 1) / 2) {print}')
  max=$(printf '%s\n' "$gaps" | tail -1)
  printf '%-10s runs=%d failed=%d gap p50=%ss max=%ss all=[%s]\n' "$f" "$runs" "$fails" "$p50" "$max" "$(echo $gaps)"
done
