"""``kubectl ftmoe``: the questions an admin asks, answered from the cluster.

Installed with the package as ``kubectl-ftmoe`` (krew's naming), so ``kubectl ftmoe ...``
finds it on PATH. It uses the user's kubeconfig and context like any plugin
(``--kubeconfig``, ``--context``, else $KUBECONFIG or ~/.kube/config) and reads only what
the operator writes: policies, their status, NodeFaultPredictions and node annotations.

    kubectl ftmoe status                 policies, at-risk nodes, budgets, breakers
    kubectl ftmoe why NODE               risk, type, what drove it, the decision, recent actions
    kubectl ftmoe report POLICY          alarms against what the cluster showed
    kubectl ftmoe pause|resume POLICY    spec.paused (predictions go on; no cordon, drain, uncordon)
    kubectl ftmoe reset POLICY           close a latched storm breaker

Tables by default; ``-o json`` or ``-o yaml`` for the data behind them.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from ftmoe.errors import reports

GROUP, VERSION = "ftmoe.io", "v1alpha1"
POLICIES, PREDICTIONS = "faulttolerancepolicies", "nodefaultpredictions"
RESET = "ftmoe.io/reset-storm-breaker"


class PluginError(RuntimeError):
    pass


class Cluster:
    """The few reads and patches the plugin makes, as plain dicts."""

    def __init__(self, kubeconfig: Path | None, context: str | None):
        from kubernetes import client, config

        try:
            api = config.new_client_from_config(config_file=str(kubeconfig) if kubeconfig else None, context=context)
        except (config.ConfigException, OSError) as err:
            raise PluginError(f"no usable kubeconfig ({err}); pass --kubeconfig FILE or --context NAME, or set KUBECONFIG") from err
        self.core, self.custom = client.CoreV1Api(api), client.CustomObjectsApi(api)

    def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        try:
            resp = fn(*args, _preload_content=False, **kwargs)
        except ApiException as err:
            if err.status == 404:
                raise PluginError(f"{what} not found (kubectl get ftp lists the policies)") from err
            if err.status == 403:
                raise PluginError(f"not allowed to read {what}: {err.reason}") from err
            raise PluginError(f"{what}: {err.status} {err.reason}") from err
        except HTTPError as err:
            raise PluginError(f"cannot reach the API server: {err}") from err
        return json.loads(resp.data) if resp.data else {}

    def policies(self) -> list[dict[str, Any]]:
        return list(self._call("FaultTolerancePolicies", self.custom.list_cluster_custom_object, GROUP, VERSION, POLICIES)["items"])

    def policy(self, name: str) -> dict[str, Any]:
        return dict(self._call(f"FaultTolerancePolicy {name}", self.custom.get_cluster_custom_object, GROUP, VERSION, POLICIES, name))

    def predictions(self, selector: str = "") -> list[dict[str, Any]]:
        return list(
            self._call(
                "NodeFaultPredictions", self.custom.list_cluster_custom_object, GROUP, VERSION, PREDICTIONS, label_selector=selector
            )["items"]
        )

    def node(self, name: str) -> dict[str, Any]:
        return dict(self._call(f"node {name}", self.core.read_node, name))

    def patch_policy(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        return dict(
            self._call(f"FaultTolerancePolicy {name}", self.custom.patch_cluster_custom_object, GROUP, VERSION, POLICIES, name, body)
        )


def table(rows: list[list[str]], headers: list[str]) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows)]
    return "\n".join("   ".join(str(x).ljust(w) for x, w in zip(r, widths)).rstrip() for r in [headers, *rows])


def condition(status: dict[str, Any], kind: str) -> dict[str, Any]:
    return next((c for c in status.get("conditions") or [] if c.get("type") == kind), {})


def status_data(cluster: Cluster) -> dict[str, Any]:
    policies = []
    for p in cluster.policies():
        st, spec = p.get("status") or {}, p.get("spec") or {}
        budget, breaker = st.get("budget") or {}, st.get("stormBreaker") or {}
        policies.append(
            {
                "name": p["metadata"]["name"],
                "mode": spec.get("mode", "Observe"),
                "paused": bool(spec.get("paused")),
                "nodes": st.get("observedNodes"),
                "atRisk": st.get("atRiskNodes"),
                "cordoned": st.get("cordonedNodes"),
                "remediating": st.get("remediatingNodes"),
                "budget": f"{budget.get('unavailable', '-')}/{budget.get('maxUnavailable', '-')}",
                "breaker": "latched" if breaker.get("latched") else "open" if breaker.get("open") else "closed",
                "ready": condition(st, "Ready").get("status", "Unknown"),
                "remediationAllowed": condition(st, "RemediationAllowed").get("reason", "-"),
                "lastRun": st.get("lastRun"),
            }
        )
    at_risk = []
    for pred in cluster.predictions():
        s = pred.get("status") or {}
        if s.get("risk") is not None and s.get("action") not in (None, "none"):
            at_risk.append(
                {
                    "node": (pred.get("spec") or {}).get("node"),
                    "policy": (pred.get("spec") or {}).get("policy"),
                    "risk": s.get("risk"),
                    "type": s.get("faultType"),
                    "action": s.get("action"),
                    "reason": s.get("reason"),
                }
            )
    at_risk.sort(key=lambda x: -(x["risk"] or 0.0))
    return {"policies": policies, "atRiskNodes": at_risk}


def format_status(d: dict[str, Any]) -> str:
    rows = [
        [
            p["name"],
            p["mode"] + (" (paused)" if p["paused"] else ""),
            str(p["nodes"] if p["nodes"] is not None else "-"),
            str(p["atRisk"] if p["atRisk"] is not None else "-"),
            str(p["cordoned"] if p["cordoned"] is not None else "-"),
            str(p["remediating"] or 0),
            p["budget"],
            p["breaker"],
            p["ready"],
            p["remediationAllowed"],
        ]
        for p in d["policies"]
    ]
    out = [
        table(rows, ["POLICY", "MODE", "NODES", "AT-RISK", "CORDONED", "REMEDIATING", "UNAVAIL/BUDGET", "BREAKER", "READY", "ACTIONS"])
        if rows
        else "No FaultTolerancePolicies: kubectl apply -f deploy/examples/observe.yaml starts one in Observe mode."
    ]
    if d["atRiskNodes"]:
        nodes = [
            [n["node"], n["policy"], f"{n['risk']:.2f}", n["type"] or "-", n["action"], (n["reason"] or "")[:70]] for n in d["atRiskNodes"]
        ]
        out += ["", table(nodes, ["NODE", "POLICY", "RISK", "TYPE", "ACTION", "REASON"])]
    elif rows:
        out += ["", "No node at risk."]
    return "\n".join(out)


def why_data(cluster: Cluster, node: str) -> dict[str, Any]:
    n = cluster.node(node)
    ann = (n.get("metadata") or {}).get("annotations") or {}
    preds = cluster.predictions(f"ftmoe.io/node={node[:63]}")
    if not preds and not any(k.startswith("ftmoe.io/") for k in ann):
        raise PluginError(f"no FaultTolerancePolicy watches node {node}: no NodeFaultPrediction and no ftmoe.io/ annotation on it")
    out: dict[str, Any] = {"node": node, "unschedulable": bool((n.get("spec") or {}).get("unschedulable")), "predictions": []}
    for pred in preds:
        s, policy = pred.get("status") or {}, str((pred.get("spec") or {}).get("policy"))
        actions = []
        try:
            recent = ((cluster.policy(policy).get("status") or {}).get("recentActions")) or []
            actions = [a for a in recent if a.get("node") == node]
        except PluginError:
            pass
        out["predictions"].append(
            {
                "policy": policy,
                "risk": s.get("risk"),
                "faultType": s.get("faultType"),
                "scores": s.get("scores"),
                "drivers": s.get("drivers"),
                "action": s.get("action"),
                "reason": s.get("reason"),
                "riskSince": s.get("riskSince"),
                "windowEnd": s.get("windowEnd"),
                "modelVersion": s.get("modelVersion"),
                "recentActions": actions,
            }
        )
    out["annotations"] = {k: v for k, v in sorted(ann.items()) if k.startswith("ftmoe.io/")}
    return out


def format_why(d: dict[str, Any]) -> str:
    ann = d["annotations"]
    lines = [
        f"Node {d['node']}: {'cordoned' if d['unschedulable'] else 'schedulable'}"
        + (f" by {ann['ftmoe.io/cordoned-by']}" if ann.get("ftmoe.io/cordoned-by") else "")
    ]
    for p in d["predictions"]:
        risk = "-" if p["risk"] is None else f"{p['risk']:.2f}"
        lines.append(
            f"  policy {p['policy']}: risk {risk}, type {p['faultType'] or '-'} (window ending {p['windowEnd']}, model {p['modelVersion']})"
        )
        if p["riskSince"]:
            lines.append(f"    at or above the cordon threshold since {p['riskSince']}")
        for drv in p["drivers"] or []:
            lines.append(f"    driver {drv['feature']}: {drv['value']:g} ({drv['zscore']:+.1f} standard deviations from normal)")
        lines.append(f"    decision: {p['action']}: {p['reason']}")
        for a in p["recentActions"][:5]:
            lines.append(f"    {a.get('time')}  {a.get('action')} {a.get('outcome')}: {a.get('reason')} {a.get('message', '')[:80]}")
    if ann.get("ftmoe.io/remediations"):
        lines.append(
            f"  remediation: step {ann.get('ftmoe.io/remediation-step')} since {ann.get('ftmoe.io/remediation-started-at')} "
            f"({ann.get('ftmoe.io/remediation')}): {ann['ftmoe.io/remediations']}"
        )
    if ann.get("ftmoe.io/drain"):
        lines.append(f"  drain: {ann['ftmoe.io/drain']} (started {ann.get('ftmoe.io/drain-started-at')})")
    return "\n".join(lines)


def emit(data: Any, output: str, text: str) -> None:
    if output == "json":
        print(json.dumps(data, indent=2))
    elif output == "yaml":
        print(yaml.safe_dump(data, sort_keys=False).rstrip())
    else:
        print(text)


def common(p: argparse.ArgumentParser, defaults: bool) -> argparse.ArgumentParser:
    """The plugin's flags, before or after the command (kubectl ftmoe status -o json)."""

    def d(value: Any) -> Any:
        return value if defaults else argparse.SUPPRESS  # a subcommand must not reset what came before it

    p.add_argument("--kubeconfig", type=Path, default=d(None), help="kubeconfig (default $KUBECONFIG, else ~/.kube/config)")
    p.add_argument("--context", default=d(None), help="kubeconfig context (default: the current one)")
    p.add_argument("-o", "--output", choices=["table", "json", "yaml"], default=d("table"), help="output format (default table)")
    return p


def parser() -> argparse.ArgumentParser:
    p = common(
        argparse.ArgumentParser(prog="kubectl ftmoe", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter), True
    )
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)
    common(sub.add_parser("status", help="policies, at-risk nodes, budgets and storm breakers"), False)
    common(sub.add_parser("why", help="why a node is at risk, and what the operator decided"), False).add_argument("node")
    for name, text in (
        ("report", "a policy's alarms against what the cluster showed"),
        ("pause", "set spec.paused: predictions go on, no cordon, drain or uncordon"),
        ("resume", "clear spec.paused"),
        ("reset", "close a policy's latched storm breaker"),
    ):
        common(sub.add_parser(name, help=text), False).add_argument("policy")
    return p


@reports(PluginError)
def run(args: argparse.Namespace) -> int:
    from ftmoe.operator.cli import format_report

    cluster = Cluster(args.kubeconfig, args.context)
    if args.command == "status":
        d = status_data(cluster)
        emit(d, args.output, format_status(d))
    elif args.command == "why":
        d = why_data(cluster, args.node)
        emit(d, args.output, format_why(d))
    elif args.command == "report":
        policy = cluster.policy(args.policy)
        graded = (policy.get("status") or {}).get("selfGrading")
        if not graded:
            raise PluginError(f"policy {args.policy!r} has no self-grading yet: is the operator running, and has an interval passed?")
        emit(graded, args.output, format_report(args.policy, policy.get("spec") or {}, graded))
    elif args.command in ("pause", "resume"):
        paused = args.command == "pause"
        cluster.patch_policy(args.policy, {"spec": {"paused": paused}})
        emit(
            {"policy": args.policy, "paused": paused},
            args.output,
            f"faulttolerancepolicy/{args.policy} {'paused' if paused else 'resumed'}",
        )
    elif args.command == "reset":
        token = f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}/kubectl-ftmoe"
        before = (cluster.policy(args.policy).get("status") or {}).get("stormBreaker") or {}
        cluster.patch_policy(args.policy, {"metadata": {"annotations": {RESET: token}}})
        state = f"latched: {before.get('reason')}" if before.get("latched") else "not latched"
        emit(
            {"policy": args.policy, "reset": token, "wasLatched": bool(before.get("latched"))},
            args.output,
            f"faulttolerancepolicy/{args.policy} reset requested; the breaker was {state}; the next interval closes it",
        )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run(parser().parse_args(sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":
    raise SystemExit(main())
