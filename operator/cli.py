"""``ftmoe operator run``: the operator against any kubeconfig (or in-cluster)."""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path
from typing import Any, cast

from ftmoe.errors import reports
from ftmoe.operator.full_collections import DEFAULT_EVERY as GC_FULL_EVERY
from ftmoe.operator.full_collections import FullCollections

log = logging.getLogger("ftmoe.operator")


class OperatorError(RuntimeError):
    pass


def register(commands: Any) -> None:
    op = commands.add_parser("operator", help="run the operator")
    sub = op.add_subparsers(dest="operator_command", metavar="ACTION", required=True)
    run = sub.add_parser("run", help="reconcile FaultTolerancePolicies (Ctrl-C to stop)")
    run.add_argument("--kubeconfig", type=Path, help="kubeconfig (default: in-cluster, else $KUBECONFIG or ~/.kube/config)")
    run.add_argument(
        "--namespace",
        help="the operator's namespace, for its Lease and Secrets (default: $POD_NAMESPACE, the service account's, else ftmoe-system)",
    )
    run.add_argument("--metrics-port", type=int, default=8080, help="port for /metrics (0: off)")
    run.add_argument("--health-port", type=int, default=8081, help="port for the /healthz liveness endpoint (0: off)")
    run.add_argument(
        "--no-leader-election",
        action="store_true",
        help="act without holding the Lease (only when nothing else can run an operator on this cluster)",
    )
    run.add_argument(
        "--state-dir",
        type=Path,
        help="where experience buffers persist across restarts (a volume; default $FTMOE_STATE_DIR, else ~/.local/state/ftmoe/operator)",
    )
    run.add_argument(
        "--kube-api-qps", type=float, default=50.0, help="requests per second to the API server, sustained (default 50; 0: no limit)"
    )
    run.add_argument("--kube-api-burst", type=int, default=100, help="requests the API server may get at once (default 100)")
    run.add_argument(
        "--lease-duration",
        type=float,
        default=15.0,
        help="seconds a leader's Lease holds without renewal; a follower takes over after it (default 15)",
    )
    run.add_argument("--lease-renew", type=float, default=5.0, help="seconds between Lease renewals and follower polls (default 5)")
    run.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads for inference and background tuning (default 1: an interval's batch is small, and more threads "
        "spin against the watches and Prometheus reads for the same cores)",
    )
    run.add_argument(
        "--gc-full-every",
        type=float,
        default=GC_FULL_EVERY,
        help="seconds between Python's full garbage collections, run on a thread of their own instead of when allocations "
        f"trigger them (at thousands of nodes each walks every cached object; default {GC_FULL_EVERY:g}; 0: Python's own schedule)",
    )
    run.set_defaults(func=cmd_run)
    report = sub.add_parser("report", help="a policy's recent alarms versus what the cluster showed, and its self-graded scores")
    report.add_argument("policy", help="the FaultTolerancePolicy's name")
    report.add_argument("--kubeconfig", type=Path, help="kubeconfig (default: $KUBECONFIG or ~/.kube/config)")
    report.add_argument("-o", "--output", choices=["table", "json"], default="table", help="output format")
    report.set_defaults(func=cmd_report)
    reset = sub.add_parser("reset", help="close a policy's latched storm breaker (after a human looked at the cause)")
    reset.add_argument("policy", help="the FaultTolerancePolicy's name")
    reset.add_argument("--kubeconfig", type=Path, help="kubeconfig (default: $KUBECONFIG or ~/.kube/config)")
    reset.set_defaults(func=cmd_reset)
    rules = sub.add_parser(
        "recording-rules",
        help="Prometheus recording rules for a policy's features (spec.prometheus.recordedFeatures)",
        description="Write the recording rules that keep a policy's model features as one series per node and feature, "
        "from the policy's queries, node label, rateWindow and interval. Load them into Prometheus, then set "
        "spec.prometheus.recordedFeatures to the series name (default ftmoe:node_feature).",
    )
    rules.add_argument("-f", "--filename", type=Path, required=True, help="the FaultTolerancePolicy manifest (YAML)")
    rules.add_argument("--model", type=Path, help="model folder whose features to record (default: the policy's Default or Path model)")
    rules.add_argument(
        "-o",
        "--output",
        choices=["rules", "prometheusrule"],
        default="rules",
        help="a Prometheus rule file (rule_files), or a Prometheus Operator PrometheusRule object (default rules)",
    )
    rules.add_argument("--namespace", default="monitoring", help="the PrometheusRule's namespace (default monitoring)")
    rules.add_argument(
        "--local-cluster",
        metavar="NAME",
        nargs="?",
        const="ftmoe",
        help="load the rules into the local cluster's Prometheus (default name ftmoe) instead of printing them",
    )
    rules.set_defaults(func=cmd_recording_rules)


def connect(kubeconfig: Path | None) -> Any:
    """The API client, or an OperatorError that says where a kubeconfig comes from."""
    from kubernetes.config import ConfigException

    from ftmoe.operator import runtime

    if kubeconfig is not None and not kubeconfig.is_file():
        raise OperatorError(f"--kubeconfig {kubeconfig}: no such file")
    try:
        return runtime.api_client(kubeconfig)
    except ConfigException as err:
        where = (
            f"--kubeconfig {kubeconfig}"
            if kubeconfig
            else f"$KUBECONFIG ({os.environ['KUBECONFIG']})"
            if os.environ.get("KUBECONFIG")
            else "~/.kube/config"
        )
        raise OperatorError(
            f"no usable kubeconfig in {where}: {str(err).rstrip('.')}. Pass --kubeconfig FILE or set KUBECONFIG "
            "(for the local cluster: export KUBECONFIG=$(ftmoe cluster kubeconfig))"
        ) from err


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
                raise OperatorError(
                    f"not allowed to list {plural}.{GROUP}; apply deploy/base (its ClusterRole) or use a kubeconfig with more rights"
                ) from err
            raise
    if leader_election:
        try:
            kube.core.read_namespace(namespace)
        except ApiException as err:
            if err.status == 404:
                raise OperatorError(
                    f"namespace {namespace!r} (for the leader Lease) does not exist; "
                    f"create it (kubectl create namespace {namespace}) or pass --namespace"
                ) from err
            if err.status != 403:  # a least-privilege role may not read namespaces; the Lease call will tell
                raise


@reports(OperatorError)
def cmd_run(args: argparse.Namespace) -> int:
    import kopf
    from prometheus_client import start_http_server
    from urllib3.exceptions import HTTPError

    from ftmoe.operator import (
        handlers,  # noqa: F401 - registers the handlers
        runtime,
    )
    from ftmoe.operator.own_metrics import REGISTRY
    from ftmoe.predictor.cli import set_threads

    try:
        set_threads(args.threads)
    except ValueError as err:  # below 1: set_threads names the flag
        raise OperatorError(str(err)) from err
    if args.gc_full_every < 0:
        raise OperatorError("--gc-full-every must be 0 (Python's own schedule) or a number of seconds")
    connect(args.kubeconfig)  # a missing or unreadable kubeconfig is named here, not deep in kopf
    if args.kubeconfig:
        os.environ["KUBECONFIG"] = str(args.kubeconfig)  # kopf logs in through the same file
    namespace = runtime.operator_namespace(args.namespace)
    state_dir = args.state_dir or Path(os.environ.get("FTMOE_STATE_DIR") or Path.home() / ".local" / "state" / "ftmoe" / "operator")
    if args.kube_api_qps < 0 or args.kube_api_burst < 1:
        raise OperatorError("--kube-api-qps must be 0 or more and --kube-api-burst at least 1")
    if not 0 < 2 * args.lease_renew <= args.lease_duration:
        raise OperatorError(
            "--lease-renew must be more than 0 and at most half of --lease-duration (a missed renewal must not lose the Lease)"
        )
    rt = runtime.build(
        args.kubeconfig,
        namespace,
        leader_election=not args.no_leader_election,
        state_dir=state_dir,
        qps=args.kube_api_qps,
        burst=args.kube_api_burst,
        lease=(args.lease_duration, args.lease_renew),
    )
    try:
        preflight(rt.deps.kube, namespace, not args.no_leader_election)
    except HTTPError as err:
        raise OperatorError(f"cannot reach the API server: {err}") from err
    runtime.install(rt)
    FullCollections(args.gc_full_every).start()
    logging.getLogger("kopf.objects").setLevel(logging.WARNING)  # not a line per pod event
    if args.metrics_port:
        start_http_server(args.metrics_port, registry=REGISTRY)
        log.info("metrics on :%d/metrics", args.metrics_port)
    liveness = f"http://0.0.0.0:{args.health_port}/healthz" if args.health_port else None
    kopf.run(clusterwide=True, standalone=True, liveness_endpoint=liveness)
    return 0


@reports(OperatorError)
def cmd_report(args: argparse.Namespace) -> int:
    import json

    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError

    from ftmoe.operator.kube import Kube
    from ftmoe.operator.policy import GROUP, POLICY_PLURAL, VERSION

    kube = Kube(connect(args.kubeconfig))
    try:
        policy: dict[str, Any] = cast(dict, kube.custom.get_cluster_custom_object(GROUP, VERSION, POLICY_PLURAL, args.policy))
    except ApiException as err:
        raise OperatorError(f"FaultTolerancePolicy {args.policy!r}: {err.reason} (kubectl get ftp lists them)") from err
    except HTTPError as err:
        raise OperatorError(f"cannot reach the API server: {err}") from err
    graded = (policy.get("status") or {}).get("selfGrading")
    if not graded:
        raise OperatorError(f"policy {args.policy!r} has no self-grading yet: is the operator running, and has an interval passed?")
    if args.output == "json":
        print(json.dumps(graded, indent=2))
        return 0
    print(format_report(args.policy, policy.get("spec") or {}, graded))
    return 0


def cmd_reset(args: argparse.Namespace) -> int:
    """The same as ``kubectl ftmoe reset POLICY`` (ftmoe/kubectl_plugin.py)."""
    from ftmoe import kubectl_plugin

    return kubectl_plugin.main([*(["--kubeconfig", str(args.kubeconfig)] if args.kubeconfig else []), "reset", args.policy])


@reports(OperatorError)
def cmd_recording_rules(args: argparse.Namespace) -> int:
    import yaml

    from ftmoe.operator.api.errors import PolicyError
    from ftmoe.operator.api.policy_types import PolicySpec
    from ftmoe.operator.recording_rules import RecordingRulesError, prometheus_rule, rule_file

    try:
        doc = yaml.safe_load(args.filename.read_text())
    except (OSError, yaml.YAMLError) as err:
        raise OperatorError(f"-f {args.filename}: {err}") from err
    if not isinstance(doc, dict) or doc.get("kind") != "FaultTolerancePolicy":
        raise OperatorError(f"-f {args.filename}: not a FaultTolerancePolicy manifest (kind: FaultTolerancePolicy)")
    try:
        spec = PolicySpec.from_dict(doc.get("spec"))
    except PolicyError as err:
        raise OperatorError(f"-f {args.filename}: {err}") from err
    features = model_features(args.model, spec)
    group = f"ftmoe-{(doc.get('metadata') or {}).get('name') or 'policy'}"
    try:
        if args.output == "prometheusrule":
            out = prometheus_rule(spec, features, group, args.namespace)
        else:
            out = rule_file(spec, features, group)
    except RecordingRulesError as err:
        raise OperatorError(f"-f {args.filename}: {err}") from err
    text = yaml.safe_dump(out, sort_keys=False)
    if args.local_cluster is None:
        print(text, end="")
        return 0
    from ftmoe.cluster.errors import ClusterError
    from ftmoe.cluster.local import LocalCluster

    if args.output != "rules":
        raise OperatorError("--local-cluster loads a rule file: leave -o at rules")
    try:
        path = LocalCluster(args.local_cluster).load_rules(group, text)
    except ClusterError as err:
        raise OperatorError(str(err)) from err
    print(f"{len(features)} recording rules (one a feature) loaded into the local cluster's Prometheus ({path})")
    return 0


def model_features(folder: Path | None, spec: Any) -> list[str]:
    """The feature names of ``--model``, else of the policy's own model when this machine has it."""
    from ftmoe.operator.models import default_model_folder
    from ftmoe.predictor.registry import load

    if folder is None:
        if spec.model.source == "Default":
            folder = default_model_folder()
        elif spec.model.source == "Path" and Path(str(spec.model.path)).is_dir():
            folder = Path(str(spec.model.path))
        else:
            raise OperatorError(f"the policy's model ({spec.model.source}) is not on this machine: pass --model FOLDER")
    if not (folder / "config.json").is_file():
        raise OperatorError(f"--model {folder}: no config.json there (a folder `ftmoe train` wrote)")
    return list(load(folder).feature_names)


def format_report(name: str, spec: dict[str, Any], g: dict[str, Any]) -> str:
    def pct(x: float | None) -> str:
        return "-" if x is None else f"{100 * x:.1f}%"

    def secs(x: float | None) -> str:
        return "-" if x is None else f"{x:.0f}s"

    lines = [
        f"FaultTolerancePolicy {name}: alarms at risk >= {(spec.get('thresholds') or {}).get('cordon', 0.6)}, "
        f"horizon {spec.get('horizon', '5m')}, graded since {g.get('since') or '-'}",
        f"  precision {pct(g.get('precision'))} ({g.get('hits', 0)} hits, {g.get('falseAlarms', 0)} false alarms, "
        f"{g.get('pending', 0)} pending)",
        f"  recall    {pct(g.get('recall'))} ({g.get('caught', 0)} of {g.get('faults', 0)} faults alarmed at or before their onset, "
        f"mean lead {secs(g.get('meanLeadSeconds'))}; {g.get('late', 0)} more detected after it, "
        f"mean delay {secs(g.get('meanDelaySeconds'))})",
        "  onset = the first interval the operator saw the fault's signal on the node (a condition from",
        "  spec.learning.labels set True, an OOM kill, a kubelet eviction, NotReady); that signal comes after",
        "  the node began to degrade, so a lead is measured against it, not against the cause; a lead of 0s",
        "  means the alarm came in the same interval as the signal.",
    ]
    per_type = g.get("perType") or {}
    if per_type:
        lines.append("")
        lines.append(f"  {'TYPE':<10}{'ALARMS':>8}{'HITS':>6}{'PRECISION':>11}{'FAULTS':>8}{'CAUGHT':>8}{'RECALL':>8}")
        for kind, v in sorted(per_type.items()):
            lines.append(
                f"  {kind:<10}{v.get('alarms', 0):>8}{v.get('hits', 0):>6}{pct(v.get('precision')):>11}"
                f"{v.get('faults', 0):>8}{v.get('caught', 0):>8}{pct(v.get('recall')):>8}"
            )
    recent = g.get("recentAlarms") or []
    if recent:
        lines.append("")
        lines.append(f"  {'TIME':<22}{'NODE':<20}{'RISK':>6}  {'PREDICTED':<10}{'OUTCOME'}")
        for a in recent:
            lines.append(f"  {a['time']:<22}{a['node']:<20}{a['risk']:>6.2f}  {a['predictedType']:<10}{a['outcome']}")
    return "\n".join(lines)
