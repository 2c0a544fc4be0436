#!/usr/bin/env bash
# End-to-end tests on a kind cluster, for machines with a Docker engine.
#   deploy/kind/e2e.sh            create the cluster, build and load the image, install it with
#                                 the Helm chart, see it write NodeFaultPredictions, then run the
#                                 cluster tests
#   KEEP=1 deploy/kind/e2e.sh     leave the cluster running afterwards
# NOT RUN where this project is developed: those machines have no Docker engine (the local
# cluster, `make test`, covers the same tests there). It exits 2 with that message here.
set -euo pipefail
cd "$(dirname "$0")/../.."

CLUSTER=${CLUSTER:-ftmoe}
IMAGE=${IMAGE:-ftmoe-operator:dev}
KUBECONFIG_FILE=${KUBECONFIG_FILE:-$PWD/.kind-kubeconfig}

if ! command -v docker >/dev/null 2>&1; then
  echo "error: docker is not installed. kind runs Kubernetes nodes as Docker containers," >&2
  echo "       so this script needs a Docker engine. Without one, use the local cluster:" >&2
  echo "       make test   (real control plane binaries + kwok, no Docker needed)" >&2
  exit 2
fi
if ! docker info >/dev/null 2>&1; then
  echo "error: the docker client is installed but no Docker engine answers (\`docker info\` failed)." >&2
  echo "       Start the engine (or fix DOCKER_HOST), or use \`make test\` for the local cluster." >&2
  exit 2
fi
if ! command -v kind >/dev/null 2>&1; then
  echo "==> installing kind with go install (needs Go)"
  GOTOOLCHAIN=local go install sigs.k8s.io/kind@v0.33.0
  PATH="$(go env GOPATH)/bin:$PATH"
fi

step() { echo "==> [$(date +%H:%M:%S)] $*"; }

if ! kind get clusters | grep -qx "$CLUSTER"; then
  step "creating kind cluster $CLUSTER"
  kind create cluster --name "$CLUSTER" --config deploy/kind/cluster.yaml --kubeconfig "$KUBECONFIG_FILE" --wait 180s
else
  kind get kubeconfig --name "$CLUSTER" > "$KUBECONFIG_FILE"
fi

step "building image $IMAGE"
docker build -t "$IMAGE" .
step "loading image into kind"
kind load docker-image "$IMAGE" --name "$CLUSTER"

make install
HELM=$(command -v helm || .venv/bin/python -c "
from ftmoe.cluster.toolchain import Toolchain
t = Toolchain(); t.bin.mkdir(parents=True, exist_ok=True)
t.helm_ok() or t.build_helm()
print(t.binaries().helm)")
step "installing the image with the chart (deploy/helm/ftmoe-operator)"
"$HELM" --kubeconfig "$KUBECONFIG_FILE" upgrade --install ftmoe deploy/helm/ftmoe-operator \
  --namespace ftmoe-system --create-namespace \
  --set image.repository="${IMAGE%:*}" --set image.tag="${IMAGE##*:}" --set image.pullPolicy=Never --wait --timeout 5m
step "waiting for the image's operator to write NodeFaultPredictions for the first policy"
for _ in $(seq 60); do
  if [ -n "$(kubectl --kubeconfig "$KUBECONFIG_FILE" get nfp -o name 2>/dev/null)" ]; then break; fi
  sleep 5
done
kubectl --kubeconfig "$KUBECONFIG_FILE" get nfp | grep -q observe-all || {
  echo "error: the operator from the image wrote no NodeFaultPrediction in 5 minutes" >&2
  kubectl --kubeconfig "$KUBECONFIG_FILE" -n ftmoe-system logs deploy/ftmoe-operator --tail=50 >&2
  exit 1
}
# The tests run their own operator (as its ServiceAccount); the chart's must not hold the Lease.
"$HELM" --kubeconfig "$KUBECONFIG_FILE" uninstall ftmoe --namespace ftmoe-system --wait

step "running the end-to-end tests against kind"
set +e
FTMOE_KUBECONFIG="$KUBECONFIG_FILE" .venv/bin/pytest -m cluster "$@"
status=$?
set -e

if [ -z "${KEEP:-}" ]; then
  step "deleting kind cluster $CLUSTER"
  kind delete cluster --name "$CLUSTER"
fi
exit $status
