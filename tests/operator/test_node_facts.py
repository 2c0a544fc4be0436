"""Node objects to decision inputs, annotation patches, and the drain's pod rules."""

from __future__ import annotations

from typing import Any

from ftmoe.operator import annotations as A
from ftmoe.operator.decisions import Marks
from ftmoe.operator.drain import skip_reason, to_evict
from ftmoe.operator.inference import NodePrediction
from ftmoe.operator.node_facts import cordon_patch, facts, prediction_patch, uncordon_patch
from ftmoe.operator.policy import PolicySpec

SPEC = PolicySpec.from_dict({"prometheus": {"url": "http://p"}})


def node(ann: dict[str, str] | None = None, unschedulable: bool = False, **conds: str) -> dict[str, Any]:
    conditions = [{"type": "Ready", "status": "True"}] + [{"type": k, "status": v} for k, v in conds.items()]
    return {
        "metadata": {"name": "n1", "annotations": ann or {}, "labels": {}},
        "spec": {"unschedulable": unschedulable},
        "status": {"conditions": conditions},
    }


def test_facts_read_state_back_from_annotations() -> None:
    n = node(
        {
            A.CORDONED_BY: "p",
            A.RISK_SINCE: "2026-01-01T00:00:00Z",
            A.DRAIN_STATE: "draining",
            A.CORDON_HISTORY: "2026-01-01T00:00:00Z 2026-01-02T00:00:00Z garbage",
        },
        unschedulable=True,
        MemoryPressure="True",
    )
    f = facts(n, 0.7, SPEC)
    assert f.cordoned_by == "p" and f.unschedulable and f.pressure and f.ready
    assert f.risk_since == 1767225600.0 and f.drain_state == "draining" and len(f.cordon_history) == 2


def test_prediction_patch_writes_only_changes_and_labels_at_risk() -> None:
    pred = NodePrediction("n1", 0.456, "memory", {"cpu": 0.1, "memory": 0.8, "disk": 0.1})
    patch = prediction_patch(node(), "p", pred, Marks(None, 50.0), "none", SPEC, 100.0)
    ann = patch["metadata"]["annotations"]
    assert ann[A.RISK] == "0.46" and ann[A.FAULT_TYPE] == "memory" and ann[A.HEALTHY_SINCE] == A.rfc3339(50.0)
    assert patch["metadata"]["labels"] == {A.AT_RISK_LABEL: "true", A.RISK_LABEL: "0.46"}, "the risk is a label too, for -L"
    applied = node({k: v for k, v in ann.items() if v is not None})
    applied["metadata"]["labels"] = {A.AT_RISK_LABEL: "true", A.RISK_LABEL: "0.46"}
    assert prediction_patch(applied, "p", pred, Marks(None, 50.0), "none", SPEC, 100.0) == {}


def test_stale_node_keeps_its_last_risk() -> None:
    patch = prediction_patch(node({A.RISK: "0.9"}), "p", None, Marks(None, None), "stale", SPEC, 100.0)
    assert A.RISK not in patch["metadata"]["annotations"]


def test_a_human_uncordon_clears_our_cordon_annotations() -> None:
    patch = prediction_patch(node({A.CORDONED_BY: "p", A.DRAIN_STATE: "done"}), "p", None, Marks(None, None), "none", SPEC, 1.0)
    assert patch["metadata"]["annotations"][A.CORDONED_BY] is None


def test_cordon_and_uncordon_patches() -> None:
    c = cordon_patch(node({A.CORDON_HISTORY: A.rfc3339(10.0)}), "p", "risk", 20.0)
    assert c["spec"]["unschedulable"] is True and c["metadata"]["annotations"][A.CORDONED_BY] == "p"
    assert A.parse_history(c["metadata"]["annotations"][A.CORDON_HISTORY]) == (10.0, 20.0)
    u = uncordon_patch()
    assert u["spec"]["unschedulable"] is None and u["metadata"]["annotations"][A.CORDONED_BY] is None


def test_drain_skips_what_kubectl_drain_skips_and_opt_outs() -> None:
    def p(**meta: Any) -> dict[str, Any]:
        return {"metadata": {"name": "x", "namespace": "ns", **meta}, "status": {"phase": "Running"}}

    ds = p(ownerReferences=[{"kind": "DaemonSet", "controller": True}])
    mirror = p(annotations={"kubernetes.io/config.mirror": "abc"})
    opted = p(annotations={A.EVICT_OPT_OUT: "false"})
    going = p(deletionTimestamp="2026-01-01T00:00:00Z")
    done = {"metadata": {"name": "y"}, "status": {"phase": "Succeeded"}}
    normal = p(ownerReferences=[{"kind": "ReplicaSet", "controller": True}])
    assert "DaemonSet" in str(skip_reason(ds)) and "mirror" in str(skip_reason(mirror)) and "opted out" in str(skip_reason(opted))
    assert skip_reason(going) == "terminating" and skip_reason(done) == "finished"
    assert to_evict([ds, mirror, opted, going, done, normal]) == [normal]


def test_drain_refuses_what_kubectl_drain_refuses_without_its_flags() -> None:
    from ftmoe.operator.api.policy_types import DrainSpec
    from ftmoe.operator.drain import left_alone

    owned = [{"kind": "ReplicaSet", "controller": True}]
    bare = {"metadata": {"name": "bare", "namespace": "ns"}, "status": {"phase": "Running"}}
    scratch = {
        "metadata": {"name": "scratch", "namespace": "ns", "ownerReferences": owned},
        "status": {"phase": "Running"},
        "spec": {"volumes": [{"name": "tmp", "emptyDir": {}}]},
    }
    assert "no controller" in str(skip_reason(bare)) and "emptyDir" in str(skip_reason(scratch))
    assert to_evict([bare, scratch]) == [] and len(left_alone([bare, scratch])) == 2
    assert to_evict([bare, scratch], DrainSpec(evict_bare_pods=True, delete_empty_dir_data=True)) == [bare, scratch]


def test_the_opt_out_is_read_as_a_boolean() -> None:
    def pod(value: str) -> dict[str, Any]:
        return {
            "metadata": {
                "name": "x",
                "namespace": "ns",
                "annotations": {A.EVICT_OPT_OUT: value},
                "ownerReferences": [{"kind": "ReplicaSet", "controller": True}],
            },
            "status": {"phase": "Running"},
        }

    for no in ("false", "False", "no", "0", "OFF", "nope"):
        assert "opted out" in str(skip_reason(pod(no))), no
    for yes in ("true", "True", "1"):
        assert skip_reason(pod(yes)) is None, yes


def test_a_wobbling_risk_keeps_its_shown_value_until_it_moves_or_crosses_a_threshold() -> None:
    from ftmoe.operator.annotations import shown_risk_after

    t = (0.3, 0.6, 0.8)
    assert shown_risk_after("0.10", 0.13, t) == "0.10"  # within 0.05: no write
    assert shown_risk_after("0.10", 0.16, t) == "0.16"
    assert shown_risk_after("0.28", 0.31, t) == "0.31"  # crossed annotate: shown at once
    assert shown_risk_after("0.62", 0.59, t) == "0.59"  # and back under cordon
    assert shown_risk_after(None, 0.42, t) == "0.42" and shown_risk_after("n/a", 0.42, t) == "0.42"


def test_a_healthy_nodes_wobble_leaves_its_prediction_as_a_reader_sees_it() -> None:
    """Risk 0.12 then 0.14 (inside the deadband) and a most-likely type that flips: nothing a
    reader notices changes, so the NodeFaultPrediction is not rewritten (at scale, every
    such node was a write per interval)."""
    from ftmoe.operator.decisions_types import Plan
    from ftmoe.operator.interval import shown
    from ftmoe.operator.predictions import action_summary, prediction_body

    policy = {"metadata": {"name": "p", "uid": "u"}}

    def seen(risk: float, fault_type: str) -> dict[str, Any]:
        pred = NodePrediction("n1", risk, fault_type, {fault_type: 0.5})
        body = prediction_body(policy, "n1", pred, action_summary(Plan(), "n1", pred, False, SPEC), None, 0.0, "v1", SPEC)
        out = shown(body)
        t = SPEC.thresholds
        out["risk"] = float(A.shown_risk_after("0.12", risk, (t.annotate, t.cordon, t.evict)))  # the deadband, as the interval applies it
        return out

    assert seen(0.12, "cpu") == seen(0.14, "memory")
    above = SPEC.thresholds.annotate + 0.01
    assert seen(0.12, "cpu") != seen(above, "memory"), "over the annotate threshold the type and risk are news"
