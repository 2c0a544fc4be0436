"""`make demo`: the local cluster with a sample workload, and what to run next.

The operator's story (predict, annotate, cordon, evict, recover) is added to this
script as the operator lands; until then it brings up the cluster and a workload.
"""

from __future__ import annotations

import json
import sys

from ftmoe.cluster import ClusterError
from ftmoe.cluster.local import LocalCluster

WORKLOAD = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "web", "namespace": "demo", "labels": {"app": "web"}},
    "spec": {
        "replicas": 12,
        "selector": {"matchLabels": {"app": "web"}},
        "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {
                "containers": [{
                    "name": "web",
                    "image": "registry.invalid/web:1",
                    "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}},
                }],
            },
        },
    },
}


def main() -> int:
    cluster = LocalCluster()
    try:
        cluster.up()
        cluster.kubectl("create", "namespace", "demo", check=False)
        cluster.kubectl("apply", "-f", "-", input=json.dumps(WORKLOAD))
        cluster.kubectl("-n", "demo", "rollout", "status", "deployment/web", "--timeout=120s", timeout=150)
    except ClusterError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(cluster.kubectl("-n", "demo", "get", "pods", "-o", "wide").stdout)
    print(
        "The local cluster is up with a sample workload. Try:\n"
        "  .venv/bin/ftmoe cluster kubectl get nodes -L topology.kubernetes.io/zone\n"
        "  .venv/bin/ftmoe cluster kubectl -n demo get pods -o wide\n"
        "  .venv/bin/ftmoe cluster status\n"
        "  # live simulated metrics and a memory leak on node-3 (Ctrl-C to stop):\n"
        "  .venv/bin/ftmoe simulate serve --fault-rate 0 --inject memory-leak:node-3@5\n"
        "  .venv/bin/ftmoe cluster kubectl get node node-3 -o jsonpath='{.status.conditions}'\n"
        "  .venv/bin/ftmoe cluster down        # stop everything\n"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
