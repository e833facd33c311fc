#!/usr/bin/env bash
# version: 1.35.0-deb12
# ref: localhost/storefleet/busybox:1.35.0-deb12
# Debian's busybox-static with a link for each applet: the shell the volume
# provisioner's helper Pods run (mkdir/rm of a volume's folder on the node).
set -euo pipefail
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && apt-get download busybox-static >/dev/null)
dpkg-deb -x "$work"/busybox-static_*.deb "$ROOTFS"
mkdir -p "$ROOTFS/usr/bin" "$ROOTFS/tmp"
for applet in $("$ROOTFS/bin/busybox" --list); do
  [ -e "$ROOTFS/bin/$applet" ] || ln -s busybox "$ROOTFS/bin/$applet"
done
echo '{"Cmd":["/bin/sh"],"Env":["PATH=/usr/sbin:/usr/bin:/sbin:/bin"]}' > "$CONFIG"
