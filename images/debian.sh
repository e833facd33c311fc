# Sourced by images/*/build.sh: debian_rootfs ROOTFS SUITE PACKAGE... builds a Debian
# root file system with mmdebstrap from the apt sources this machine is configured
# with (its sources.list files are handed to mmdebstrap as they are, so no mirror
# host is written in the repository). No recommends, no documentation, no apt
# lists left: the image holds what the packages need to run.
debian_rootfs() {
  local rootfs=$1 suite=$2; shift 2
  local sources=() f
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
    [ -s "$f" ] && sources+=("$f")
  done
  [ ${#sources[@]} -gt 0 ] || { echo "debian_rootfs: this machine has no apt sources" >&2; return 1; }
  local include
  include=$(IFS=,; echo "$*")
  # The target must not exist or be empty; mmdebstrap creates it.
  rmdir "$rootfs" 2>/dev/null || true
  mmdebstrap --variant=essential --include="$include" \
    --aptopt='APT::Install-Recommends "false"' \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/info/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' \
    "${DEBIAN_HOOKS[@]}" \
    "$suite" "$rootfs" "${sources[@]}"
}
