#!/usr/bin/env bash
# version: 10.11-deb12
# ref: localhost/storefleet/mariadb:10.11-deb12
# Debian 12's MariaDB 10.11 server, started by entrypoint.sh, which understands the
# environment the woocommerce chart gives its database (MYSQL_ROOT_PASSWORD,
# MYSQL_DATABASE, MYSQL_USER, MYSQL_PASSWORD, or the MARIADB_ spellings) and
# initialises an empty data directory. The mysql user is created with uid/gid 999
# before the packages are installed, the ids the chart runs the database as.
set -euo pipefail
. ../debian.sh
# passwd (groupadd/useradd) is not in the essential set: the entries are written
# directly, and mariadb-server's postinst then finds its user in place.
DEBIAN_HOOKS=(--essential-hook='echo "mysql:x:999:999:MariaDB:/nonexistent:/usr/sbin/nologin" >> "$1/etc/passwd" && echo "mysql:x:999:" >> "$1/etc/group" && echo "mysql:*:19000:0:99999:7:::" >> "$1/etc/shadow" && echo "mysql:!::" >> "$1/etc/gshadow"')
debian_rootfs "$ROOTFS" bookworm mariadb-server
install -m 0755 entrypoint.sh "$ROOTFS/usr/local/bin/storefleet-mariadb"
install -m 0644 storefleet.cnf "$ROOTFS/etc/mysql/mariadb.conf.d/99-storefleet.cnf"
rm -rf "$ROOTFS/var/lib/mysql"/* "$ROOTFS/var/lib/apt/lists"/*
mkdir -p "$ROOTFS/var/run/mysqld" && chown 999:999 "$ROOTFS/var/lib/mysql" "$ROOTFS/var/run/mysqld"
echo '{"Entrypoint":["/usr/local/bin/storefleet-mariadb"],"Cmd":[],"User":"999:999","Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"ExposedPorts":{"3306/tcp":{}}}' > "$CONFIG"
