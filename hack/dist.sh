#!/usr/bin/env bash
# Builds the kubectl plugin's release into $DIST (dist/ by default): a
# tar.gz per platform with kubectl-tandem and kubectl_complete-tandem,
# checksums.txt (sha256sum's format), and tandem.yaml, the krew manifest
# pointing at the archives under $RELEASE_URL with their checksums.
# Archives are reproducible: the same commit and VERSION give the same
# bytes. `make dist` runs it.
set -euo pipefail
cd "$(dirname "$0")/.."
version=${VERSION:?VERSION is required, e.g. v0.2.0}
platforms=${PLATFORMS:-linux/amd64 linux/arm64 darwin/amd64 darwin/arm64}
dist=${DIST:-dist}
release_url=${RELEASE_URL:-https://github.com/tandem-dev/tandem/releases/download/$version}
case "$version" in v[0-9]*.[0-9]*.[0-9]*) ;; *) echo "dist: VERSION $version is not a semantic version (vX.Y.Z), which krew requires" >&2; exit 1 ;; esac

rm -rf "$dist"
mkdir -p "$dist"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
platform_entries=""
for p in $platforms; do
  os=${p%/*} arch=${p#*/}
  dir="$work/$os-$arch"
  mkdir -p "$dir"
  CGO_ENABLED=0 GOOS=$os GOARCH=$arch go build -trimpath -ldflags "-s -w -X main.version=$version" \
    -o "$dir/kubectl-tandem" ./cmd/kubectl-tandem
  install -m 0755 hack/kubectl_complete-tandem "$dir/kubectl_complete-tandem"
  archive="kubectl-tandem_${version}_${os}_${arch}.tar.gz"
  tar -C "$dir" --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -cf - kubectl-tandem kubectl_complete-tandem |
    gzip -9 -n >"$dist/$archive"
  sum=$(sha256sum "$dist/$archive" | cut -d' ' -f1)
  platform_entries+="  - selector:
      matchLabels: {os: $os, arch: $arch}
    uri: $release_url/$archive
    sha256: $sum
    files:
    - {from: kubectl-tandem, to: .}
    - {from: kubectl_complete-tandem, to: .}
    bin: kubectl-tandem
"
done
(cd "$dist" && sha256sum -- *.tar.gz >checksums.txt)
cat >"$dist/tandem.yaml" <<YAML
apiVersion: krew.googlecontainertools.github.com/v1alpha2
kind: Plugin
metadata:
  name: tandem
spec:
  version: $version
  homepage: https://github.com/tandem-dev/tandem
  shortDescription: Inspect and drive Tandem's active/standby pairs
  description: |
    Shows Tandem's HAPairs as each data center sees them (roles, epoch, peer,
    sync, volumes, DNS), previews what a SyncPolicy copies to the standby, and
    runs and follows planned switchovers, failovers and drills.
  caveats: |
    The plugin talks to the Tandem operator's CRDs; install the operator in
    both data centers first (helm install tandem charts/tandem).
  platforms:
$platform_entries
YAML
echo "dist: $(ls "$dist" | wc -l) files in $dist for $version"
