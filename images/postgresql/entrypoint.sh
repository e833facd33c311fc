#!/bin/sh
# Starts PostgreSQL as the medusa chart expects of its database image. On an empty
# PGDATA it first runs initdb with POSTGRES_USER as the superuser (password
# POSTGRES_PASSWORD, scram-sha-256 for every network client) and creates
# POSTGRES_DB; a PGDATA that holds a cluster is started as it is.
set -eu
: "${PGDATA:=/var/lib/postgresql/data}"
user=${POSTGRES_USER:-postgres}
db=${POSTGRES_DB:-$user}
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  [ -n "${POSTGRES_PASSWORD:-}" ] || { echo "storefleet-postgresql: POSTGRES_PASSWORD is required to initialise $PGDATA" >&2; exit 1; }
  echo "storefleet-postgresql: initialising $PGDATA"
  mkdir -p "$PGDATA"
  chmod 0700 "$PGDATA"
  pwfile=$(mktemp)
  printf '%s\n' "$POSTGRES_PASSWORD" > "$pwfile"
  initdb --pgdata="$PGDATA" --username="$user" --pwfile="$pwfile" --auth-local=trust \
    --auth-host=scram-sha-256 --encoding=UTF8 --locale=C.UTF-8 >/dev/null
  rm -f "$pwfile"
  echo "host all all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
  if [ "$db" != postgres ]; then
    # Single-user mode: no server, no socket needed.
    echo "CREATE DATABASE \"$db\";" | postgres --single -D "$PGDATA" postgres >/dev/null
  fi
  echo "storefleet-postgresql: initialised"
fi
exec postgres -D "$PGDATA" -c listen_addresses='*' -c unix_socket_directories=/var/run/postgresql "$@"
