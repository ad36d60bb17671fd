#!/usr/bin/env bash
# Builds (once) the binaries the local test bed runs, and caches them outside
# the checkout keyed by version, so a fresh clone in CI pays the build once per
# machine. Prints the bin directory on stdout when done.
#
#   kube-apiserver, kube-controller-manager, kube-scheduler  v1.37.1
#   etcd                                                     v3.6.16
#   kwok, kwokctl                                            v0.8.0
#   snapshot-controller, csi-snapshotter                     v8.7.0
#   csi-provisioner                                          v6.3.0
#   tandem-csi (the test bed's own CSI driver, from test/csidriver)
#   external-dns                                             v0.21.0
#   kubelet                                                  v1.37.1
#   containerd, ctr, containerd-shim-runc-v2                 v2.4.2
#   CNI plugins bridge, host-local, loopback                 v1.10.0
#
# Everything comes from the Go module proxy; see ../shared/TESTBED.md for why
# the wrapper modules under hack/tools exist.
set -euo pipefail

KUBE_VERSION=v1.37.1
ETCD_VERSION=v3.6.16
KWOK_VERSION=v0.8.0
SNAPSHOTTER_VERSION=v8.7.0
PROVISIONER_VERSION=v6.3.0
# v0.23 needs a newer Go than the machines have.
EXTERNALDNS_VERSION=v0.21.0
CONTAINERD_VERSION=v2.4.2
CNI_VERSION=v1.10.0

root=$(cd "$(dirname "$0")/.." && pwd)
cache=${TANDEM_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/tandem}
bin=$cache/bin/kube-$KUBE_VERSION-etcd-$ETCD_VERSION-kwok-$KWOK_VERSION
# The CSI sidecars are cached apart, so adding them did not rebuild the
# control plane on machines that already had it.
csibin=$cache/bin/snapshotter-$SNAPSHOTTER_VERSION-provisioner-$PROVISIONER_VERSION
dnsbin=$cache/bin/external-dns-$EXTERNALDNS_VERSION
# What a real node runs (kubelet, containerd, the CNI plugins): the kubelet
# builds in the control plane's wrapper module, the rest install directly.
nodebin=$cache/bin/node-kube-$KUBE_VERSION-containerd-$CONTAINERD_VERSION-cni-$CNI_VERSION
mkdir -p "$bin" "$csibin" "$dnsbin" "$nodebin"

log() { echo "build-testbed-bins: $*" >&2; }

# Builds into a temp name and renames, so an interrupted build never leaves a
# truncated binary that a later run would mistake for a finished one.
build_kube() {
  local name=$1 dir=${2:-$bin}
  [ -x "$dir/$name" ] && return 0
  log "building $name $KUBE_VERSION (several minutes on a cold cache)"
  local minor=${KUBE_VERSION#v1.}; minor=${minor%%.*}
  (cd "$root/hack/tools/kube" && CGO_ENABLED=0 go build -trimpath -o "$dir/.$name.tmp" \
    -ldflags "-s -w -X k8s.io/component-base/version.gitVersion=$KUBE_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor" \
    "k8s.io/kubernetes/cmd/$name")
  mv "$dir/.$name.tmp" "$dir/$name"
}

build_etcd() {
  [ -x "$bin/etcd" ] && return 0
  log "building etcd $ETCD_VERSION"
  (cd "$root/hack/tools/etcd" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$bin/.etcd.tmp" go.etcd.io/etcd/server/v3)
  mv "$bin/.etcd.tmp" "$bin/etcd"
}

# go_install NAME PKG@VERSION DIR installs a tool from the module proxy into
# DIR (go install honours the tool's own go.mod, replace directives included).
go_install() {
  local name=$1 pkg=$2 dir=$3 tags=${4:-}
  [ -x "$dir/$name" ] && return 0
  log "building $name ${pkg#*@}"
  local gobin; gobin=$(mktemp -d)
  GOBIN=$gobin CGO_ENABLED=0 go install -trimpath -tags "$tags" -ldflags "-s -w" "$pkg"
  mv "$gobin/$name" "$dir/$name"
  rmdir "$gobin"
}

build_csi() {
  local name=$1 module=$2 pkg=$3
  [ -x "$csibin/$name" ] && return 0
  log "building $name"
  (cd "$root/hack/tools/$module" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$csibin/.$name.tmp" "$pkg")
  mv "$csibin/.$name.tmp" "$csibin/$name"
}

want=${*:-kube-apiserver etcd kube-controller-manager kube-scheduler kwok kwokctl}
for b in $want; do
  case $b in
    kube-apiserver|kube-controller-manager|kube-scheduler) build_kube "$b" ;;
    etcd) build_etcd ;;
    kwok|kwokctl) go_install "$b" "sigs.k8s.io/kwok/cmd/$b@$KWOK_VERSION" "$bin" ;;
    snapshot-controller|csi-snapshotter)
      build_csi "$b" snapshotter "github.com/kubernetes-csi/external-snapshotter/v8/cmd/$b" ;;
    csi-provisioner)
      build_csi "$b" provisioner "github.com/kubernetes-csi/external-provisioner/v6/cmd/csi-provisioner" ;;
    # About 3 minutes on a cold cache.
    external-dns) go_install external-dns "sigs.k8s.io/external-dns@$EXTERNALDNS_VERSION" "$dnsbin" ;;
    kubelet) build_kube kubelet "$nodebin" ;;
    # No cgo: the storage drivers that need it are left out.
    containerd|ctr|containerd-shim-runc-v2)
      go_install "$b" "github.com/containerd/containerd/v2/cmd/$b@$CONTAINERD_VERSION" "$nodebin" "no_btrfs no_devmapper no_zfs" ;;
    bridge|host-local|loopback)
      sub=main; [ "$b" = host-local ] && sub=ipam
      go_install "$b" "github.com/containernetworking/plugins/plugins/$sub/$b@$CNI_VERSION" "$nodebin" ;;
    *) log "unknown binary $b"; exit 2 ;;
  esac
done
case " $want " in
  *" external-dns "*) echo "$dnsbin" ;;
  *" kubelet "*|*" containerd "*|*" bridge "*) echo "$nodebin" ;;
  *" snapshot-controller "*|*" csi-snapshotter "*|*" csi-provisioner "*) echo "$csibin" ;;
  *) echo "$bin" ;;
esac
