#!/usr/bin/env bash
# Makes a fresh machine ready for the tests, the bench and the demo: Debian packages,
# a running Docker engine, and the local MariaDB image. Idempotent; fast when all is there.
# Prints the MariaDB image tag on stdout as its last line.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

need=()
command -v debootstrap >/dev/null 2>&1 || need+=(debootstrap)
# mariadb-client brings mariadb-dump and mariadb-admin too (mariadb-client-core has only
# the mariadb command), and the tests use all three.
for tool in mariadb mariadb-dump mariadb-admin; do
  if ! command -v "$tool" >/dev/null 2>&1; then need+=(mariadb-client); break; fi
done
command -v sysbench >/dev/null 2>&1 || need+=(sysbench)
# Debian's PyMySQL (a DB-API driver: autocommit off by default) for the transaction tests.
/usr/bin/python3 -c 'import pymysql' >/dev/null 2>&1 || need+=(python3-pymysql)
if [ ${#need[@]} -gt 0 ]; then
  echo "setup: installing ${need[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >&2
  apt-get install -y -q --no-install-recommends "${need[@]}" >&2
fi

if ! docker info >/dev/null 2>&1; then
  echo "setup: the Docker engine does not answer; trying to start it" >&2
  if command -v systemctl >/dev/null 2>&1 && systemctl start docker >/dev/null 2>&1; then :
  elif command -v service >/dev/null 2>&1 && service docker start >&2; then :
  else
    (dockerd >/tmp/shardproxy-dockerd.log 2>&1 &)
  fi
  for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && break
    sleep 1
  done
  docker info >/dev/null 2>&1 || { echo "setup: Docker is not available" >&2; exit 1; }
fi

bash "$here/mariadb-image.sh"
