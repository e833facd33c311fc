#!/usr/bin/env bash
# Builds one pinned tool from its scratch module in hack/tools/NAME and prints the
# directory holding its binaries. Binaries are cached outside the checkout, keyed by
# the tool's version and a hash of its build files, so a machine builds each tool
# once (fresh clones included) and a change to a pin rebuilds it.
#
#   hack/tools/install.sh NAME      -> prints e.g. ~/.cache/storefleet/bin/etcd-v3.6.16-1a2b3c4d5e6f
#
# Each tool folder holds go.mod/go.sum and build.sh, which builds into "$OUT" and
# carries a "# version: X" line.
set -euo pipefail
name=${1:?usage: install.sh NAME}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
dir=$here/$name
[ -f "$dir/build.sh" ] || { echo "install.sh: no tool named $name in $here" >&2; exit 2; }
version=$(sed -n 's/^# version: *//p' "$dir/build.sh" | head -n 1)
hash=$(cd "$dir" && cat build.sh go.mod $(ls go.sum 2>/dev/null) | sha256sum | cut -c1-12)
root=${STOREFLEET_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/storefleet}/bin
dest=$root/$name-${version:-unversioned}-$hash
mkdir -p "$root"
exec 9>"$dest.lock"
flock 9
if [ ! -f "$dest/.complete" ]; then
  rm -rf "$dest.tmp"
  mkdir -p "$dest.tmp"
  start=$(date +%s)
  echo "install.sh: building $name ${version} into $dest (first build on this machine)" >&2
  (cd "$dir" && OUT="$dest.tmp" GOTOOLCHAIN=local GOFLAGS=-mod=mod bash ./build.sh) >&2
  echo "install.sh: built $name in $(( $(date +%s) - start ))s" >&2
  rm -rf "$dest"
  mv "$dest.tmp" "$dest"
  touch "$dest/.complete"
fi
echo "$dest"
