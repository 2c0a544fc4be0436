"""``ftmoe operator run``: the operator against any kubeconfig (or in-cluster)."""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path
from typing import Any

from ftmoe.errors import reports

log = logging.getLogger("ftmoe.operator")


class OperatorError(RuntimeError):
    pass


def register(commands: Any) -> None:
    op = commands.add_parser("operator", help="run the operator")
    sub = op.add_subparsers(dest="operator_command", metavar="ACTION", required=True)
    run = sub.add_parser("run", help="reconcile FaultTolerancePolicies (Ctrl-C to stop)")
    run.add_argument("--kubeconfig", type=Path, help="kubeconfig (default: in-cluster, else $KUBECONFIG or ~/.kube/config)")
    run.add_argument("--namespace", help="the operator's namespace, for its Lease and Secrets "
                                         "(default: $POD_NAMESPACE, the service account's, else ftmoe-system)")
    run.add_argument("--metrics-port", type=int, default=8080, help="port for /metrics (0: off)")
    run.add_argument("--health-port", type=int, default=8081, help="port for the /healthz liveness endpoint (0: off)")
    run.add_argument("--no-leader-election", action="store_true",
                     help="act without holding the Lease (only when nothing else can run an operator on this cluster)")
    run.set_defaults(func=cmd_run)


def preflight(kube: Any, namespace: str, leader_election: bool) -> None:
    """Fail early, with the fix, on what would otherwise fail on every interval."""
    from kubernetes.client.exceptions import ApiException

    from ftmoe.operator.policy import GROUP, POLICY_PLURAL, PREDICTION_PLURAL, VERSION

    for plural in (POLICY_PLURAL, PREDICTION_PLURAL):
        try:
            kube.custom.list_cluster_custom_object(GROUP, VERSION, plural, limit=1)
        except ApiException as err:
            if err.status == 404:
                raise OperatorError(f"the CRD {plural}.{GROUP} is not installed; run: kubectl apply -f crds/") from err
            if err.status == 403:
                raise OperatorError(f"not allowed to list {plural}.{GROUP}; apply deploy/base (its ClusterRole) "
                                    "or use a kubeconfig with more rights") from err
            raise
    if leader_election:
        try:
            kube.core.read_namespace(namespace)
        except ApiException as err:
            if err.status == 404:
                raise OperatorError(f"namespace {namespace!r} (for the leader Lease) does not exist; "
                                    f"create it (kubectl create namespace {namespace}) or pass --namespace") from err
            if err.status != 403:  # a least-privilege role may not read namespaces; the Lease call will tell
                raise


@reports(OperatorError)
def cmd_run(args: argparse.Namespace) -> int:
    import kopf
    from prometheus_client import start_http_server
    from urllib3.exceptions import HTTPError

    from ftmoe.operator import handlers  # noqa: F401 - registers the handlers
    from ftmoe.operator import runtime
    from ftmoe.operator.metrics import REGISTRY

    if args.kubeconfig:
        if not args.kubeconfig.is_file():
            raise OperatorError(f"--kubeconfig {args.kubeconfig}: no such file")
        os.environ["KUBECONFIG"] = str(args.kubeconfig)  # kopf logs in through the same file
    namespace = runtime.operator_namespace(args.namespace)
    rt = runtime.build(args.kubeconfig, namespace, runtime.kopf_events, leader_election=not args.no_leader_election)
    try:
        preflight(rt.deps.kube, namespace, not args.no_leader_election)
    except HTTPError as err:
        raise OperatorError(f"cannot reach the API server: {err}") from err
    runtime.install(rt)
    logging.getLogger("kopf.objects").setLevel(logging.WARNING)  # not a line per pod event
    if args.metrics_port:
        start_http_server(args.metrics_port, registry=REGISTRY)
        log.info("metrics on :%d/metrics", args.metrics_port)
    liveness = f"http://0.0.0.0:{args.health_port}/healthz" if args.health_port else None
    kopf.run(clusterwide=True, standalone=True, liveness_endpoint=liveness)
    return 0
