#!/usr/bin/env bash
# The demo: two data centers on this machine, Tandem's operator running for
# each, and a tour of what the current version does. KEEP=1 leaves the test
# bed and operators running and prints how to poke at them.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
work=${TANDEM_DEMO_DIR:-$root/.work/demo}
export TANDEM_TESTBED_BIN=${TANDEM_TESTBED_BIN:-$(hack/build-testbed-bins.sh)}

say()  { printf '\n\033[1m== %s\033[0m\n' "$*"; }
step() { printf '\033[2m$ %s\033[0m\n' "$*"; "$@"; }
t0=$(date +%s%N)
elapsed() { local ms=$(( ($(date +%s%N) - t0) / 1000000 )); printf '%d.%ds' $((ms / 1000)) $((ms % 1000 / 100)); }

pids=()
cleanup() {
  if [ "${KEEP:-0}" = 1 ]; then return; fi
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  go run ./hack/testbed -dir "$work" down || true
}
trap cleanup EXIT

rm -rf "$work"; mkdir -p "$work"
say "Building the operator and bringing up two data centers, dc-east and dc-west, and a witness"
go build -o "$work/tandem-operator" ./cmd/tandem-operator
go build -o "$work/kubectl-tandem" ./cmd/kubectl-tandem
export PATH="$work:$PATH"   # so that `kubectl tandem` finds the plugin
step go run ./hack/testbed -dir "$work" up -witness -storage -replication-delay 500ms -dns demo.test
E="kubectl --kubeconfig $work/dc-east.kubeconfig"
W="kubectl --kubeconfig $work/dc-west.kubeconfig"
X="kubectl --kubeconfig $work/witness.kubeconfig"
$X create namespace tandem-system >/dev/null   # where the pairs' Leases live

say "Installing Tandem's CRDs and admission policy into each data center ($(elapsed))"
for k in "$E" "$W"; do
  $k apply --server-side -f config/crd/bases >/dev/null
  $k apply --server-side -f config/admission/switchover_target_policy.yaml >/dev/null
  $k create namespace tandem-system >/dev/null
  $k wait --for=condition=Established crd --all --timeout=60s >/dev/null
done
$E get crd -o custom-columns=CRD:.metadata.name,ESTABLISHED:.status.conditions[1].status

say "Starting an operator for each data center, as local processes ($(elapsed))"
declare -A operator
start_operator() {
  local dc=$1 port
  port=$(go run ./hack/testbed freeport)
  "$work/tandem-operator" --kubeconfig "$work/$dc.kubeconfig" --cluster-name "$dc" \
    --leader-election-namespace tandem-system --metrics-bind-address 0 \
    --health-probe-bind-address "127.0.0.1:$port" >>"$work/operator-$dc.log" 2>&1 &
  pids+=($!); operator[$dc]=$!
  echo "  $dc operator: pid $!, log $work/operator-$dc.log, health http://127.0.0.1:$port/readyz"
}
for dc in dc-east dc-west; do start_operator "$dc"; done

# orders FILE CLUSTER prints where the CSI driver of the test bed keeps a file
# of the orders PVC's volume on CLUSTER (there is no kubelet to mount it).
orders() {
  local k="kubectl --kubeconfig $work/$2.kubeconfig" pv
  pv=$($k get pvc orders -n shop -o jsonpath='{.spec.volumeName}')
  echo "$work/storage/$2/volumes/$($k get pv "$pv" -o jsonpath='{.spec.csi.volumeHandle}')/$1"
}
# dns NAME prints what the test bed's BIND answers for NAME.
go build -o "$work/testbed" ./hack/testbed
dns() { "$work/testbed" -dir "$work" dns "$1"; }
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
$E apply -f hack/demo-app.yaml >/dev/null
$E wait --for=condition=Available deployment/storefront -n shop --timeout=60s >/dev/null
step $E get deployments,configmaps,services,pvc -n shop -l app.kubernetes.io/part-of=shop
until [ "$($E get pvc orders -n shop -o jsonpath='{.status.phase}')" = Bound ]; do sleep 0.2; done
echo "order 1 (taken on dc-east)" >"$(orders orders.log dc-east)"
echo "The orders volume holds orders.log: $(cat "$(orders orders.log dc-east)")"

say "Pairing the data centers: kubeconfig Secrets on each side, the HAPair and SyncPolicy on dc-east only ($(elapsed))"
for pair in "dc-east dc-west" "dc-west dc-east"; do
  set -- $pair
  k="kubectl --kubeconfig $work/$1.kubeconfig"
  $k create namespace shop >/dev/null 2>&1 || true
  # Each side holds the kubeconfigs of the other side and of the witness,
  # with certificates embedded.
  $k -n shop create secret generic "$2-kubeconfig" \
    --from-literal=kubeconfig="$(kubectl --kubeconfig "$work/$2.kubeconfig" config view --raw --flatten)" >/dev/null
  $k -n shop create secret generic witness-kubeconfig \
    --from-literal=kubeconfig="$(kubectl --kubeconfig "$work/witness.kubeconfig" config view --raw --flatten)" >/dev/null
done
$E apply -f config/samples/tandem_v1alpha1_syncpolicy.yaml >/dev/null
sed "s/DNS_SERVER/$("$work/testbed" -dir "$work" dns)/" hack/demo-pair.yaml | $E apply -f - >/dev/null
echo "The sample policy copies what is labelled app.kubernetes.io/part-of=shop, except Secrets,"
echo "maps the image registry and storage class, drops the zone nodeSelector, patches SITE."
echo "The pair (hack/demo-pair.yaml): Automatic failover, a witness Lease of 4s, probes every 1s;"
echo "shop.demo.test answers 10.0.1.10 while dc-east is active and 10.0.2.10 while dc-west is."
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
wait_dns shop.demo.test 10.0.1.10
echo "  BIND answers shop.demo.test: $(dns shop.demo.test) ($(( ($(date +%s%N) - t1) / 1000000 )) ms after the first sync)"
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
step kubectl tandem drill shop --to dc-west --name rehearsal -n shop --kubeconfig "$work/dc-east.kubeconfig"
echo "  roles and epoch untouched, dc-west back at 0; drill.shop.demo.test now answers: $(dns drill.shop.demo.test), shop.demo.test still $(dns shop.demo.test)"

say "A planned switchover to dc-west, and back: nothing lost ($(elapsed))"
$E -n shop patch configmap shop-config --type merge -p '{"data":{"LAST_WRITE":"just before the switchover"}}' >/dev/null
echo "order 2 (written on dc-east just before the switchover)" >>"$(orders orders.log dc-east)"
step kubectl tandem switchover shop --to dc-west --name to-west -n shop --kubeconfig "$work/dc-east.kubeconfig"
$W get configmap shop-config -n shop -o jsonpath='  dc-west has LAST_WRITE={.data.LAST_WRITE}{"\n"}'
echo "  BIND answers shop.demo.test: $(dns shop.demo.test) (dc-west's address)"
echo "  dc-west's orders volume, restored from the final snapshot:"; sed 's/^/    /' "$(orders orders.log dc-west)"
step kubectl tandem status shop -n shop --kubeconfig "$work/dc-west.kubeconfig"
kubectl tandem switchover shop --to dc-east --name to-east -n shop --kubeconfig "$work/dc-west.kubeconfig" | grep -E '^(RTO|Phase|Traffic)' | sed 's/^/  and back to dc-east: /'
echo "  BIND answers shop.demo.test: $(dns shop.demo.test)"
step $E get hapair shop -n shop

say "dc-east goes dark: its control plane and its operator stop ($(elapsed))"
echo "order 3 (written on dc-east before it goes dark)" >>"$(orders orders.log dc-east)"
written=$(date -u +%Y-%m-%dT%H:%M:%SZ); sleep 1
replica_after dc-east "$written"
echo "  order 3 is in a snapshot usable on dc-west; then dc-east writes order 4 and dies"
echo "order 4 (written on dc-east after its last snapshot)" >>"$(orders orders.log dc-east)"
kill "${operator[dc-east]}"; wait "${operator[dc-east]}" 2>/dev/null || true
step go run ./hack/testbed -dir "$work" stop dc-east
t1=$(date +%s%N)
until [ "$($W get hapair shop -n shop -o jsonpath='{.status.localRole}/{.status.epoch}')" = Active/4 ]; do sleep 0.1; done
echo "  dc-west Active at epoch 4 after $(( ($(date +%s%N) - t1) / 1000000 )) ms: 3 failed probe rounds, then the witness Lease expired and dc-west took it"
$W wait --for=condition=Available deployment/storefront -n shop --timeout=60s >/dev/null
echo "  storefront Available on dc-west after $(( ($(date +%s%N) - t1) / 1000000 )) ms"
$W wait --for=jsonpath='{.status.phase}'=Succeeded switchover/shop-failover-4 -n shop --timeout=60s >/dev/null
step $W get switchovers -n shop
$W get switchover shop-failover-4 -n shop -o jsonpath='{range .status.steps[*]}  {.name}: {.phase}, {.message}{"\n"}{end}'
echo "  dc-west's orders volume, restored from the newest snapshot (order 4 came after it):"; sed 's/^/    /' "$(orders orders.log dc-west)"
wait_dns shop.demo.test 10.0.2.10
echo "  BIND answers shop.demo.test: $(dns shop.demo.test): dc-west's flip instance of external-dns moved it, with dc-east dark"
step kubectl tandem status shop -n shop --kubeconfig "$work/dc-west.kubeconfig"

say "dc-east comes back and finds it was replaced ($(elapsed))"
step go run ./hack/testbed -dir "$work" start dc-east
t1=$(date +%s%N)
start_operator dc-east
until [ "$($E get hapair shop -n shop -o jsonpath='{.status.localRole}/{.status.epoch}' 2>/dev/null)" = Standby/4 ]; do sleep 0.2; done
echo "  dc-east demoted itself $(( ($(date +%s%N) - t1) / 1000000 )) ms after it started"
$E get deployment storefront -n shop -o jsonpath='  dc-east storefront: replicas {.spec.replicas}, tandem.dev/source-replicas={.metadata.annotations.tandem\.dev/source-replicas} (nothing deleted){"\n"}'
$E get events.events.k8s.io -n shop --field-selector reason=Demoted -o jsonpath='{range .items[*]}  event Demoted: {.note}{"\n"}{end}'
until [ -n "$($E get hapair shop -n shop -o jsonpath='{.status.volumes.kept[0].readyToUse}')" ]; do sleep 0.2; done
until ! $E get pvc orders -n shop >/dev/null 2>&1; do sleep 0.2; done
$E get hapair shop -n shop -o jsonpath='  dc-east kept its own orders volume, with order 4, in VolumeSnapshot {.status.volumes.kept[0].name} before giving up the PVC{"\n"}'
echo "  dc-east's external-dns came back; no endpoint there can move the name; BIND still answers shop.demo.test: $(dns shop.demo.test)"
step $E get hapair shop -n shop

say "Done in $(elapsed)"
cat <<EOT
This version has the API with admission validation, the local test bed with
CSI storage, the sync engine (dependency-ordered copies, kept current,
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
  $W get hapairs -A
  go run ./hack/testbed -dir $work status
Stop it with: kill ${pids[*]}; go run ./hack/testbed -dir $work down
EOT
fi
