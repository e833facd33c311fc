#!/usr/bin/env bash
# version: 15-deb12
# ref: localhost/storefleet/postgresql:15-deb12
# Debian 12's PostgreSQL 15, started by entrypoint.sh, which understands the
# environment the medusa chart gives its database (POSTGRES_USER, POSTGRES_DB,
# POSTGRES_PASSWORD, PGDATA) and initialises an empty data directory. The postgres
# user is created with uid/gid 999 before the packages are installed, the ids the
# chart runs the database as; pg_isready, psql and the server are on PATH.
set -euo pipefail
. ../debian.sh
# passwd (groupadd/useradd) is not in the essential set: the entries are written
# directly, and postgresql-common's postinst then finds its user in place.
DEBIAN_HOOKS=(--essential-hook='echo "postgres:x:999:999:PostgreSQL administrator:/var/lib/postgresql:/bin/sh" >> "$1/etc/passwd" && echo "postgres:x:999:" >> "$1/etc/group" && echo "postgres:*:19000:0:99999:7:::" >> "$1/etc/shadow" && echo "postgres:!::" >> "$1/etc/gshadow"')
debian_rootfs "$ROOTFS" bookworm postgresql-15 postgresql-client-15
install -m 0755 entrypoint.sh "$ROOTFS/usr/local/bin/storefleet-postgresql"
# The cluster Debian's postinst made is not used: the chart's PGDATA is initialised at start.
rm -rf "$ROOTFS/var/lib/postgresql/15" "$ROOTFS/etc/postgresql/15" "$ROOTFS/var/lib/apt/lists"/*
mkdir -p "$ROOTFS/var/run/postgresql" && chown 999:999 "$ROOTFS/var/run/postgresql" "$ROOTFS/var/lib/postgresql"
echo '{"Entrypoint":["/usr/local/bin/storefleet-postgresql"],"Cmd":[],"User":"999:999","Env":["PATH=/usr/lib/postgresql/15/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin","PGDATA=/var/lib/postgresql/data"],"ExposedPorts":{"5432/tcp":{}}}' > "$CONFIG"
