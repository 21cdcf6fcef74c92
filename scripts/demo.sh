#!/usr/bin/env bash
# Runs the demo cluster: four MariaDB shards in containers, each a primary and a replica
# (GTID, semi-synchronous, failover mode promote), the order/finance schema
# (examples/demo-schema.sql, created through the proxy), sample data, and the proxy in the
# foreground on 127.0.0.1:3307 (user demo, password demo, database shop).
# Ctrl-C stops the proxy and removes the containers.
#
# Ports (all on 127.0.0.1), chosen outside Linux's ephemeral range (32768-60999 by default),
# where an unrelated outgoing connection may hold a port at any time:
#   DEMO_PORT          the proxy (default 3307)
#   DEMO_SHARD_PORT    the first shard's primary; the others follow, then the replicas
#                      (default 13306: primaries 13306..13309, replicas 13310..13313)
#   DEMO_METRICS_PORT  the admin API: status page, Prometheus metrics (default 9090)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

port=${DEMO_PORT:-3307}
shard_port=${DEMO_SHARD_PORT:-13306}
metrics_port=${DEMO_METRICS_PORT:-9090}
for p in "$port" "$shard_port" "$metrics_port"; do
  case $p in ''|*[!0-9]*) echo "demo: port '$p' is not a number" >&2; exit 1 ;; esac
done
shard_ports=("$shard_port" $((shard_port + 1)) $((shard_port + 2)) $((shard_port + 3)))
replica_ports=($((shard_port + 4)) $((shard_port + 5)) $((shard_port + 6)) $((shard_port + 7)))
network=shardproxy-demo
image=$(bash scripts/setup.sh | tail -n 1)
work=$(mktemp -d /tmp/shardproxy-demo.XXXXXX)
proxy_pid=""

cleanup() {
  trap - EXIT INT TERM
  if [ -n "$proxy_pid" ] && kill -0 "$proxy_pid" 2>/dev/null; then
    kill -TERM "$proxy_pid" 2>/dev/null || true
    wait "$proxy_pid" 2>/dev/null || true
  fi
  ids=$(docker ps -aq --filter label=shardproxy.demo=1)
  [ -z "$ids" ] || docker rm -f $ids >/dev/null
  docker network rm "$network" >/dev/null 2>&1 || true
  rm -rf "$work"
  echo "demo stopped; containers removed"
}
trap cleanup EXIT INT TERM

old=$(docker ps -aq --filter label=shardproxy.demo=1)
[ -z "$old" ] || docker rm -f $old >/dev/null
docker network rm "$network" >/dev/null 2>&1 || true

read -r eph_lo eph_hi < /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || { eph_lo=32768; eph_hi=60999; }
for p in "$port" "${shard_ports[@]}" "${replica_ports[@]}" "$metrics_port"; do
  if [ "$p" -ge "$eph_lo" ] && [ "$p" -le "$eph_hi" ]; then
    echo "demo: warning: port $p is in the ephemeral range $eph_lo-$eph_hi; an outgoing connection may take it" >&2
  fi
  if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
    echo "demo: port $p on 127.0.0.1 is in use; choose others with DEMO_PORT, DEMO_SHARD_PORT, DEMO_METRICS_PORT" >&2
    exit 1
  fi
done

echo "starting 4 MariaDB shards, a primary and a replica each ($image)"
started=$(date +%s.%N)
docker network create --label shardproxy.demo=1 "$network" >/dev/null
# The settings failover without loss depends on (README, "Replicas and failover"), but one:
# with a single replica per shard, a promoted replica has no replica of its own, so
# rpl_semi_sync_master_wait_no_slave=OFF lets it commit asynchronously instead of waiting an
# hour for an acknowledgement. Production shards want two replicas and the default (ON).
server_args=(--log-bin=mysql-bin --log-slave-updates=ON --binlog-format=ROW --gtid-strict-mode=ON
  --rpl-semi-sync-slave-enabled=ON --rpl-semi-sync-master-wait-point=AFTER_SYNC --rpl-semi-sync-master-timeout=3600000
  --rpl-semi-sync-master-wait-no-slave=OFF)
for i in 0 1 2 3; do
  docker run -d --name "shardproxy-demo-$i" --label shardproxy.demo=1 --network "$network" --network-alias "p$i" \
    -p "127.0.0.1:${shard_ports[$i]}:3306" --tmpfs /var/lib/mysql \
    -e MARIADB_ROOT_PASSWORD=rootpw -e MARIADB_DATABASE=shop "$image" --server-id=$((i + 1)) "${server_args[@]}" >/dev/null
  docker run -d --name "shardproxy-demo-r$i" --label shardproxy.demo=1 --network "$network" --network-alias "r$i" \
    -p "127.0.0.1:${replica_ports[$i]}:3306" --tmpfs /var/lib/mysql \
    -e MARIADB_ROOT_PASSWORD=rootpw -e MARIADB_DATABASE=shop "$image" --server-id=$((i + 11)) "${server_args[@]}" >/dev/null
done
for p in "${shard_ports[@]}" "${replica_ports[@]}"; do
  for _ in $(seq 1 120); do
    mariadb -h127.0.0.1 -P"$p" -uroot -prootpw -e 'SELECT 1' >/dev/null 2>&1 && break
    sleep 0.5
  done
  mariadb -h127.0.0.1 -P"$p" -uroot -prootpw -e 'SELECT 1' >/dev/null
done
# Each replica starts from what its primary holds (both ran the same initialisation) and
# follows it; semi-sync is switched on on the primaries only (see the README).
for i in 0 1 2 3; do
  pos=$(mariadb -h127.0.0.1 -P"${shard_ports[$i]}" -uroot -prootpw -N -e 'SELECT @@gtid_binlog_pos')
  mariadb -h127.0.0.1 -P"${replica_ports[$i]}" -uroot -prootpw -e "RESET MASTER; SET GLOBAL gtid_slave_pos = '$pos';
    CHANGE MASTER TO MASTER_HOST = 'p$i', MASTER_PORT = 3306, MASTER_USER = 'root', MASTER_PASSWORD = 'rootpw',
      MASTER_USE_GTID = slave_pos, MASTER_CONNECT_RETRY = 1;
    SET GLOBAL read_only = 1; START SLAVE;"
  mariadb -h127.0.0.1 -P"${shard_ports[$i]}" -uroot -prootpw -e 'SET GLOBAL rpl_semi_sync_master_enabled = ON'
done
for i in 0 1 2 3; do
  for _ in $(seq 1 100); do
    n=$(mariadb -h127.0.0.1 -P"${shard_ports[$i]}" -uroot -prootpw -N -e "SHOW GLOBAL STATUS LIKE 'Rpl_semi_sync_master_clients'" | cut -f2)
    [ "$n" = 1 ] && break
    sleep 0.1
  done
  [ "$n" = 1 ] || { echo "demo: the replica of shard s$i did not attach semi-synchronously" >&2; exit 1; }
done

echo "building and starting the proxy"
go build -o "$work/shardproxy" ./cmd/shardproxy
# examples/demo.yaml with the ports chosen above.
edits=(-e "s/^listen: .*/listen: 127.0.0.1:$port/" -e "s/^  listen: 127.0.0.1:9090/  listen: 127.0.0.1:$metrics_port/")
for i in 0 1 2 3; do
  edits+=(-e "/name: db$i,/s/addr: \"[^\"]*\"/addr: \"127.0.0.1:${shard_ports[$i]}\"/")
  edits+=(-e "/name: rdb$i,/s/addr: \"[^\"]*\"/addr: \"127.0.0.1:${replica_ports[$i]}\"/")
done
sed "${edits[@]}" examples/demo.yaml > "$work/demo.yaml"
"$work/shardproxy" serve --config "$work/demo.yaml" &
proxy_pid=$!
client=(mariadb -h127.0.0.1 -P"$port" -udemo -pdemo shop)
for _ in $(seq 1 100); do
  "${client[@]}" -e 'SELECT 1' >/dev/null 2>&1 && break
  kill -0 "$proxy_pid" 2>/dev/null || { echo "the proxy exited" >&2; exit 1; }
  sleep 0.2
done

echo "loading the schema through the proxy"
"${client[@]}" < examples/demo-schema.sql
# A broadcast write: the proxy inserts the reference rows on every shard, atomically.
"${client[@]}" -e "INSERT IGNORE INTO currencies VALUES ('EUR','Euro',2),('USD','US Dollar',2),('JPY','Yen',0)"
"${client[@]}" < examples/demo-data.sql
echo "started in $(awk -v a="$started" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s (containers, replication, proxy build and start, schema and data)"

cat <<MSG

shardproxy demo is running.
  DSN:    demo:demo@tcp(127.0.0.1:$port)/shop
  CLI:    mariadb -c -h127.0.0.1 -P$port -udemo -pdemo shop
          (-c keeps comments, so optimizer hints such as MAX_EXECUTION_TIME reach the proxy)
  try:    SELECT * FROM orders WHERE user_id = 7;
          INSERT INTO orders (order_id, user_id, currency, total) VALUES (5001, 7, 'EUR', 12.50);
          INSERT INTO orders (order_id, user_id, currency, total) VALUES (5002, 1, 'EUR', 3), (5003, 2, 'USD', 4);
          EXPLAIN SHARDS INSERT INTO orders (order_id, user_id) VALUES (5004, 1), (5005, 2);
          SELECT * FROM ledger WHERE account_id IN (3, 11);
          SELECT currency, COUNT(*), SUM(total) FROM orders GROUP BY currency ORDER BY 3 DESC;
          EXPLAIN SHARDS SELECT user_id, total FROM orders ORDER BY total DESC LIMIT 5;
          SELECT /*+ MAX_EXECUTION_TIME(200) */ SLEEP(1);
  admin:  http://127.0.0.1:$metrics_port/ (status page), /metrics, /readyz; the API with a token:
          curl -H 'Authorization: Bearer demo-admin-token' http://127.0.0.1:$metrics_port/api/v1/backends
          curl -X POST -H 'Authorization: Bearer demo-admin-token' http://127.0.0.1:$metrics_port/api/v1/reload
          (edit $work/demo.yaml and send SIGHUP to the proxy, pid $proxy_pid, to reload it)
  shards: primaries db0..db3 at 127.0.0.1:${shard_ports[0]}..${shard_ports[3]}, replicas rdb0..rdb3 at
          127.0.0.1:${replica_ports[0]}..${replica_ports[3]} (root/rootpw), database shop
  failover: kill shard s1's primary while a query loop runs; the proxy promotes its replica:
          docker kill shardproxy-demo-1   # (the README shows the loop)
  switchover: SHARDPROXY_ADMIN_TOKEN=demo-admin-token $work/shardproxy switchover --shard s2 --admin 127.0.0.1:$metrics_port
Ctrl-C stops the proxy and removes the containers.
MSG
wait "$proxy_pid"
