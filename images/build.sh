#!/usr/bin/env bash
# Builds the image images/NAME describes and prints the folder holding it:
# image.tar (importable with `ctr -n k8s.io images import`), ref (its local name)
# and seconds (how long the build took). Images are cached outside the checkout,
# keyed by the image's version and a hash of its folder and of this script set, so a
# machine builds each image once (fresh clones included) and a change rebuilds it —
# the same scheme as hack/tools/install.sh for binaries.
#
#   images/build.sh NAME   -> ~/.cache/storefleet/images/NAME-VERSION-HASH
#
# images/NAME/build.sh fills "$ROOTFS" and writes the image config object to
# "$CONFIG"; its header carries "# version: X" and "# ref: localhost/storefleet/...",
# and "# base: NAME" when it starts from another image's root file system
# (IMAGES_BUILD is this script, to build that base).
# Debian packages come from the apt sources this machine is configured with (no
# mirror is named in the repository); npm packages from the npm registry.
set -euo pipefail
name=${1:?usage: images/build.sh NAME}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
dir=$here/$name
[ -f "$dir/build.sh" ] || { echo "images/build.sh: no image named $name in $here" >&2; exit 2; }
version=$(sed -n 's/^# version: *//p' "$dir/build.sh" | head -n 1)
ref=$(sed -n 's/^# ref: *//p' "$dir/build.sh" | head -n 1)
[ -n "$ref" ] || { echo "images/build.sh: $dir/build.sh has no '# ref:' line" >&2; exit 2; }
# An image built on another ("# base: NAME") is rebuilt when its base changes.
base=$(sed -n 's/^# base: *//p' "$dir/build.sh" | head -n 1)
hash=$( (cd "$here" && find "$name" $base build.sh mkimage.sh debian.sh -type f -print0 | sort -z | xargs -0 sha256sum) | sha256sum | cut -c1-12)
root=${STOREFLEET_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/storefleet}/images
dest=$root/$name-${version:-unversioned}-$hash
mkdir -p "$root"
exec 9>"$dest.lock"
flock 9
if [ ! -f "$dest/.complete" ]; then
  # A build killed inside mmdebstrap can leave /proc or /sys mounted in its root
  # file system: never delete through a mount.
  if grep -q " $dest.tmp/" /proc/self/mountinfo; then
    echo "images/build.sh: $dest.tmp still has mounts (a killed build?); unmount them first:" >&2
    grep " $dest.tmp/" /proc/self/mountinfo | awk '{print $5}' >&2
    exit 1
  fi
  rm -rf "$dest.tmp"
  mkdir -p "$dest.tmp/rootfs"
  start=$(date +%s)
  echo "images/build.sh: building $ref into $dest (first build on this machine)" >&2
  (cd "$dir" && ROOTFS="$dest.tmp/rootfs" CONFIG="$dest.tmp/config.json" IMAGES_BUILD="$here/build.sh" GOTOOLCHAIN=local bash ./build.sh) >&2
  "$here/mkimage.sh" "$dest.tmp/rootfs" "$ref" "$dest.tmp/image.tar" "$dest.tmp/config.json"
  rm -rf "$dest.tmp/rootfs"
  echo "$ref" > "$dest.tmp/ref"
  echo "$(( $(date +%s) - start ))" > "$dest.tmp/seconds"
  echo "images/build.sh: built $ref in $(cat "$dest.tmp/seconds")s, $(du -h "$dest.tmp/image.tar" | cut -f1)" >&2
  rm -rf "$dest"
  mv "$dest.tmp" "$dest"
  touch "$dest/.complete"
fi
echo "$dest"
