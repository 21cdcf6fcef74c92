#!/usr/bin/env bash
# Benchmark harness of shardproxy: sysbench against MariaDB directly and through the proxy,
# in the same run, on the same data. See bench/README.md.
#
#   bash bench/run.sh            # defaults: 4 tables x 100000 rows, 16 threads, 20 s per run
#   BENCH_TIME=10 BENCH_PROFILE=1 bash bench/run.sh
#   BENCH_BASELINE=5b475ed bash bench/run.sh   # also the proxy built from that commit, same run
#
# The result table goes to stdout and to bench/results/<timestamp>.txt; progress goes to stderr.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
repo=$(pwd)

# ---------------------------------------------------------------------------------------------
# Knobs
# ---------------------------------------------------------------------------------------------
BENCH_TABLES=${BENCH_TABLES:-4}
BENCH_TABLE_SIZE=${BENCH_TABLE_SIZE:-100000}
BENCH_TIME=${BENCH_TIME:-20}
BENCH_THREADS=${BENCH_THREADS:-16}
BENCH_WARMUP=${BENCH_WARMUP:-5}
BENCH_PS_MODE=${BENCH_PS_MODE:-auto}
BENCH_PROFILE=${BENCH_PROFILE:-0}
BENCH_SYSCALLS=${BENCH_SYSCALLS:-0}
BENCH_WORKLOADS=${BENCH_WORKLOADS:-oltp_point_select oltp_read_only}
BENCH_SCENARIOS=${BENCH_SCENARIOS:-single}
BENCH_PORT_BASE=${BENCH_PORT_BASE:-23306}
BENCH_BASELINE=${BENCH_BASELINE:-}

for v in BENCH_TABLES BENCH_TABLE_SIZE BENCH_TIME BENCH_THREADS BENCH_WARMUP BENCH_PORT_BASE; do
  [[ ${!v} =~ ^[0-9]+$ ]] || { echo "bench: $v must be a non-negative integer, got '${!v}'" >&2; exit 2; }
done
[ "$BENCH_TIME" -gt 0 ] && [ "$BENCH_THREADS" -gt 0 ] && [ "$BENCH_TABLES" -gt 0 ] ||
  { echo "bench: BENCH_TIME, BENCH_THREADS and BENCH_TABLES must be > 0" >&2; exit 2; }
case "$BENCH_PS_MODE" in auto | disable) ;; *)
  echo "bench: BENCH_PS_MODE must be auto or disable, got '$BENCH_PS_MODE'" >&2; exit 2 ;;
esac

ROOT_PW=rootpw
SB_USER=sbtest
SB_PW=sbtestpw
DB=sbtest

ts=$(date +%Y%m%d-%H%M%S)
results_dir="$repo/bench/results"
results_file="$results_dir/$ts.txt"

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { printf '[bench] ERROR: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------------------------------------
# Cleanup: the container, the proxy (by PID), a running profile fetch, the temp dir.
# ---------------------------------------------------------------------------------------------
tmp=$(mktemp -d /tmp/shardproxy-bench.XXXXXX)
container=""
proxy_pid=""
curl_pid=""
perf_pid=""
sb_pid=""

stop_proxy() {
  [ -n "$proxy_pid" ] || return 0
  local pid=$proxy_pid
  proxy_pid=""
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + 15))
    while kill -0 "$pid" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.2; done
    if kill -0 "$pid" 2>/dev/null; then
      log "proxy $pid did not stop within 15 s of SIGTERM; sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  wait "$pid" 2>/dev/null || true
}

cleanup() {
  local rc=$?
  set +e
  if [ -n "$sb_pid" ]; then kill "$sb_pid" 2>/dev/null; wait "$sb_pid" 2>/dev/null; fi
  if [ -n "$curl_pid" ]; then kill "$curl_pid" 2>/dev/null; wait "$curl_pid" 2>/dev/null; fi
  if [ -n "$perf_pid" ]; then kill -INT "$perf_pid" 2>/dev/null; wait "$perf_pid" 2>/dev/null; fi
  stop_proxy
  if [ -n "$container" ]; then
    docker rm -f "$container" >/dev/null 2>&1 || log "could not remove container $container"
  fi
  rm -rf "$tmp"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------------------------------------
# Tools
# ---------------------------------------------------------------------------------------------
need=()
command -v sysbench >/dev/null 2>&1 || need+=(sysbench)
command -v mariadb >/dev/null 2>&1 || need+=(mariadb-client)
if [ ${#need[@]} -gt 0 ]; then
  log "installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >&2 || die "apt-get update failed"
  apt-get install -y -q "${need[@]}" >&2 || die "apt-get install ${need[*]} failed"
fi
for c in docker go curl ss awk getconf; do
  command -v "$c" >/dev/null 2>&1 || die "'$c' is not on PATH"
done
if [ "$BENCH_SYSCALLS" = 1 ]; then
  command -v perf >/dev/null 2>&1 || die "BENCH_SYSCALLS=1 needs perf (apt-get install linux-perf)"
  perf stat -e raw_syscalls:sys_enter -p $$ -- true >/dev/null 2>&1 ||
    die "BENCH_SYSCALLS=1: perf cannot count the raw_syscalls:sys_enter tracepoint here"
fi
docker info >/dev/null 2>&1 || die "the Docker engine does not answer (try: bash scripts/setup.sh)"
CLK_TCK=$(getconf CLK_TCK)

# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------
used_ports=" "
# free_port VAR START: sets VAR to the first port >= START that nothing listens on and this
# run has not taken yet.
free_port() {
  local var=$1 p=$2 end=$(($2 + 500))
  while [ "$p" -lt "$end" ]; do
    if [[ $used_ports != *" $p "* ]] && [ -z "$(ss -Hltn "sport = :$p" 2>/dev/null)" ]; then
      used_ports+="$p "
      printf -v "$var" '%s' "$p"
      return 0
    fi
    p=$((p + 1))
  done
  die "no free TCP port in $2..$end"
}

# mdb PORT USER PASS [mariadb args...]: the mariadb client over TCP to 127.0.0.1.
mdb() {
  local port=$1 user=$2 pw=$3
  shift 3
  mariadb --protocol=tcp -h127.0.0.1 -P"$port" -u"$user" -p"$pw" --connect-timeout=3 "$@"
}

# cpu_ticks PID: utime+stime of a process in clock ticks (fields 14 and 15 of /proc/PID/stat;
# the comm field may hold spaces, so parse after its closing parenthesis).
cpu_ticks() {
  local line
  line=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  awk '{ sub(/^.*\) /, ""); print $12 + $13 }' <<<"$line"
}

# per_query T0 T1 QUERIES: CPU µs per query from two cpu_ticks readings ("?" when one is missing).
per_query() {
  if [ -z "$1" ] || [ -z "$2" ]; then echo "?"; return; fi
  awk -v t="$(($2 - $1))" -v hz="$CLK_TCK" -v q="$3" 'BEGIN { printf "%.1f", (q > 0 ? t / hz * 1e6 / q : 0) }'
}

# backend_status: selected global status counters of the MariaDB server, as "name value" lines.
backend_status() {
  mdb "$DB_PORT" root "$ROOT_PW" -N -B -e "SHOW GLOBAL STATUS WHERE Variable_name IN
    ('Connections','Questions','Com_stmt_prepare','Com_stmt_execute','Com_stmt_close','Com_change_db','Com_select','Com_set_option','Aborted_clients','Aborted_connects')" 2>/dev/null
}

# status_delta BEFORE AFTER: "name=after-before ..." for the counters of backend_status.
status_delta() {
  awk 'NR==FNR { b[$1] = $2; next } { printf "%s=%d ", $1, $2 - b[$1] }' "$1" "$2"
}

# sb WORKLOAD PORT USER PASS TIME OUT [extra sysbench args]: one sysbench run (prepare when TIME
# is "prepare"), output to OUT. Returns sysbench's exit code.
sb() {
  local workload=$1 port=$2 user=$3 pw=$4 time=$5 out=$6
  shift 6
  local cmd=run threads=$BENCH_THREADS
  if [ "$time" = prepare ]; then cmd=prepare; time=0; threads=$BENCH_TABLES; fi
  sysbench "$workload" \
    --db-driver=mysql --mysql-host=127.0.0.1 --mysql-port="$port" \
    --mysql-user="$user" --mysql-password="$pw" --mysql-db="$DB" \
    --tables="$BENCH_TABLES" --table-size="$BENCH_TABLE_SIZE" \
    --threads="$threads" --time="$time" --report-interval=0 \
    --db-ps-mode="$BENCH_PS_MODE" --percentile=95 \
    "$@" "$cmd" >"$out" 2>&1 &
  # In the background and waited for, so that a signal to this script interrupts the wait
  # and the cleanup trap runs (and stops sysbench) at once.
  sb_pid=$!
  local rc=0
  wait "$sb_pid" || rc=$?
  sb_pid=""
  return "$rc"
}

# sb_parse OUT: "queries qps p95 errors reconnects" from a sysbench run's output.
sb_parse() {
  awk '
    $1 == "queries:"    { q = $2; r = $3; gsub(/[()]/, "", r) }
    $1 == "95th"        { p = $3 }
    $1 == "ignored"     { e = $3 }
    $1 == "reconnects:" { c = $2 }
    END { if (q == "" || r == "" || p == "") exit 1; print q, r, p, (e == "" ? 0 : e), (c == "" ? 0 : c) }' "$1"
}

show_failure() {
  local what=$1 out=$2
  log "$what failed; last lines of its output:"
  tail -n 20 "$out" | sed 's/^/    /' >&2
  if [ -n "$proxy_pid" ] && [ -f "$tmp/proxy.log" ]; then
    log "last lines of the proxy log:"
    tail -n 20 "$tmp/proxy.log" | sed 's/^/    /' >&2
  fi
}

# ---------------------------------------------------------------------------------------------
# MariaDB
# ---------------------------------------------------------------------------------------------
start_mariadb() {
  local tag
  log "MariaDB image (built once per machine, minutes the first time)"
  tag=$(bash scripts/mariadb-image.sh 2>"$tmp/image.log" | tail -n 1) || {
    tail -n 30 "$tmp/image.log" | sed 's/^/    /' >&2
    die "scripts/mariadb-image.sh failed"
  }
  [ -n "$tag" ] || die "scripts/mariadb-image.sh printed no tag"
  free_port DB_PORT "$BENCH_PORT_BASE"
  local name="shardproxy-bench-$$"
  log "starting $tag as $name on 127.0.0.1:$DB_PORT (host network, tmpfs datadir)"
  docker run -d --rm --name "$name" --label shardproxy.bench=1 --network host \
    -e MARIADB_ROOT_PASSWORD="$ROOT_PW" -e MARIADB_DATABASE="$DB" -e MARIADB_PORT="$DB_PORT" \
    --tmpfs /var/lib/mysql "$tag" \
    --innodb-buffer-pool-size=512M --bind-address=127.0.0.1 >"$tmp/container.id" ||
    die "docker run failed"
  container=$(cat "$tmp/container.id")
  # Readiness over the container's socket first: with host networking a TCP login from
  # 127.0.0.1 matches root@'127.0.0.1', which mariadb-install-db creates with an EMPTY password;
  # images before 6243107 kept that account, so the password is set here too (harmless after).
  local deadline=$((SECONDS + 90))
  until docker exec "$container" mariadb -uroot -p"$ROOT_PW" -e 'select 1' >/dev/null 2>&1; do
    if [ "$(docker inspect -f '{{.State.Running}}' "$container" 2>/dev/null)" != true ]; then
      docker logs "$container" 2>&1 | tail -n 20 | sed 's/^/    /' >&2 || true
      die "the MariaDB container exited before accepting connections (port $DB_PORT taken?)"
    fi
    if [ $SECONDS -ge $deadline ]; then
      docker logs "$container" 2>&1 | tail -n 20 | sed 's/^/    /' >&2 || true
      die "MariaDB did not accept connections on 127.0.0.1:$DB_PORT within 90 s"
    fi
    sleep 0.5
  done
  docker exec "$container" mariadb -uroot -p"$ROOT_PW" -e "
    ALTER USER IF EXISTS 'root'@'127.0.0.1' IDENTIFIED BY '$ROOT_PW';
    ALTER USER IF EXISTS 'root'@'::1' IDENTIFIED BY '$ROOT_PW';" ||
    die "could not set the password of root@127.0.0.1 in the container"
  mdb "$DB_PORT" root "$ROOT_PW" -e 'select 1' >/dev/null ||
    die "MariaDB accepts socket logins but not root over TCP on 127.0.0.1:$DB_PORT"
  DB_VERSION=$(mdb "$DB_PORT" root "$ROOT_PW" -N -B -e 'select version()')
  # The entrypoint execs mariadbd, so the container's init process is the server.
  DB_PID=$(docker inspect -f '{{.State.Pid}}' "$container")
  log "MariaDB $DB_VERSION ready"
}

prepare_data() {
  log "sysbench prepare: $BENCH_TABLES tables x $BENCH_TABLE_SIZE rows (direct)"
  if ! sb oltp_read_only "$DB_PORT" root "$ROOT_PW" prepare "$tmp/prepare.out"; then
    show_failure "sysbench prepare" "$tmp/prepare.out"
    die "sysbench prepare failed"
  fi
}

# ---------------------------------------------------------------------------------------------
# Proxy
# ---------------------------------------------------------------------------------------------
build_proxy() {
  log "go build ./cmd/shardproxy"
  go build -o "$tmp/shardproxy" ./cmd/shardproxy || die "go build ./cmd/shardproxy failed"
  SB_HASH=$("$tmp/shardproxy" hash-password --plugin mysql_native_password "$SB_PW") ||
    die "shardproxy hash-password failed"
  PROXY_BIN=$tmp/shardproxy
  [ -n "$BENCH_BASELINE" ] || return 0
  # The baseline is built from the commit's tree (git archive: no worktree to clean up), with
  # the same Go and module cache.
  baseline_rev=$(git rev-parse --short "$BENCH_BASELINE^{commit}" 2>/dev/null) ||
    die "BENCH_BASELINE=$BENCH_BASELINE is not a commit of this repository"
  log "go build ./cmd/shardproxy at $baseline_rev (baseline)"
  mkdir -p "$tmp/baseline-src"
  git archive "$baseline_rev" | tar -x -C "$tmp/baseline-src" || die "git archive $baseline_rev failed"
  (cd "$tmp/baseline-src" && go build -o "$tmp/shardproxy-baseline" ./cmd/shardproxy) ||
    die "go build of the baseline $baseline_rev failed"
}

# each_build SCENARIO CONFIG: runs every workload against the proxy started from CONFIG, once
# per build: the baseline first (rows "SCENARIO@base"), then the working tree (rows
# "SCENARIO"). Each proxied run is paired with a direct run just before it, so each build's
# ratio is read against the server as it was at that moment.
each_build() {
  local scenario=$1 cfg=$2 w b label bin
  local builds=("$scenario=$tmp/shardproxy")
  [ -z "$BENCH_BASELINE" ] || builds=("$scenario@base=$tmp/shardproxy-baseline" "${builds[@]}")
  for b in "${builds[@]}"; do
    label=${b%%=*} bin=${b#*=}
    PROXY_BIN=$bin
    start_proxy "$cfg"
    for w in $BENCH_WORKLOADS; do bench_workload "$label" "$w"; done
    collect_proxy_log "$label"
    stop_proxy
  done
}

# start_proxy CONFIG: runs the proxy in the background (GOMAXPROCS unset) and waits until a
# client can log in through it. Sets proxy_pid.
start_proxy() {
  local cfg=$1
  "$PROXY_BIN" check-config "$cfg" >"$tmp/check-config.out" 2>&1 || {
    sed 's/^/    /' "$tmp/check-config.out" >&2
    die "shardproxy check-config rejected $cfg"
  }
  log "starting the proxy on 127.0.0.1:$PROXY_PORT (pprof on 127.0.0.1:$DEBUG_PORT)"
  env -u GOMAXPROCS "$PROXY_BIN" serve --config "$cfg" --debug-addr "127.0.0.1:$DEBUG_PORT" \
    >"$tmp/proxy.log" 2>&1 &
  proxy_pid=$!
  local deadline=$((SECONDS + 30))
  until mdb "$PROXY_PORT" "$SB_USER" "$SB_PW" "$DB" -e 'select 1' >/dev/null 2>&1; do
    if ! kill -0 "$proxy_pid" 2>/dev/null; then
      sed 's/^/    /' "$tmp/proxy.log" >&2
      proxy_pid=""
      die "the proxy exited before accepting logins"
    fi
    if [ $SECONDS -ge $deadline ]; then
      tail -n 20 "$tmp/proxy.log" | sed 's/^/    /' >&2
      die "the proxy did not accept a login on 127.0.0.1:$PROXY_PORT within 30 s"
    fi
    sleep 0.2
  done
  log "proxy ready (pid $proxy_pid)"
}

# ---------------------------------------------------------------------------------------------
# Measurement
# ---------------------------------------------------------------------------------------------
# With BENCH_SYSCALLS=1, perf counts the proxy's system calls during each proxied run.
SYSCALL_EVENTS=raw_syscalls:sys_enter,syscalls:sys_enter_read,syscalls:sys_enter_write,syscalls:sys_enter_epoll_pwait,syscalls:sys_enter_futex,syscalls:sys_enter_nanosleep,syscalls:sys_enter_sched_yield

rows=()        # table rows
details=()     # per-run notes
failures=0

# bench_workload SCENARIO WORKLOAD: warmup + measured run direct, then warmup + measured run via
# the proxy (which must be running); appends a table row.
bench_workload() {
  local scenario=$1 w=$2
  local base="$tmp/$scenario-$w"
  local d p
  local qd="-" rd="-" pd="-" ed="-" cd="-" qp="-" rp="-" pp="-" ep="-" cp="-" ratio="-" cpu="-"

  # direct
  if [ "$BENCH_WARMUP" -gt 0 ]; then
    log "$w direct: warmup ${BENCH_WARMUP}s"
    sb "$w" "$DB_PORT" root "$ROOT_PW" "$BENCH_WARMUP" "$base-direct-warmup.out" ||
      show_failure "$w direct warmup" "$base-direct-warmup.out"
  fi
  log "$w direct: ${BENCH_TIME}s, $BENCH_THREADS threads"
  backend_status >"$base-direct-st0" || true
  local m0 m1
  m0=$(cpu_ticks "$DB_PID") || m0=""
  if sb "$w" "$DB_PORT" root "$ROOT_PW" "$BENCH_TIME" "$base-direct.out" && d=$(sb_parse "$base-direct.out"); then
    m1=$(cpu_ticks "$DB_PID") || m1=""
    read -r qd rd pd ed cd <<<"$d"
    backend_status >"$base-direct-st1" || true
    details+=("$scenario/$w direct: backend $(status_delta "$base-direct-st0" "$base-direct-st1")")
    details+=("$scenario/$w direct: mariadbd CPU $(per_query "$m0" "$m1" "$qd") µs/q")
  else
    show_failure "$w direct run" "$base-direct.out"
    failures=$((failures + 1))
    qd=FAILED
  fi

  # via the proxy
  if [ "$BENCH_WARMUP" -gt 0 ]; then
    log "$w proxy: warmup ${BENCH_WARMUP}s"
    sb "$w" "$PROXY_PORT" "$SB_USER" "$SB_PW" "$BENCH_WARMUP" "$base-proxy-warmup.out" ||
      show_failure "$w proxy warmup" "$base-proxy-warmup.out"
  fi
  kill -0 "$proxy_pid" 2>/dev/null || die "the proxy (pid $proxy_pid) is gone; see $tmp/proxy.log"
  local profile=""
  if [ "$BENCH_PROFILE" = 1 ] && [ "$w" = oltp_point_select ]; then
    profile="$results_dir/$ts-$scenario-$w.pprof"
    [ "$BENCH_TIME" -ge 12 ] || log "note: BENCH_TIME=$BENCH_TIME < 12 s: the 10 s profile includes idle time"
    curl -sS --max-time 30 -o "$profile" \
      "http://127.0.0.1:$DEBUG_PORT/debug/pprof/profile?seconds=10" 2>"$tmp/curl.err" &
    curl_pid=$!
  fi
  log "$w proxy: ${BENCH_TIME}s, $BENCH_THREADS threads${profile:+ (with a 10 s CPU profile)}"
  backend_status >"$base-proxy-st0" || true
  local t0 t1
  if [ "$BENCH_SYSCALLS" = 1 ]; then
    perf stat -x, -o "$base-proxy.perf" -p "$proxy_pid" -e "$SYSCALL_EVENTS" >/dev/null 2>&1 &
    perf_pid=$!
  fi
  m0=$(cpu_ticks "$DB_PID") || m0=""
  t0=$(cpu_ticks "$proxy_pid") || die "cannot read /proc/$proxy_pid/stat"
  if sb "$w" "$PROXY_PORT" "$SB_USER" "$SB_PW" "$BENCH_TIME" "$base-proxy.out" && p=$(sb_parse "$base-proxy.out"); then
    t1=$(cpu_ticks "$proxy_pid") || die "the proxy (pid $proxy_pid) died during the run"
    m1=$(cpu_ticks "$DB_PID") || m1=""
    read -r qp rp pp ep cp <<<"$p"
    backend_status >"$base-proxy-st1" || true
    details+=("$scenario/$w proxy:  backend $(status_delta "$base-proxy-st0" "$base-proxy-st1")")
    cpu=$(per_query "$t0" "$t1" "$qp")
    details+=("$scenario/$w proxy:  proxy CPU $(awk -v t="$((t1 - t0))" -v hz="$CLK_TCK" 'BEGIN { printf "%.2f", t / hz }') s over $qp queries; mariadbd CPU $(per_query "$m0" "$m1" "$qp") µs/q")
  else
    show_failure "$w proxy run" "$base-proxy.out"
    kill -0 "$proxy_pid" 2>/dev/null || log "the proxy (pid $proxy_pid) is no longer running"
    failures=$((failures + 1))
    qp=FAILED
  fi
  if [ -n "$perf_pid" ]; then
    kill -INT "$perf_pid" 2>/dev/null || true
    wait "$perf_pid" 2>/dev/null || true
    perf_pid=""
    if [[ $qp =~ ^[0-9]+$ ]] && [ -s "$base-proxy.perf" ]; then
      # perf -x, lines: count,unit,event,...; events as "raw_syscalls:sys_enter" or "syscalls:sys_enter_write".
      details+=("$scenario/$w proxy:  proxy syscalls per query: $(awk -F, -v q="$qp" '
        $3 ~ /sys_enter/ && $1 ~ /^[0-9]+$/ {
          n = $3; sub(/^.*sys_enter_?/, "", n); if (n == "") n = "all"
          printf "%s=%.2f ", n, $1 / q }' "$base-proxy.perf")")
    fi
  fi
  if [ -n "$curl_pid" ]; then
    if wait "$curl_pid"; then
      log "CPU profile: $profile"
      PROFILES+=("$profile|$PROXY_BIN")
    else
      log "fetching the CPU profile failed: $(cat "$tmp/curl.err")"
    fi
    curl_pid=""
  fi
  [ "$qd" = FAILED ] && rd=FAILED
  [ "$qp" = FAILED ] && rp=FAILED
  if [[ $qd =~ ^[0-9]+$ && $qp =~ ^[0-9]+$ ]]; then
    ratio=$(awk -v a="$rp" -v b="$rd" 'BEGIN { printf "%.1f%%", (b > 0 ? 100 * a / b : 0) }')
  fi
  rows+=("$(printf '%-12s %-18s %11s %11s %7s %9s %9s %12s %7s %7s' \
    "$scenario" "$w" "$rd" "$rp" "$ratio" "$pd" "$pp" "$cpu" "$ed/$ep" "$cd/$cp")")
}

# ---------------------------------------------------------------------------------------------
# Scenarios: one function each, scenario_<name>, selected by BENCH_SCENARIOS. Each writes its
# proxy config, starts the proxy, runs bench_workload for every workload and stops the proxy.
# ---------------------------------------------------------------------------------------------
scenario_single() {
  local cfg="$tmp/single.yaml"
  cat >"$cfg" <<EOF
listen: 127.0.0.1:$PROXY_PORT
users:
  - name: $SB_USER
    password_hash: "$SB_HASH"
backends:
  - name: b0
    addr: 127.0.0.1:$DB_PORT
    user: root
    password: $ROOT_PW
    pool: {max_open: 64, max_idle: 64}
shards:
  - {name: s0, primary: b0, database: $DB}
databases:
  - {name: $DB, default_shard: s0}
EOF
  each_build single "$cfg"
}

# scenario_sharded: the same tables split over 4 shards (databases ${DB}_s0..3 on the same
# MariaDB), sharded by id mod 4; direct runs read the unsharded copy. Point selects go to one
# shard; ranges (BETWEEN on id), SUM, ORDER BY and DISTINCT are scatter-gathered.
scenario_sharded() {
  local cfg="$tmp/sharded.yaml" i t
  log "copying the prepared tables into 4 shards (id mod 4)"
  for i in 0 1 2 3; do
    mdb "$DB_PORT" root "$ROOT_PW" -e "DROP DATABASE IF EXISTS ${DB}_s$i; CREATE DATABASE ${DB}_s$i" ||
      die "creating shard database ${DB}_s$i failed"
    for t in $(seq 1 "$BENCH_TABLES"); do
      mdb "$DB_PORT" root "$ROOT_PW" -e "CREATE TABLE ${DB}_s$i.sbtest$t LIKE $DB.sbtest$t;
        INSERT INTO ${DB}_s$i.sbtest$t SELECT * FROM $DB.sbtest$t WHERE id % 4 = $i" ||
        die "copying sbtest$t into shard $i failed"
    done
  done
  {
    echo "listen: 127.0.0.1:$PROXY_PORT"
    echo "users:"
    echo "  - {name: $SB_USER, password_hash: \"$SB_HASH\"}"
    echo "backends:"
    echo "  - {name: b0, addr: 127.0.0.1:$DB_PORT, user: root, password: $ROOT_PW, pool: {max_open: 128, max_idle: 128}}"
    echo "shards:"
    for i in 0 1 2 3; do echo "  - {name: s$i, primary: b0, database: ${DB}_s$i}"; done
    echo "schemes:"
    echo "  - {name: by_id, function: mod, slots: 4, shards: [s0, s1, s2, s3]}"
    echo "databases:"
    echo "  - name: $DB"
    echo "    default_shard: s0"
    echo "    tables:"
    for t in $(seq 1 "$BENCH_TABLES"); do echo "      - {name: sbtest$t, kind: sharded, key: id, scheme: by_id}"; done
  } >"$cfg"
  each_build sharded "$cfg"
  for i in 0 1 2 3; do mdb "$DB_PORT" root "$ROOT_PW" -e "DROP DATABASE IF EXISTS ${DB}_s$i" || true; done
}

# collect_proxy_log SCENARIO: keeps the proxy log next to the results and counts its warnings.
collect_proxy_log() {
  local out="$results_dir/$ts-$1-proxy.log"
  cp "$tmp/proxy.log" "$out"
  local warn err
  warn=$(grep -c 'level=WARN' "$out" || true)
  err=$(grep -c 'level=ERROR' "$out" || true)
  details+=("$1 proxy log: $(wc -l <"$out") lines, $warn WARN, $err ERROR -> bench/results/$(basename "$out")")
}

# ---------------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------------
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
mkdir -p "$results_dir"
PROFILES=()
for s in $BENCH_SCENARIOS; do
  declare -F "scenario_$s" >/dev/null || die "unknown scenario '$s' (have: $(declare -F | awk '$3 ~ /^scenario_/ { sub(/^scenario_/, "", $3); printf "%s ", $3 }'))"
done

build_proxy
start_mariadb
free_port PROXY_PORT $((DB_PORT + 1))
free_port DEBUG_PORT $((PROXY_PORT + 1))
prepare_data

for s in $BENCH_SCENARIOS; do "scenario_$s"; done

commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
dirty=$(git status --porcelain --untracked-files=no 2>/dev/null | grep -q . && echo " (+uncommitted changes)" || true)
ps_desc="auto (server-side prepared statements)"
[ "$BENCH_PS_MODE" = disable ] && ps_desc="disable (text protocol)"
{
  echo "shardproxy bench $ts  commit $commit$dirty  $(go version | awk '{print $3}')"
  [ -z "$BENCH_BASELINE" ] || echo "baseline: rows SCENARIO@base are the proxy built from $baseline_rev, run first"
  echo "sysbench $(sysbench --version | awk '{print $2}'), MariaDB $DB_VERSION, $(nproc) CPUs shared by sysbench, MariaDB and the proxy"
  echo "load average at start: $load_start, at end: $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine skews every number)"
  echo "tables=$BENCH_TABLES table_size=$BENCH_TABLE_SIZE threads=$BENCH_THREADS time=${BENCH_TIME}s warmup=${BENCH_WARMUP}s db-ps-mode=$ps_desc"
  [ "$BENCH_PROFILE" = 1 ] && echo "note: the proxied oltp_point_select run was CPU-profiled (10 s), which costs the proxy a little"
  echo
  # %13s for the µ column: printf counts bytes and µ is two.
  printf '%-12s %-18s %11s %11s %7s %9s %9s %13s %7s %7s\n' \
    scenario workload "QPS direct" "QPS proxy" ratio "p95 d ms" "p95 p ms" "proxy µs/q" "err d/p" "rec d/p"
  printf '%s\n' "${rows[@]}"
  echo
  printf '%s\n' "${details[@]}"
} | tee "$results_file"
log "results written to bench/results/$ts.txt"

for entry in "${PROFILES[@]}"; do
  prof=${entry%%|*}
  echo
  echo "go tool pprof -top -nodecount=30 ($(basename "$prof")):"
  go tool pprof -top -nodecount=30 "${entry#*|}" "$prof" 2>/dev/null | tee "${prof%.pprof}-top.txt"
done

[ "$failures" -eq 0 ] || die "$failures run(s) failed; see above"
