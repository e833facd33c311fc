#!/usr/bin/env bash
# Packs a root file system folder into an image tarball that `ctr images import`
# reads (the docker-archive layout: manifest.json, the image config, one layer), so
# images are made here with no Docker engine and no registry.
#
#   images/mkimage.sh ROOTFS REF OUT.tar CONFIG.json
#
# REF is the local name the image is imported under (localhost/storefleet/...: a
# name no registry serves, so no upstream tag is ever shadowed by other content).
# CONFIG.json is the "config" object of the image (Entrypoint, Cmd, Env, User,
# WorkingDir, ExposedPorts). Files are added sorted with fixed times so the same
# folder gives the same layer digest.
set -euo pipefail
rootfs=${1:?rootfs}; ref=${2:?ref}; out=${3:?out}; config=${4:?config}
work=$(mktemp -d "${TMPDIR:-/tmp}/mkimage.XXXXXX")
trap 'rm -rf "$work"' EXIT
tar --numeric-owner --xattrs --sort=name --mtime=@0 -C "$rootfs" -cf "$work/layer.tar" .
layer=$(sha256sum "$work/layer.tar" | cut -d' ' -f1)
mkdir "$work/$layer"
mv "$work/layer.tar" "$work/$layer/layer.tar"
{
  printf '{"architecture":"amd64","os":"linux","created":"1970-01-01T00:00:00Z","config":'
  tr -d '\n' < "$config"
  printf ',"rootfs":{"type":"layers","diff_ids":["sha256:%s"]},"history":[{"created":"1970-01-01T00:00:00Z","created_by":"storefleet images/mkimage.sh"}]}' "$layer"
} > "$work/config.json"
cfg=$(sha256sum "$work/config.json" | cut -d' ' -f1)
mv "$work/config.json" "$work/$cfg.json"
printf '[{"Config":"%s.json","RepoTags":["%s"],"Layers":["%s/layer.tar"]}]' "$cfg" "$ref" "$layer" > "$work/manifest.json"
tar -C "$work" -cf "$out.tmp" manifest.json "$cfg.json" "$layer"
mv "$out.tmp" "$out"
