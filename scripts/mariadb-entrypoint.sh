#!/bin/sh
# Entrypoint of the local MariaDB image (scripts/mariadb-image.sh).
#
# Environment:
#   MARIADB_ROOT_PASSWORD  password of root@'%' (default: root)
#   MARIADB_USER, MARIADB_PASSWORD  an extra user with all privileges (optional)
#   MARIADB_DATABASE       databases to create, comma separated (optional)
#   MARIADB_PORT           port to listen on (default: 3306; useful with host networking)
# Arguments are passed to mariadbd as server options (server_id, log_bin, gtid, ...).
set -eu

datadir=/var/lib/mysql
port="${MARIADB_PORT:-3306}"
mkdir -p /run/mysqld "$datadir"

if [ ! -d "$datadir/mysql" ]; then
  # --force: a fresh rootfs cannot resolve its own host name.
  mariadb-install-db --force --user=root --datadir="$datadir" \
    --auth-root-authentication-method=normal --skip-test-db >/dev/null
fi

root_pw="${MARIADB_ROOT_PASSWORD:-root}"
init=/run/mysqld/init.sql
{
  echo "CREATE USER IF NOT EXISTS 'root'@'%' IDENTIFIED BY '$root_pw';"
  echo "ALTER USER 'root'@'%' IDENTIFIED BY '$root_pw';"
  echo "GRANT ALL PRIVILEGES ON *.* TO 'root'@'%' WITH GRANT OPTION;"
  echo "ALTER USER 'root'@'localhost' IDENTIFIED BY '$root_pw';"
  # mariadb-install-db adds password-less root accounts for the host name and loopback
  # addresses when the host is not "localhost" (host networking): drop them.
  echo "DROP USER IF EXISTS 'root'@'127.0.0.1', 'root'@'::1', 'root'@'$(hostname)';"
  if [ -n "${MARIADB_USER:-}" ]; then
    echo "CREATE USER IF NOT EXISTS '$MARIADB_USER'@'%' IDENTIFIED BY '${MARIADB_PASSWORD:-}';"
    echo "ALTER USER '$MARIADB_USER'@'%' IDENTIFIED BY '${MARIADB_PASSWORD:-}';"
    echo "GRANT ALL PRIVILEGES ON *.* TO '$MARIADB_USER'@'%';"
  fi
  if [ -n "${MARIADB_DATABASE:-}" ]; then
    echo "$MARIADB_DATABASE" | tr ',' '\n' | while read -r db; do
      [ -n "$db" ] && echo "CREATE DATABASE IF NOT EXISTS \`$db\`;"
    done
  fi
  echo "FLUSH PRIVILEGES;"
} > "$init"

exec mariadbd --user=root --datadir="$datadir" --skip-name-resolve \
  --bind-address=0.0.0.0 --port="$port" --socket=/run/mysqld/mysqld.sock \
  --init-file="$init" --character-set-server=utf8mb4 --collation-server=utf8mb4_general_ci \
  --max-connections=1000 --innodb-flush-log-at-trx-commit=2 "$@"
