#!/bin/sh
# Starts MariaDB as the woocommerce chart expects of its database image. On an empty
# data directory it first creates the system tables, sets the root password, and the
# application database and user named by the environment; a data directory that
# already holds a database is started as it is (the root password and users there
# are kept: changing them is an operator's job, not a restart's).
set -eu
datadir=/var/lib/mysql
for arg in "$@"; do
  case "$arg" in --datadir=*) datadir=${arg#--datadir=} ;; esac
done
root_pw=${MARIADB_ROOT_PASSWORD:-${MYSQL_ROOT_PASSWORD:-}}
db=${MARIADB_DATABASE:-${MYSQL_DATABASE:-}}
user=${MARIADB_USER:-${MYSQL_USER:-}}
pw=${MARIADB_PASSWORD:-${MYSQL_PASSWORD:-}}

if [ ! -d "$datadir/mysql" ]; then
  [ -n "$root_pw" ] || { echo "storefleet-mariadb: MYSQL_ROOT_PASSWORD (or MARIADB_ROOT_PASSWORD) is required to initialise $datadir" >&2; exit 1; }
  echo "storefleet-mariadb: initialising $datadir"
  mkdir -p "$datadir"
  mariadb-install-db --datadir="$datadir" --auth-root-authentication-method=normal \
    --skip-test-db --skip-name-resolve >/dev/null
  # A server on a private socket only, to run the first statements with the
  # ordinary client (errors are reported, unlike --bootstrap's).
  sock=$(mktemp -u /tmp/storefleet-init.XXXXXX)
  mariadbd --datadir="$datadir" --skip-networking --socket="$sock" "$@" &
  init_pid=$!
  tries=0
  until mariadb-admin --socket="$sock" -uroot ping --silent 2>/dev/null; do
    tries=$((tries + 1))
    if [ "$tries" -gt 120 ] || ! kill -0 "$init_pid" 2>/dev/null; then
      echo "storefleet-mariadb: the initialising server did not start" >&2; exit 1
    fi
    sleep 0.5
  done
  sq() { printf "'%s'" "$(printf %s "$1" | sed "s/\\\\/\\\\\\\\/g; s/'/\\\\'/g")"; }
  {
    # mariadb-install-db also makes accounts for the Pod's host name (and, in some
    # versions, 127.0.0.1 and ::1): a more specific host than '%' wins, so a client
    # on 127.0.0.1 would meet one of those, not root@'%'. Only the local system
    # accounts are kept.
    echo "DELETE FROM mysql.global_priv WHERE NOT (Host = 'localhost' AND User IN ('root', 'mysql', 'mariadb.sys'));"
    echo "FLUSH PRIVILEGES;"
    echo "ALTER USER 'root'@'localhost' IDENTIFIED BY $(sq "$root_pw");"
    echo "CREATE USER IF NOT EXISTS 'root'@'%' IDENTIFIED BY $(sq "$root_pw");"
    echo "GRANT ALL ON *.* TO 'root'@'%' WITH GRANT OPTION;"
    if [ -n "$db" ]; then echo "CREATE DATABASE IF NOT EXISTS \`$db\`;"; fi
    if [ -n "$user" ] && [ -n "$pw" ]; then
      echo "CREATE USER IF NOT EXISTS $(sq "$user")@'%' IDENTIFIED BY $(sq "$pw");"
      if [ -n "$db" ]; then echo "GRANT ALL ON \`$db\`.* TO $(sq "$user")@'%';"; fi
    fi
  } | mariadb --socket="$sock" -uroot
  MYSQL_PWD=$root_pw mariadb-admin --socket="$sock" -uroot shutdown
  wait "$init_pid" || true
  echo "storefleet-mariadb: initialised"
fi
exec mariadbd --datadir="$datadir" "$@"
