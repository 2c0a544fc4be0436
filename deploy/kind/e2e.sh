#!/usr/bin/env bash
# End-to-end tests on a kind cluster, for machines with a Docker engine.
#   deploy/kind/e2e.sh            create the cluster, build and load the image, install, test
#   KEEP=1 deploy/kind/e2e.sh     leave the cluster running afterwards
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

if [ -f deploy/kustomization.yaml ]; then
  step "installing the operator from deploy/"
  kubectl --kubeconfig "$KUBECONFIG_FILE" apply -k deploy/
fi

step "running the end-to-end tests against kind"
make install
set +e
FTMOE_KUBECONFIG="$KUBECONFIG_FILE" .venv/bin/pytest -m cluster "$@"
status=$?
set -e

if [ -z "${KEEP:-}" ]; then
  step "deleting kind cluster $CLUSTER"
  kind delete cluster --name "$CLUSTER"
fi
exit $status
