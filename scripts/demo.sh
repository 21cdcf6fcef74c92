#!/usr/bin/env bash
# Runs the demo cluster: four MariaDB shards in containers, the order/finance schema
# (examples/demo-schema.sql, created through the proxy), sample data, and the proxy in the
# foreground on 127.0.0.1:3307 (user demo, password demo, database shop).
# Ctrl-C stops the proxy and removes the containers.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

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
  rm -rf "$work"
  echo "demo stopped; containers removed"
}
trap cleanup EXIT INT TERM

old=$(docker ps -aq --filter label=shardproxy.demo=1)
[ -z "$old" ] || docker rm -f $old >/dev/null

echo "starting 4 MariaDB shards ($image)"
for i in 0 1 2 3; do
  docker run -d --name "shardproxy-demo-$i" --label shardproxy.demo=1 \
    -p "127.0.0.1:3306$i:3306" --tmpfs /var/lib/mysql \
    -e MARIADB_ROOT_PASSWORD=rootpw -e MARIADB_DATABASE=shop "$image" >/dev/null
done
for i in 0 1 2 3; do
  for _ in $(seq 1 120); do
    mariadb -h127.0.0.1 -P"3306$i" -uroot -prootpw -e 'SELECT 1' >/dev/null 2>&1 && break
    sleep 0.5
  done
  mariadb -h127.0.0.1 -P"3306$i" -uroot -prootpw -e 'SELECT 1' >/dev/null
done

echo "building and starting the proxy"
go build -o "$work/shardproxy" ./cmd/shardproxy
"$work/shardproxy" serve --config examples/demo.yaml &
proxy_pid=$!
client=(mariadb -h127.0.0.1 -P3307 -udemo -pdemo shop)
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

cat <<MSG

shardproxy demo is running.
  DSN:    demo:demo@tcp(127.0.0.1:3307)/shop
  CLI:    mariadb -h127.0.0.1 -P3307 -udemo -pdemo shop
  try:    SELECT * FROM orders WHERE user_id = 7;
          INSERT INTO orders (order_id, user_id, currency, total) VALUES (5001, 7, 'EUR', 12.50);
          INSERT INTO orders (order_id, user_id, currency, total) VALUES (5002, 1, 'EUR', 3), (5003, 2, 'USD', 4);
          EXPLAIN SHARDS INSERT INTO orders (order_id, user_id) VALUES (5004, 1), (5005, 2);
          SELECT * FROM ledger WHERE account_id IN (3, 11);
          SELECT currency, COUNT(*), SUM(total) FROM orders GROUP BY currency ORDER BY 3 DESC;
          EXPLAIN SHARDS SELECT user_id, total FROM orders ORDER BY total DESC LIMIT 5;
          SELECT /*+ MAX_EXECUTION_TIME(200) */ SLEEP(1);
  admin:  http://127.0.0.1:9090/ (status page), /metrics, /readyz; the API with a token:
          curl -H 'Authorization: Bearer demo-admin-token' http://127.0.0.1:9090/api/v1/backends
          curl -X POST -H 'Authorization: Bearer demo-admin-token' http://127.0.0.1:9090/api/v1/reload
          (edit examples/demo.yaml and send SIGHUP to the proxy, pid $proxy_pid, to reload it)
  shards: 127.0.0.1:33060..33063 (root/rootpw), database shop
Ctrl-C stops the proxy and removes the containers.
MSG
wait "$proxy_pid"
