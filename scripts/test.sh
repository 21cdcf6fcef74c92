#!/usr/bin/env bash
# Runs the whole test suite: unit tests (with the race detector) and the integration suite
# against real MariaDB containers. Installs what a fresh machine lacks first (scripts/setup.sh).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

SHARDPROXY_MARIADB_IMAGE=$(bash scripts/setup.sh | tail -n 1)
export SHARDPROXY_MARIADB_IMAGE
export TESTCONTAINERS_RYUK_DISABLED=true
# testcontainers takes this machine for a container (/.dockerenv) and would dial published
# ports on the default gateway; they are on loopback.
export TESTCONTAINERS_HOST_OVERRIDE=127.0.0.1

cleanup() {
  # The testcontainers reaper cannot run here: remove what the tests left behind.
  ids=$(docker ps -aq --filter label=shardproxy.test=1 2>/dev/null || true)
  [ -z "$ids" ] || docker rm -f $ids >/dev/null 2>&1 || true
}
trap cleanup EXIT

go vet ./...
# staticcheck at a pinned version, fetched and built by `go run` (no tools entry in go.mod).
# Cold (fresh module and build caches) about 2 min 20 s on 2 cores; warm about 18 s.
go run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...
unit=$(go list ./... | grep -v /integration)
go test -race -count=1 -timeout 20m $unit
# Fuzzing: each target for a bounded time (SHARDPROXY_FUZZTIME, default 12s; one -fuzz per
# run, as go test requires). A crasher fails the run and is written to
# <package>/testdata/fuzz/<target>/, where it stays as a regression case once fixed.
# Nine targets: 108 s of fuzzing, plus the coverage-instrumented builds (cold: 1 min 40 s
# of CPU, mostly the TiDB parser; cached afterwards).
fuzztime=${SHARDPROXY_FUZZTIME:-12s}
for target in wire:FuzzReadPacket wire:FuzzParseOK wire:FuzzRoundTrip wire:FuzzCheckRows merge:FuzzMerge router:FuzzPlan router:FuzzPlanGrammar \
    protocol:FuzzHandshake router:FuzzCommands; do
  go test -run '^$' -fuzz "^${target#*:}\$" -fuzztime "$fuzztime" "./${target%%:*}"
done
go test -count=1 -timeout 40m ./integration/
