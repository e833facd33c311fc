#!/usr/bin/env bash
# version: 7.0-deb12
# ref: localhost/storefleet/redis:7.0-deb12
# Debian 12's Redis 7.0: redis-server and redis-cli on PATH, run as uid/gid 999 as
# the medusa chart runs it (the chart gives the command and its arguments).
set -euo pipefail
. ../debian.sh
DEBIAN_HOOKS=(--essential-hook='echo "redis:x:999:999:Redis:/data:/usr/sbin/nologin" >> "$1/etc/passwd" && echo "redis:x:999:" >> "$1/etc/group" && echo "redis:*:19000:0:99999:7:::" >> "$1/etc/shadow" && echo "redis:!::" >> "$1/etc/gshadow"')
debian_rootfs "$ROOTFS" bookworm redis-server redis-tools
rm -rf "$ROOTFS/var/lib/apt/lists"/*
mkdir -p "$ROOTFS/data" && chown 999:999 "$ROOTFS/data"
echo '{"Entrypoint":[],"Cmd":["redis-server","--protected-mode","no"],"User":"999:999","WorkingDir":"/data","Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"ExposedPorts":{"6379/tcp":{}}}' > "$CONFIG"
