"""``kubectl ftmoe`` over a stand-in cluster: what the tables say, and errors without a
traceback. Against the real API server, through kubectl's plugin discovery:
tests/operator/test_remediation_live.py."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from ftmoe import kubectl_plugin as K

PLUGIN = str(Path(sys.executable).parent / "kubectl-ftmoe")


class StandIn:
    def __init__(self) -> None:
        self.patched: list[tuple[str, dict[str, Any]]] = []

    def policies(self) -> list[dict[str, Any]]:
        return [
            {
                "metadata": {"name": "gpu"},
                "spec": {"mode": "Evict"},
                "status": {
                    "observedNodes": 8,
                    "atRiskNodes": 1,
                    "cordonedNodes": 1,
                    "remediatingNodes": 1,
                    "budget": {"maxUnavailable": 2, "unavailable": 1},
                    "stormBreaker": {"open": True, "latched": True},
                    "conditions": [{"type": "Ready", "status": "True"}, {"type": "RemediationAllowed", "reason": "StormBreakerLatched"}],
                    "recentActions": [{"time": "t", "node": "n3", "action": "cordon", "outcome": "done", "reason": "RiskAboveThreshold"}],
                },
            }
        ]

    def policy(self, name: str) -> dict[str, Any]:
        return self.policies()[0]

    def predictions(self, selector: str = "") -> list[dict[str, Any]]:
        at_risk = {
            "spec": {"node": "n3", "policy": "gpu"},
            "status": {
                "risk": 0.91,
                "faultType": "memory",
                "action": "cordon",
                "reason": "risk 0.91 >= 0.6 for 60s",
                "drivers": [{"feature": "mem_used", "value": 0.97, "zscore": 4.2}],
                "riskSince": "2026-12-01T10:00:00Z",
                "windowEnd": "2026-12-01T10:01:00Z",
                "modelVersion": "v1",
            },
        }
        calm = {"spec": {"node": "n4", "policy": "gpu"}, "status": {"risk": 0.02, "action": "none"}}
        return [at_risk] if selector else [calm, at_risk]

    def node(self, name: str) -> dict[str, Any]:
        return {
            "metadata": {"annotations": {"ftmoe.io/cordoned-by": "gpu", "ftmoe.io/drain": "done", "ftmoe.io/drain-started-at": "t0"}},
            "spec": {"unschedulable": True},
        }


def test_status_table_lists_policies_and_only_nodes_with_an_action() -> None:
    d = K.status_data(StandIn())  # type: ignore[arg-type]  # duck-typed stand-in
    text = K.format_status(d)
    header, row = text.splitlines()[:2]
    assert header.split() == [
        "POLICY",
        "MODE",
        "NODES",
        "AT-RISK",
        "CORDONED",
        "REMEDIATING",
        "UNAVAIL/BUDGET",
        "BREAKER",
        "READY",
        "ACTIONS",
    ]
    assert row.split() == ["gpu", "Evict", "8", "1", "1", "1", "1/2", "latched", "True", "StormBreakerLatched"]
    assert [n["node"] for n in d["atRiskNodes"]] == ["n3"] and "n4" not in text
    assert yaml.safe_load(yaml.safe_dump(d)) == json.loads(json.dumps(d))


def test_why_says_the_risk_its_drivers_the_decision_and_recent_actions() -> None:
    text = K.format_why(K.why_data(StandIn(), "n3"))  # type: ignore[arg-type]  # duck-typed stand-in
    assert text.splitlines()[0] == "Node n3: cordoned by gpu"
    assert "risk 0.91, type memory" in text and "driver mem_used: 0.97 (+4.2 standard deviations" in text
    assert "decision: cordon: risk 0.91 >= 0.6 for 60s" in text and "cordon done: RiskAboveThreshold" in text
    assert "drain: done" in text


def test_no_kubeconfig_is_an_error_with_the_fix_not_a_traceback(tmp_path: Path) -> None:
    proc = subprocess.run([PLUGIN, "--kubeconfig", str(tmp_path / "none"), "status"], capture_output=True, text=True, check=False)
    assert proc.returncode == 1 and "pass --kubeconfig FILE" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr


def test_flags_go_before_or_after_the_command() -> None:
    after = K.parser().parse_args(["status", "-o", "json", "--context", "prod"])
    before = K.parser().parse_args(["-o", "yaml", "why", "n3"])
    assert (after.output, after.context, after.kubeconfig) == ("json", "prod", None)
    assert (before.output, before.node) == ("yaml", "n3")
