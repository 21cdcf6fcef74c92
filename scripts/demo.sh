#!/usr/bin/env bash
# Runs the demo cluster: four MariaDB shards in containers, each a primary and a replica
# (GTID, semi-synchronous replication AFTER_SYNC, failover mode promote), the order/finance
# schema (examples/demo-schema.sql, created through the proxy), sample data, and the proxy in
# the foreground on 127.0.0.1:3307 (user demo, password demo, database shop).
# Ctrl-C (or SIGTERM) stops the proxy and removes the containers and their network.
#
# Ports (all on 127.0.0.1), chosen outside Linux's ephemeral range (32768-60999 by default),
# where an unrelated outgoing connection may hold a port at any time:
#   DEMO_PORT          the proxy (default 3307)
#   DEMO_SHARD_PORT    the first shard's primary; the other primaries follow, then the
#                      replicas (default 13306: primaries 13306..13309, replicas 13310..13313)
#   DEMO_METRICS_PORT  the admin API: status page, Prometheus metrics (default 9090)
# Containers are named shardproxy-demo-s0-primary, shardproxy-demo-s0-replica, ... (with
# DEMO_PORT other than 3307: shardproxy-demo-<port>-s0-primary, ...), on the Docker network
# of the same prefix, and labelled shardproxy.demo=<DEMO_PORT>: a second demo on other ports
# leaves them alone.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

port=${DEMO_PORT:-3307}
shard_port=${DEMO_SHARD_PORT:-13306}
metrics_port=${DEMO_METRICS_PORT:-9090}
for p in "$port" "$shard_port" "$metrics_port"; do
  case $p in ''|*[!0-9]*) echo "demo: port '$p' is not a number" >&2; exit 1 ;; esac
done
SECONDS=0
prefix=shardproxy-demo
[ "$port" = 3307 ] || prefix=shardproxy-demo-$port
net=$prefix
label=shardproxy.demo=$port
primary_ports=("$shard_port" $((shard_port + 1)) $((shard_port + 2)) $((shard_port + 3)))
replica_ports=($((shard_port + 4)) $((shard_port + 5)) $((shard_port + 6)) $((shard_port + 7)))
image=$(bash scripts/setup.sh | tail -n 1)
work=$(mktemp -d /tmp/shardproxy-demo.XXXXXX)
proxy_pid=""

remove_cluster() {
  local ids
  ids=$(docker ps -aq --filter "label=$label")
  [ -z "$ids" ] || docker rm -f $ids >/dev/null
  if docker network inspect "$net" >/dev/null 2>&1; then docker network rm "$net" >/dev/null; fi
}

cleanup() {
  trap - EXIT INT TERM
  if [ -n "$proxy_pid" ] && kill -0 "$proxy_pid" 2>/dev/null; then
    kill -TERM "$proxy_pid" 2>/dev/null || true
    wait "$proxy_pid" 2>/dev/null || true
  fi
  remove_cluster
  rm -rf "$work"
  echo "demo stopped; containers and network $net removed"
}
trap cleanup EXIT INT TERM

# Left over by an earlier demo on the same DEMO_PORT (killed with SIGKILL, say).
remove_cluster

read -r eph_lo eph_hi < /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || { eph_lo=32768; eph_hi=60999; }
for p in "$port" "${primary_ports[@]}" "${replica_ports[@]}" "$metrics_port"; do
  if [ "$p" -ge "$eph_lo" ] && [ "$p" -le "$eph_hi" ]; then
    echo "demo: warning: port $p is in the ephemeral range $eph_lo-$eph_hi; an outgoing connection may take it" >&2
  fi
  if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
    echo "demo: port $p on 127.0.0.1 is in use; choose others with DEMO_PORT, DEMO_SHARD_PORT, DEMO_METRICS_PORT" >&2
    exit 1
  fi
done

# The settings the failover guarantees depend on (README, "Replicas and failover"), as in
# the integration test TestFailover. rpl_semi_sync_master_enabled is switched on on the
# primary once its replica is attached. wait_no_slave=OFF because a shard has one replica:
# after a failover the promoted replica has none, and it must not wait an hour for one (it
# runs asynchronously, and the proxy says so, until a new replica is attached). The proxy
# warns about wait_no_slave=OFF on every primary: that is this demo's deliberate trade-off.
server_args() {
  echo --server-id="$1" --log-bin=mysql-bin --log-slave-updates=ON --binlog-format=ROW \
    --gtid-strict-mode=ON --rpl-semi-sync-slave-enabled=ON --rpl-semi-sync-master-wait-point=AFTER_SYNC \
    --rpl-semi-sync-master-timeout=3600000 --rpl-semi-sync-master-wait-no-slave=OFF \
    --innodb-buffer-pool-size=32M --innodb-log-file-size=16M --aria-pagecache-buffer-size=8M --key-buffer-size=8M
}
sql() { # port, statements
  mariadb -h127.0.0.1 -P"$1" -uroot -prootpw -N -e "$2"
}

echo "starting 4 MariaDB shards, a primary and a replica each ($image), on network $net"
docker network create --label "$label" "$net" >/dev/null
for i in 0 1 2 3; do
  for role in primary replica; do
    if [ $role = primary ]; then p=${primary_ports[$i]}; id=1; else p=${replica_ports[$i]}; id=2; fi
    docker run -d --name "$prefix-s$i-$role" --label "$label" --network "$net" --network-alias "s$i-$role" \
      -p "127.0.0.1:$p:3306" --tmpfs /var/lib/mysql \
      -e MARIADB_ROOT_PASSWORD=rootpw -e MARIADB_DATABASE=shop "$image" $(server_args $id) >/dev/null
  done
done
for p in "${primary_ports[@]}" "${replica_ports[@]}"; do
  for _ in $(seq 1 240); do
    sql "$p" 'SELECT 1' >/dev/null 2>&1 && break
    sleep 0.25
  done
  sql "$p" 'SELECT 1' >/dev/null
done
for i in 0 1 2 3; do
  sql "${replica_ports[$i]}" "RESET MASTER; SET GLOBAL gtid_slave_pos = '';
    CHANGE MASTER TO MASTER_HOST = 's$i-primary', MASTER_PORT = 3306, MASTER_USER = 'root', MASTER_PASSWORD = 'rootpw',
      MASTER_USE_GTID = slave_pos, MASTER_CONNECT_RETRY = 1;
    SET GLOBAL read_only = 1; START SLAVE"
  sql "${primary_ports[$i]}" 'SET GLOBAL rpl_semi_sync_master_enabled = ON'
done
for i in 0 1 2 3; do
  for _ in $(seq 1 120); do
    [ "$(sql "${primary_ports[$i]}" "SHOW GLOBAL STATUS LIKE 'Rpl_semi_sync_master_clients'" | cut -f2)" = 1 ] && break
    sleep 0.25
  done
  [ "$(sql "${primary_ports[$i]}" "SHOW GLOBAL STATUS LIKE 'Rpl_semi_sync_master_clients'" | cut -f2)" = 1 ] ||
    { echo "demo: the replica of s$i did not attach semi-synchronously" >&2; exit 1; }
done

echo "building and starting the proxy"
go build -o "$work/shardproxy" ./cmd/shardproxy
# examples/demo.yaml with the ports chosen above.
edits=(-e "s/^listen: .*/listen: 127.0.0.1:$port/" -e "s/^  listen: 127.0.0.1:9090/  listen: 127.0.0.1:$metrics_port/")
for i in 0 1 2 3; do
  edits+=(-e "/name: db$i,/s/addr: \"127.0.0.1:[0-9]*\"/addr: \"127.0.0.1:${primary_ports[$i]}\"/")
  edits+=(-e "/name: db${i}r,/s/addr: \"127.0.0.1:[0-9]*\"/addr: \"127.0.0.1:${replica_ports[$i]}\"/")
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
elapsed=$SECONDS

cat <<MSG

shardproxy demo is running (ready in $elapsed s).
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
  failover: a write loop on shard s0 (the settings table lives there), in one terminal:
          i=0; while :; do i=\$((i+1)); mariadb -h127.0.0.1 -P$port -udemo -pdemo shop -N -e "REPLACE INTO settings VALUES ('tick', \$i); SELECT NOW(3), value FROM settings WHERE name = 'tick'" || echo "\$(date +%T.%3N) failed"; sleep 0.1; done
          and in another, kill s0's primary: the loop pauses (< 3 s) and goes on against the promoted replica:
          docker kill $prefix-s0-primary
          curl -H 'Authorization: Bearer demo-admin-token' http://127.0.0.1:$metrics_port/api/v1/shards
  admin:  http://127.0.0.1:$metrics_port/ (status page), /metrics, /readyz; the API with a token:
          curl -H 'Authorization: Bearer demo-admin-token' http://127.0.0.1:$metrics_port/api/v1/backends
          curl -X POST -H 'Authorization: Bearer demo-admin-token' http://127.0.0.1:$metrics_port/api/v1/reload
          (edit $work/demo.yaml and send SIGHUP to the proxy, pid $proxy_pid, to reload it)
  shards: primaries 127.0.0.1:${primary_ports[0]}..${primary_ports[3]}, replicas ${replica_ports[0]}..${replica_ports[3]} (root/rootpw), database shop
          containers $prefix-s{0..3}-{primary,replica}
Ctrl-C stops the proxy and removes the containers and the network.
MSG
wait "$proxy_pid"
