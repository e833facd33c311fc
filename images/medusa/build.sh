#!/usr/bin/env bash
# version: 2.21.2-node22
# ref: localhost/storefleet/medusa:2.21.2-node22
# base: node
# The Medusa server (+ admin) the medusa chart runs, built as the Dockerfile beside
# this script describes but without Docker: on the node image's root file system
# (Debian 12 + Node 22 from npm), `npm install` and `medusa build` run in a chroot
# (network from the host, npm's registry as this machine's npm is configured), then
# only the built server (.medusa/server with its production dependencies) is kept
# in /app. Runs as uid 1000 (node); `medusa start` on port 9000.
set -euo pipefail
base=$("$IMAGES_BUILD" node)
layer=$(tar -xOf "$base/image.tar" manifest.json | sed -n 's/.*"Layers":\["\([^"]*\)".*/\1/p')
tar -xOf "$base/image.tar" "$layer" | tar -C "$ROOTFS" -xf -
registry=$(npm config get registry 2>/dev/null || echo https://registry.npmjs.org/)
mkdir -p "$ROOTFS/build"
cp -r package.json tsconfig.json medusa-config.ts src "$ROOTFS/build/"
cp /etc/resolv.conf "$ROOTFS/etc/resolv.conf"
# The certificate authorities this machine's npm trusts (a machine behind a TLS
# proxy adds its own): used for the build's downloads only, not kept in the image.
cafile=$(npm config get cafile 2>/dev/null || true)
[ -n "$cafile" ] && [ "$cafile" != null ] && [ -f "$cafile" ] || cafile=${NODE_EXTRA_CA_CERTS:-}
if [ -n "$cafile" ] && [ -f "$cafile" ]; then cp "$cafile" "$ROOTFS/build/ca.crt"; else : > "$ROOTFS/build/ca.crt"; fi
# npm and the build read /proc; a private mount namespace keeps that mount off
# the host and ends it with the build.
unshare -m --propagation private sh -euc '
  mount -t proc proc "$1/proc"
  chroot "$1" sh -euc "
    cd /build
    export HOME=/tmp npm_config_registry=$2 npm_config_update_notifier=false
    if [ -s /build/ca.crt ]; then export NODE_EXTRA_CA_CERTS=/build/ca.crt npm_config_cafile=/build/ca.crt; fi
    npm install --no-audit --no-fund --loglevel=error
    npx medusa build
    cd .medusa/server
    npm install --omit=dev --no-audit --no-fund --loglevel=error
  "
' - "$ROOTFS" "$registry"
mv "$ROOTFS/build/.medusa/server" "$ROOTFS/app"
rm -rf "$ROOTFS/build" "$ROOTFS/tmp/.npm" "$ROOTFS/root/.npm"
: > "$ROOTFS/etc/resolv.conf"
# Uploads (file-local) go to /app/static: the chart mounts the <release>-uploads claim there.
mkdir -p "$ROOTFS/app/static"
chroot "$ROOTFS" chown -R 1000:1000 /app
echo '{"Entrypoint":[],"Cmd":["medusa","start"],"User":"1000:1000","WorkingDir":"/app","Env":["NODE_ENV=production","PATH=/app/node_modules/.bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"ExposedPorts":{"9000/tcp":{}}}' > "$CONFIG"
