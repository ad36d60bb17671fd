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
say "Building the operator and bringing up two data centers, dc-east and dc-west"
go build -o "$work/tandem-operator" ./cmd/tandem-operator
step go run ./hack/testbed -dir "$work" up
E="kubectl --kubeconfig $work/dc-east.kubeconfig"
W="kubectl --kubeconfig $work/dc-west.kubeconfig"

say "Installing Tandem's CRDs and admission policy into each data center ($(elapsed))"
for k in "$E" "$W"; do
  $k apply --server-side -f config/crd/bases >/dev/null
  $k apply --server-side -f config/admission/switchover_target_policy.yaml >/dev/null
  $k create namespace tandem-system >/dev/null
  $k wait --for=condition=Established crd --all --timeout=60s >/dev/null
done
$E get crd -o custom-columns=CRD:.metadata.name,ESTABLISHED:.status.conditions[1].status

say "Starting an operator for each data center, as local processes ($(elapsed))"
for dc in dc-east dc-west; do
  port=$(go run ./hack/testbed freeport)
  "$work/tandem-operator" --kubeconfig "$work/$dc.kubeconfig" --cluster-name "$dc" \
    --leader-election-namespace tandem-system --metrics-bind-address 0 \
    --health-probe-bind-address "127.0.0.1:$port" >"$work/operator-$dc.log" 2>&1 &
  pids+=($!)
  echo "  $dc operator: pid $!, log $work/operator-$dc.log, health http://127.0.0.1:$port/readyz"
done

say "Applying the sample HAPair and SyncPolicy on both sides ($(elapsed))"
for k in "$E" "$W"; do
  $k create namespace shop >/dev/null
  $k apply -f config/samples/tandem_v1alpha1_hapair.yaml -f config/samples/tandem_v1alpha1_syncpolicy.yaml >/dev/null
done
step $E get hapairs,syncpolicies -n shop

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

say "What the operators report ($(elapsed))"
for _ in $(seq 100); do
  r=$($E get hapair shop -n shop -o jsonpath='{.status.conditions[?(@.type=="Ready")].reason}')
  [ -n "$r" ] && break; sleep 0.2
done
for k in "$E" "$W"; do
  $k get hapair shop -n shop -o jsonpath='  {.metadata.name}: Ready={.status.conditions[?(@.type=="Ready")].status} reason={.status.conditions[?(@.type=="Ready")].reason}{"\n"}  {.status.conditions[?(@.type=="Ready")].message}{"\n"}'
done

say "Done in $(elapsed)"
cat <<EOT
This version has the API, admission validation, the operator's manager and the
local test bed. Sync, peers and fencing, switchovers, volumes and traffic come
with the next issues; the operators say so on every object instead of
pretending.
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
