#!/usr/bin/env bash
# The demo: two data centers on this machine, each with a real node next to
# its simulated ones; Tandem's operator built into an image and installed
# with helm into each, running as pods; and a tour of what the current
# version does, told by the orders service's own answers to a client that
# resolves shop.demo.test through the test bed's DNS. KEEP=1 leaves the
# test bed running and prints how to poke at it.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
work=${TANDEM_DEMO_DIR:-$root/.work/demo}
export TANDEM_TESTBED_BIN=${TANDEM_TESTBED_BIN:-$(hack/build-testbed-bins.sh)}

say()  { printf '\n\033[1m== %s\033[0m\n' "$*"; }
step() { printf '\033[2m$ %s\033[0m\n' "$*"; "$@"; }
t0=$(date +%s%N)
elapsed() { local ms=$(( ($(date +%s%N) - t0) / 1000000 )); printf '%d.%ds' $((ms / 1000)) $((ms % 1000 / 100)); }

cleanup() {
  if [ "${KEEP:-0}" = 1 ]; then return; fi
  "$work/testbed" -dir "$work" down || true
}
trap cleanup EXIT

rm -rf "$work"; mkdir -p "$work"
say "Building the operator's image and bringing up two data centers, dc-east and dc-west, and a witness"
go build -o "$work/testbed" ./hack/testbed
go build -o "$work/kubectl-tandem" ./cmd/kubectl-tandem
export PATH="$work:$PATH"   # so that `kubectl tandem` finds the plugin
step go run ./hack/image -o "$work/tandem-operator.tar" -tag ghcr.io/tandem-dev/tandem-operator:dev
echo "Each data center: a control plane, a simulated node and a real one (kubelet, containerd, runc)."
step "$work/testbed" -dir "$work" up -witness -storage -real-nodes -replication-delay 500ms -dns demo.test
E="kubectl --kubeconfig $work/dc-east.kubeconfig"
W="kubectl --kubeconfig $work/dc-west.kubeconfig"
X="kubectl --kubeconfig $work/witness.kubeconfig"
$X create namespace tandem-system >/dev/null   # where the pairs' Leases live
EAST_IP=$("$work/testbed" -dir "$work" address dc-east)
WEST_IP=$("$work/testbed" -dir "$work" address dc-west)
step $E get nodes -o wide

say "helm install of the operator into each data center, from the image built above ($(elapsed))"
HELM=${HELM:-$root/bin/helm}
for dc in dc-east dc-west; do
  "$work/testbed" -dir "$work" import "$dc" "$work/tandem-operator.tar"
  HELM_CACHE_HOME="$work/helm" HELM_CONFIG_HOME="$work/helm" HELM_DATA_HOME="$work/helm" \
    "$HELM" install tandem charts/tandem --kubeconfig "$work/$dc.kubeconfig" --namespace tandem-system \
    --create-namespace --values hack/demo-values.yaml --set clusterName="$dc" --wait --timeout 2m | sed -n '1,/^STATUS/p' | sed 's/^/  /'
done
step $E get pods -n tandem-system -o wide
echo "Two replicas per data center, leader-elected; the chart brought the CRDs, the RBAC and the admission policy."

# app TARGET ... is a client of the orders service: a name is resolved
# through the test bed's BIND, as a user's client would.
app() { "$work/testbed" -dir "$work" app "$@"; }
# dns NAME prints what the test bed's BIND answers for NAME.
dns() { "$work/testbed" -dir "$work" dns "$@"; }
# wait_dns NAME WANT waits until BIND answers WANT for NAME.
wait_dns() {
  local i
  for i in $(seq 300); do [ "$(dns "$1")" = "$2" ] && return 0; sleep 0.2; done
  echo "BIND still answers $(dns "$1") for $1 after 60s, not $2" >&2; return 1
}
# replica_after T waits until dc-east's or dc-west's active side reports a
# snapshot of orders taken after T (RFC 3339) usable on the other side.
replica_after() {
  local k="kubectl --kubeconfig $work/$1.kubeconfig" t
  until t=$($k get hapair shop -n shop -o jsonpath='{.status.volumes.claims[?(@.name=="orders")].newestReplica}') && [[ -n $t && $t > $2 ]]; do sleep 0.2; done
}

say "dc-east runs the shop ($(elapsed))"
$E label nodes --all topology.kubernetes.io/zone=east-1 >/dev/null
$E create namespace shop >/dev/null
$E apply -f hack/demo-app.yaml -f hack/demo-orders.yaml >/dev/null
$E wait --for=condition=Available deployment/storefront -n shop --timeout=60s >/dev/null
until [ "$($E get pods -n shop -l app=orders -o jsonpath='{.items[0].status.phase}' 2>/dev/null)" = Running ]; do sleep 0.2; done
step $E get deployments,configmaps,services,pvc -n shop -l app.kubernetes.io/part-of=shop
step $E get pods -n shop -o wide
echo "The orders service runs on the real node, serving on dc-east's address $EAST_IP, with the orders PVC mounted;"
echo "it is not Ready until its volume holds its data. The first order initialises it:"
step app "$EAST_IP" put order-1 "2 coffees (taken on dc-east)"
$E wait --for=condition=Available deployment/orders -n shop --timeout=60s >/dev/null

say "Pairing the data centers: kubeconfig Secrets and the DNS grant on each side, the HAPair and SyncPolicy on dc-east only ($(elapsed))"
for pair in "dc-east dc-west" "dc-west dc-east"; do
  set -- $pair
  k="kubectl --kubeconfig $work/$1.kubeconfig"
  $k create namespace shop >/dev/null 2>&1 || true
  # The platform team grants the shop's namespace the names its pair
  # points through external-dns (docs/security.md), on each side.
  $k annotate --overwrite namespace shop tandem.dev/dns-names="shop.demo.test,drill.shop.demo.test" >/dev/null
  # Each side holds the kubeconfigs of the other side and of the witness,
  # with certificates embedded.
  # The operators run in pods: the kubeconfigs name the API servers where
  # pods reach them (each data center's address on the pod network).
  $k -n shop create secret generic "$2-kubeconfig" \
    --from-literal=kubeconfig="$("$work/testbed" -dir "$work" pod-kubeconfig "$2")" >/dev/null
  $k -n shop create secret generic witness-kubeconfig \
    --from-literal=kubeconfig="$("$work/testbed" -dir "$work" pod-kubeconfig witness)" >/dev/null
done
$E apply -f config/samples/tandem_v1alpha1_syncpolicy.yaml >/dev/null
sed -e "s/DNS_SERVER/$(dns)/" -e "s/EAST_IP/$EAST_IP/" -e "s/WEST_IP/$WEST_IP/" hack/demo-pair.yaml | $E apply -f - >/dev/null
echo "The sample policy copies what is labelled app.kubernetes.io/part-of=shop, except Secrets,"
echo "maps the image registry and storage class, drops the zone nodeSelector, patches SITE."
echo "The pair (hack/demo-pair.yaml): Automatic failover, a witness Lease of 4s, probes every 1s;"
echo "shop.demo.test answers $EAST_IP (dc-east's front door) while dc-east is active and $WEST_IP while dc-west is."
step kubectl tandem plan shop -n shop --kubeconfig "$work/dc-east.kubeconfig"

say "dc-east copies the shop to dc-west ($(elapsed))"
t1=$(date +%s%N)
$E wait --for=condition=Synced hapair/shop -n shop --timeout=60s >/dev/null
echo "  Synced in $(( ($(date +%s%N) - t1) / 1000000 )) ms"
step $E get hapairs,syncpolicies -n shop
step $W get deployments,configmaps,services,pvc -n shop
echo "dc-west's storefront waits at 0 replicas (warm standby), its source count kept for promotion:"
$W get deployment storefront -n shop -o jsonpath='  image {.spec.template.spec.containers[0].image}, replicas {.spec.replicas}, tandem.dev/source-replicas={.metadata.annotations.tandem\.dev/source-replicas}{"\n"}'
$W get configmap shop-config -n shop -o jsonpath='  shop-config SITE={.data.SITE} (patched by the policy; dc-east says east){"\n"}'
until $W get hapair shop -n shop >/dev/null 2>&1; do sleep 0.2; done
echo "The pair and policy were applied on dc-east only; dc-east mirrored them to dc-west:"
until [ -n "$($W get hapair shop -n shop -o jsonpath='{.status.localRole}')" ]; do sleep 0.2; done
$W get hapair shop -n shop -o jsonpath='  dc-west sees itself as {.status.localRole}, {.status.activeCluster} active at epoch {.status.epoch}{"\n"}'

say "shop.demo.test follows the active side: dc-east publishes it through its flip instance of external-dns ($(elapsed))"
t1=$(date +%s%N)
wait_dns shop.demo.test "$EAST_IP"
echo "  BIND answers shop.demo.test: $(dns shop.demo.test) ($(( ($(date +%s%N) - t1) / 1000000 )) ms after the first sync)"
step app shop.demo.test get order-1
$E wait --for=condition=TrafficReady hapair/shop -n shop --timeout=60s >/dev/null
$E get hapair shop -n shop -o jsonpath='  TrafficReady: {.status.conditions[?(@.type=="TrafficReady")].message}{"\n"}'

say "dc-east protects the orders volume: a CSI snapshot every 10s, usable on dc-west ($(elapsed))"
t1=$(date +%s%N)
$E wait --for=condition=VolumesProtected hapair/shop -n shop --timeout=90s >/dev/null
echo "  VolumesProtected $(( ($(date +%s%N) - t1) / 1000000 )) ms after the first sync finished"
$E get hapair shop -n shop -o jsonpath='  {.status.conditions[?(@.type=="VolumesProtected")].message}{"\n"}'
step $E get volumesnapshots -n shop
step $W get volumesnapshots -n shop
echo "dc-west holds no PVC: it gets orders, with its data, when it is promoted."

say "A change on dc-east reaches dc-west within about a second"
t1=$(date +%s%N)
$E -n shop patch configmap feature-flags --type merge -p '{"data":{"new-checkout":"false"}}' >/dev/null
until [ "$($W -n shop get configmap feature-flags -o jsonpath='{.data.new-checkout}')" = false ]; do sleep 0.05; done
echo "  feature-flags changed on dc-west $(( ($(date +%s%N) - t1) / 1000000 )) ms after the change on dc-east (kubectl polling included)"
$E -n shop delete configmap feature-flags >/dev/null
until ! $W -n shop get configmap feature-flags >/dev/null 2>&1; do sleep 0.05; done
echo "  deleted on dc-east, pruned on dc-west"

say "Bad input is refused by the API server, naming the field"
bad_primary=$(sed 's/^  primary: dc-east/  primary: dc-north/' config/samples/tandem_v1alpha1_hapair.yaml | sed 's/name: shop$/name: typo/')
echo "\$ kubectl apply (an HAPair whose primary is dc-north)"
echo "$bad_primary" | $E apply -f - 2>&1 | sed 's/^/  /' || true
# The admission policy reads HAPairs through an informer; give it a moment.
for _ in $(seq 50); do
  out=$(sed 's/targetCluster: dc-west/targetCluster: dc-north/' config/samples/tandem_v1alpha1_switchover.yaml | $E create --dry-run=server -f - 2>&1) || break
  sleep 0.2
done
echo "\$ kubectl create (a Switchover targeting dc-north)"
echo "$out" | sed 's/^  */  /'

say "A rehearsal: an isolated drill brings dc-west's copy up next to production ($(elapsed))"
echo "Its check asks dc-west's copy of the orders service, restored from the newest snapshot, for order 1:"
step kubectl tandem drill shop --to dc-west --name rehearsal --check-http "http://$WEST_IP:8080/records/order-1" -n shop --kubeconfig "$work/dc-east.kubeconfig"
echo "  roles and epoch untouched, dc-west back at 0; drill.shop.demo.test now answers: $(dns drill.shop.demo.test), shop.demo.test still $(dns shop.demo.test)"

say "A planned switchover to dc-west, and back: nothing lost ($(elapsed))"
$E -n shop patch configmap shop-config --type merge -p '{"data":{"LAST_WRITE":"just before the switchover"}}' >/dev/null
step app shop.demo.test put order-2 "a croissant (just before the switchover)"
step kubectl tandem switchover shop --to dc-west --name to-west -n shop --kubeconfig "$work/dc-east.kubeconfig"
$W get configmap shop-config -n shop -o jsonpath='  dc-west has LAST_WRITE={.data.LAST_WRITE}{"\n"}'
echo "  BIND answers shop.demo.test: $(dns shop.demo.test) (dc-west's address); the orders, from dc-west's restored volume:"
step app shop.demo.test get order-1
step app shop.demo.test get order-2
step kubectl tandem status shop -n shop --kubeconfig "$work/dc-west.kubeconfig"
kubectl tandem switchover shop --to dc-east --name to-east -n shop --kubeconfig "$work/dc-west.kubeconfig" | grep -E '^(RTO|Phase|Traffic)' | sed 's/^/  and back to dc-east: /'
echo "  BIND answers shop.demo.test: $(dns shop.demo.test)"
step $E get hapair shop -n shop

say "dc-east goes dark: its control plane, its node and everything on it stop ($(elapsed))"
step app shop.demo.test put order-3 "tea for two (before dc-east goes dark)"
written=$(date -u +%Y-%m-%dT%H:%M:%SZ); sleep 1
replica_after dc-east "$written"
echo "  order 3 is in a snapshot usable on dc-west; then dc-east takes order 4 and goes dark,"
echo "  its control plane, its operators' pods and the orders service with it"
step app shop.demo.test put order-4 "a cake (after dc-east's last snapshot)"
step "$work/testbed" -dir "$work" stop dc-east
t1=$(date +%s%N)
until [ "$($W get hapair shop -n shop -o jsonpath='{.status.localRole}/{.status.epoch}')" = Active/4 ]; do sleep 0.1; done
echo "  dc-west Active at epoch 4 after $(( ($(date +%s%N) - t1) / 1000000 )) ms: 3 failed probe rounds, then the witness Lease expired and dc-west took it"
$W wait --for=condition=Available deployment/storefront deployment/orders -n shop --timeout=60s >/dev/null
echo "  storefront and orders Available on dc-west after $(( ($(date +%s%N) - t1) / 1000000 )) ms"
$W wait --for=jsonpath='{.status.phase}'=Succeeded switchover/shop-failover-4 -n shop --timeout=60s >/dev/null
step $W get switchovers -n shop
$W get switchover shop-failover-4 -n shop -o jsonpath='{range .status.steps[*]}  {.name}: {.phase}, {.message}{"\n"}{end}'
wait_dns shop.demo.test "$WEST_IP"
echo "  BIND answers shop.demo.test: $(dns shop.demo.test): dc-west's flip instance of external-dns moved it, with dc-east dark."
echo "  The orders, from dc-west's volume restored from the newest snapshot: order 3 is there, order 4 came"
echo "  after that snapshot and is within the data-loss window the failover reports:"
step app shop.demo.test get order-3
app shop.demo.test get order-4 2>&1 | sed 's/^/  /' || true
$W get switchover shop-failover-4 -n shop -o jsonpath='  data-loss window {.status.dataLossWindow}: changes on dc-east after {.status.dataLossSince}{"\n"}'
step kubectl tandem status shop -n shop --kubeconfig "$work/dc-west.kubeconfig"

say "dc-east comes back and finds it was replaced ($(elapsed))"
step "$work/testbed" -dir "$work" start dc-east
t1=$(date +%s%N)
until [ "$($E get hapair shop -n shop -o jsonpath='{.status.localRole}/{.status.epoch}' 2>/dev/null)" = Standby/4 ]; do sleep 0.2; done
echo "  dc-east demoted itself $(( ($(date +%s%N) - t1) / 1000000 )) ms after it started"
$E get deployment storefront -n shop -o jsonpath='  dc-east storefront: replicas {.spec.replicas}, tandem.dev/source-replicas={.metadata.annotations.tandem\.dev/source-replicas} (nothing deleted){"\n"}'
$E get events.events.k8s.io -n shop --field-selector reason=Demoted -o jsonpath='{range .items[*]}  event Demoted: {.note}{"\n"}{end}'
until [ -n "$($E get hapair shop -n shop -o jsonpath='{.status.volumes.kept[0].readyToUse}')" ]; do sleep 0.2; done
until ! $E get pvc orders -n shop >/dev/null 2>&1; do sleep 0.2; done
$E get hapair shop -n shop -o jsonpath='  dc-east kept its own orders volume, with order 4, in VolumeSnapshot {.status.volumes.kept[0].name} before giving up the PVC{"\n"}'
$E get deployment orders -n shop -o jsonpath='  dc-east orders: replicas {.spec.replicas}; its container stopped{"\n"}'
echo "  dc-east's external-dns came back; no endpoint there can move the name; BIND still answers shop.demo.test: $(dns shop.demo.test)"
step $E get hapair shop -n shop

say "Done in $(elapsed)"
cat <<EOT
This version has the API with admission validation, the operator as an
image installed with helm, the local test bed with CSI storage and a real
node per data center (kubelet, containerd, runc), the sync engine (dependency-ordered copies, kept current,
verified, pruned), roles (epochs, the witness Lease, self-fencing, demotion
on rejoin; docs/failure-model.md), switchovers: planned, failover, drills
(docs/switchover.md), volume data carried by CSI snapshots
(docs/volumes.md), and DNS records and routes that follow the active side,
verified at the authoritative servers (docs/traffic.md).
EOT
if [ "${KEEP:-0}" = 1 ]; then
  cat <<EOT

The test bed is still up (KEEP=1):
  $E get hapairs -A
  $W get pods -n tandem-system -o wide
  $work/testbed -dir $work app shop.demo.test get order-1
  $work/testbed -dir $work status
Stop it with: $work/testbed -dir $work down
EOT
fi
