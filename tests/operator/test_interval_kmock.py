"""One policy interval (the daemon's body) against kmock's in-memory Kubernetes API.

Fast checks of the wiring: what is read, what is patched and created, what the status
says. Kubernetes semantics (eviction, PDBs, RBAC, CRD validation) are tested against the
real API server in test_operator_e2e.py."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from kubernetes import client

from ftmoe.operator import annotations as A
from ftmoe.operator import own_metrics as M
from ftmoe.operator.api.prediction_types import PredictionSpec, PredictionStatus
from ftmoe.operator.api.status_types import PolicyStatus
from ftmoe.operator.interval import Deps, run_interval
from ftmoe.operator.kube import Kube
from ftmoe.operator.migrations import MigrationTracker
from ftmoe.operator.models import LoadedModel, ModelStore
from ftmoe.operator.node_metrics import FeatureWindow, window_times
from ftmoe.operator.policy import ModelRef
from ftmoe.operator.request_tally import tallying
from ftmoe.predictor.base import Prediction, Predictor
from ftmoe.predictor.errors import ModelFileError

NODES = ["n0", "n1", "n2", "n3"]
POLICIES = "ftmoe.io/v1alpha1/faulttolerancepolicies"
PREDICTIONS = "ftmoe.io/v1alpha1/nodefaultpredictions"


class FirstFeatureModel(Predictor):
    """Risk = the first feature's last value: the test sets each node's risk directly."""

    kind = "test"

    def __init__(self) -> None:
        super().__init__()
        self.feature_names, self.class_names, self.window = (
            ["memory_used_fraction", "cpu_utilisation"],
            ["none", "cpu", "memory", "disk"],
            3,
        )

    def fit(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        raise NotImplementedError

    def raw_predict(self, features: np.ndarray, migrations: np.ndarray, ends: np.ndarray) -> Prediction:
        risk = features[ends, :, 0]
        types = np.zeros((*risk.shape, 3))
        types[..., 1] = 1.0
        return Prediction(risk, types, 0.5)


class FixedSource:
    def __init__(self, risks: dict[str, float] | None, error: str | None = None):
        self.risks, self.error = risks, error

    def fetch(self, nodes: list[str], features: list[str], now: float, step: float, window: int, rate_window: float) -> FeatureWindow:
        values = np.full((window, len(nodes), len(features)), np.nan)
        for h, n in enumerate(nodes):
            if self.risks is not None and n in self.risks:
                values[:, h, :] = 0.2
                values[:, h, 0] = self.risks[n]
        return FeatureWindow(nodes, window_times(now, step, window), values, features, error=self.error)


def policy(mode: str = "Cordon", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "ftmoe.io/v1alpha1",
        "kind": "FaultTolerancePolicy",
        "metadata": {"name": "p", "uid": "uid-p", "generation": 2},
        "spec": {
            "mode": mode,
            "interval": "10s",
            "prometheus": {"url": "http://prom"},
            "hysteresis": {"riskFor": "0s", "healthyFor": "1m"},
            "maxUnavailable": 1,
            **spec,
        },
    }


@pytest.fixture()
def cluster(kmock: Any) -> Any:
    kmock.resources["v1/nodes"] = {}
    kmock.resources["v1/pods"] = {}
    kmock.resources[POLICIES] = {}
    kmock.resources[PREDICTIONS] = {}
    for n in NODES:
        kmock.objects["v1/nodes", None, n] = {
            "metadata": {"name": n, "uid": f"uid-{n}", "labels": {}, "annotations": {}},
            "spec": {},
            "status": {"conditions": [{"type": "Ready", "status": "True"}], "allocatable": {"cpu": "4"}},
        }
    kmock.objects[POLICIES, None, "p"] = policy()
    return kmock


def deps_for(
    kmock: Any, source: FixedSource, model: Predictor | None = None, state_dir: Path | None = None
) -> tuple[Deps, list[tuple[str, str, str]]]:
    cfg = client.Configuration()
    cfg.host = str(kmock.url).rstrip("/")
    events: list[tuple[str, str, str]] = []
    store = ModelStore()
    if model is not None:
        store.put(ModelRef(), LoadedModel(model, "test-1", "Default", Path(".")))
    deps = Deps(
        kube=Kube(client.ApiClient(cfg)),
        models=store,
        tracker=MigrationTracker(),
        events=lambda obj, kind, reason, msg: events.append((obj["metadata"]["name"], reason, msg)),
        namespace="ftmoe-system",
        make_source=lambda spec, token: source,
        state_dir=state_dir,
    )
    return deps, events


def node(kmock: Any, name: str) -> Any:
    return kmock.objects["v1/nodes", None, name]


async def test_cordon_mode_cordons_the_risky_node_and_reports(cluster: Any) -> None:
    deps, events = deps_for(cluster, FixedSource({"n0": 0.1, "n1": 0.95, "n2": 0.4, "n3": 0.05}), FirstFeatureModel())
    result = await asyncio.to_thread(run_interval, policy(), deps, 1_000_000.0)
    n1 = node(cluster, "n1")
    assert n1["spec"]["unschedulable"] is True and n1["metadata"]["annotations"][A.CORDONED_BY] == "p"
    assert n1["metadata"]["annotations"][A.RISK] == "0.95" and n1["metadata"]["labels"][A.RISK_LABEL] == "0.95"
    assert node(cluster, "n2")["metadata"]["labels"][A.AT_RISK_LABEL] == "true"  # 0.4 >= annotate 0.3
    assert not node(cluster, "n0")["spec"].get("unschedulable")
    assert ("n1", "Cordoned") in [(e[0], e[1]) for e in events] and ("p", "Cordoned") in [(e[0], e[1]) for e in events]
    status = result.status
    assert (status["observedNodes"], status["atRiskNodes"], status["cordonedNodes"]) == (4, 1, 1)
    assert {c["type"]: c["status"] for c in status["conditions"]} == {
        "Ready": "True",
        "ModelLoaded": "True",
        "MetricsAvailable": "True",
        "RemediationAllowed": "True",
        "NodesExclusive": "True",
        "InputsValid": "True",
    }
    assert status["recentActions"][0]["action"] == "cordon"
    nfp = cluster.objects[PREDICTIONS, None, "p.n1"]
    assert nfp["status"]["action"] == "cordon" and nfp["status"]["risk"] == 0.95 and nfp["spec"] == {"node": "n1", "policy": "p"}
    assert nfp["metadata"]["ownerReferences"][0]["uid"] == "uid-p"
    assert cluster.objects[POLICIES, None, "p"]["status"]["cordonedNodes"] == 1
    as_declared(status, nfp)


def as_declared(status: dict[str, Any], *predictions: dict[str, Any]) -> None:
    """What the operator writes is what the CRD declares: the API server would prune a field
    the schema lacks (the models refuse unknown fields)."""
    PolicyStatus.model_validate(status)
    for nfp in predictions:
        PredictionSpec.model_validate(nfp["spec"])
        PredictionStatus.model_validate(nfp["status"])


async def test_a_host_baseline_model_reads_each_node_against_its_own_normal(cluster: Any) -> None:
    from ftmoe.predictor.host_baseline import HostBaseline

    model = FirstFeatureModel()
    # n1's normal memory is 0.5 lower than the fleet's: the same reading is a larger departure there
    model.host_baseline = HostBaseline(
        ["n1", "n3", "gone"], np.array([[-0.5, 0.0], [0.0, 0.0], [0.0, 0.0]]), np.ones((3, 2)), np.zeros(2), np.ones(2)
    )
    deps, _ = deps_for(cluster, FixedSource({n: 0.3 for n in NODES}), model)
    result = await asyncio.to_thread(run_interval, policy(), deps, 1_000_000.0)
    assert node(cluster, "n1")["metadata"]["annotations"][A.RISK] == "0.80" and node(cluster, "n1")["spec"]["unschedulable"] is True
    assert node(cluster, "n0")["metadata"]["annotations"][A.RISK] == "0.30"  # no baseline of its own: the pooled one
    assert result.status["model"]["hostBaselineNodes"] == 2
    as_declared(result.status)


def test_the_schema_check_refuses_a_field_the_crd_lacks() -> None:
    with pytest.raises(ValueError, match="riskScore"):
        PredictionStatus.model_validate({"risk": 0.5, "riskScore": 0.5})


async def test_observe_mode_changes_no_node_spec(cluster: Any) -> None:
    deps, events = deps_for(cluster, FixedSource({n: 0.99 if n == "n3" else 0.0 for n in NODES}), FirstFeatureModel())
    result = await asyncio.to_thread(run_interval, policy("Observe"), deps, 1_000_000.0)
    assert all(not node(cluster, n)["spec"].get("unschedulable") for n in NODES)
    assert cluster.objects[PREDICTIONS, None, "p.n3"]["status"]["action"] == "would-cordon"
    assert [e[1] for e in events if e[0] == "n3"] == ["WouldCordon"]
    assert {c["type"]: c["reason"] for c in result.status["conditions"]}["RemediationAllowed"] == "ObserveMode"


async def test_prometheus_down_means_no_action_and_condition_false(cluster: Any) -> None:
    deps, _ = deps_for(cluster, FixedSource(None, error="query for memory_used_fraction failed: ConnectionError"), FirstFeatureModel())
    result = await asyncio.to_thread(run_interval, policy(), deps, 1_000_000.0)
    assert all(not node(cluster, n)["spec"].get("unschedulable") for n in NODES)
    conds = {c["type"]: c for c in result.status["conditions"]}
    assert conds["MetricsAvailable"]["status"] == "False" and "ConnectionError" in conds["MetricsAvailable"]["message"]
    assert conds["Ready"]["status"] == "False" and result.status["staleNodes"] == 4
    # A fleet-wide gap is the policy's to report, once, not four stale predictions (interval.fleet_gap).
    assert not [k for k in cluster.objects if k[0] == PREDICTIONS]


async def test_missing_node_data_leaves_only_that_node_alone(cluster: Any) -> None:
    deps, _ = deps_for(cluster, FixedSource({"n0": 0.99, "n2": 0.1, "n3": 0.1}), FirstFeatureModel())
    result = await asyncio.to_thread(run_interval, policy(maxUnavailable=3), deps, 1_000_000.0)
    assert node(cluster, "n0")["spec"]["unschedulable"] is True
    assert result.status["staleNodes"] == 1
    conds = {c["type"]: c for c in result.status["conditions"]}
    assert conds["MetricsAvailable"]["reason"] == "PartialData" and "n1" in conds["MetricsAvailable"]["message"]


async def test_broken_model_sets_model_loaded_false(cluster: Any) -> None:
    deps, _ = deps_for(cluster, FixedSource({n: 0.99 for n in NODES}))
    deps.models.get = lambda ref: (_ for _ in ()).throw(ModelFileError("/models/x/config.json: no such file"))  # type: ignore[method-assign]
    result = await asyncio.to_thread(run_interval, policy(), deps, 1_000_000.0)
    conds = {c["type"]: c for c in result.status["conditions"]}
    assert conds["ModelLoaded"]["status"] == "False" and "no such file" in conds["ModelLoaded"]["message"]
    assert all(not node(cluster, n)["spec"].get("unschedulable") for n in NODES)


async def test_cost_model_terms_reach_the_prediction_and_the_event(cluster: Any) -> None:
    for i in range(6):
        cluster.objects["v1/pods", "web", f"w{i}"] = {
            "metadata": {
                "name": f"w{i}",
                "namespace": "web",
                "uid": f"u{i}",
                "ownerReferences": [{"kind": "ReplicaSet", "name": "web", "controller": True}],
            },
            "spec": {"nodeName": "n1", "containers": [{"name": "c", "resources": {"requests": {"cpu": "100m"}}}]},
            "status": {"phase": "Running"},
        }
    deps, events = deps_for(cluster, FixedSource({"n0": 0.1, "n1": 0.95, "n2": 0.95, "n3": 0.05}), FirstFeatureModel())
    cluster.resources["v1/pods/eviction"] = {}
    with tallying() as tally:
        await asyncio.to_thread(
            run_interval, policy("Evict", costModel={}, maxUnavailable=2, stormBreaker={"maxAtRisk": "100%"}), deps, 1_000_000.0
        )
    # the drain's six evictions, counted among the writes and on their own gauge
    assert tally.evictions == 6 and tally.writes > 6, tally.by_verb
    assert M.INTERVAL_API_EVICTIONS.labels("p")._value.get() == 6
    busy, empty = (cluster.objects[PREDICTIONS, None, f"p.{n}"]["status"] for n in ("n1", "n2"))
    # six pods x 10 min at risk 0.95 outweigh six 30 s restarts
    assert busy["cost"]["chosen"] == "evict" and busy["action"] == "drain"
    assert {c["action"] for c in busy["cost"]["candidates"]} == {"annotate", "cordon", "evict"}
    assert empty["cost"]["chosen"] == "annotate" and empty["action"] == "annotate"  # nothing on it to protect
    assert node(cluster, "n1")["spec"]["unschedulable"] is True and not node(cluster, "n2")["spec"].get("unschedulable")
    assert any(e[0] == "n1" and e[1] == "Cordoned" and "L=" in e[2] for e in events)
    as_declared(cluster.objects[POLICIES, None, "p"]["status"], *(cluster.objects[PREDICTIONS, None, f"p.{n}"] for n in NODES))


async def test_self_grading_scores_alarms_against_observed_faults_and_survives_a_restart(cluster: Any, tmp_path: Path) -> None:
    """n1 is alarmed, then shows MemoryPressure: a hit; n2 is alarmed and stays healthy: a
    false alarm once the horizon passes. A new Deps (a restarted operator) reloads the buffer."""
    t0 = 1_000_000.0
    spec = {"horizon": "30s", "mode": "Observe"}
    deps, _ = deps_for(cluster, FixedSource({"n0": 0.1, "n1": 0.9, "n2": 0.9, "n3": 0.1}), FirstFeatureModel(), tmp_path)
    await asyncio.to_thread(run_interval, policy(**spec), deps, t0)
    pressure = {"status": {"conditions": [{"type": "Ready", "status": "True"}, {"type": "MemoryPressure", "status": "True"}]}}
    await asyncio.to_thread(deps.kube.core.patch_node, "n1", pressure)
    await asyncio.to_thread(run_interval, policy(**spec), deps, t0 + 10)
    restarted, _ = deps_for(cluster, FixedSource({"n0": 0.1, "n1": 0.9, "n2": 0.9, "n3": 0.1}), FirstFeatureModel(), tmp_path)
    result = await asyncio.to_thread(run_interval, policy(**spec), restarted, t0 + 40)
    g = result.status["selfGrading"]
    assert (g["alarms"], g["hits"], g["falseAlarms"], g["faults"], g["caught"]) == (2, 1, 1, 1, 1)
    assert g["precision"] == 0.5 and g["recall"] == 1.0 and g["meanLeadSeconds"] == 10.0
    assert {a["node"]: a["outcome"] for a in g["recentAlarms"]} == {"n1": "hit", "n2": "false alarm"}
    as_declared(result.status)
    assert (tmp_path / "buffers" / "p.npz").is_file() and len(restarted.learners["p"].experience or []) == 3
    # The operator's metrics carry the same scores and the model it serves.
    from ftmoe.operator import own_metrics as M

    assert M.REGISTRY.get_sample_value("ftmoe_self_grade", {"policy": "p", "metric": "precision"}) == 0.5
    assert M.REGISTRY.get_sample_value("ftmoe_self_grade", {"policy": "p", "metric": "recall"}) == 1.0
    version = result.status["model"]["version"]
    assert (
        M.REGISTRY.get_sample_value("ftmoe_model_info", {"policy": "p", "version": version, "kind": result.status["model"]["kind"]}) == 1.0
    )


def test_model_info_metric_follows_the_served_version() -> None:
    from ftmoe.operator import own_metrics as M

    M.set_model("m", "v1", "ftmoe", 12)
    M.set_model("m", "v2", "ftmoe", 13)
    assert M.REGISTRY.get_sample_value("ftmoe_model_info", {"policy": "m", "version": "v1", "kind": "ftmoe"}) is None
    assert M.REGISTRY.get_sample_value("ftmoe_model_info", {"policy": "m", "version": "v2", "kind": "ftmoe"}) == 1.0
    assert M.REGISTRY.get_sample_value("ftmoe_model_experts", {"policy": "m"}) == 13.0


async def test_a_second_policy_over_the_same_nodes_is_named_in_a_condition_and_one_event(cluster: Any) -> None:
    other = policy("Observe")
    other["metadata"] = {"name": "observe", "uid": "uid-o", "generation": 1}
    cluster.objects[POLICIES, None, "observe"] = other
    deps, events = deps_for(cluster, FixedSource({n: 0.1 for n in NODES}), FirstFeatureModel())
    first = await asyncio.to_thread(run_interval, policy(), deps, 1_000_000.0)
    shared = next(c for c in first.status["conditions"] if c["type"] == "NodesExclusive")
    assert shared["status"] == "False" and shared["reason"] == "NodesSharedWithPolicy"
    assert f"{len(NODES)} of {len(NODES)} with observe" in shared["message"]
    assert first.status["conditions"][0]["status"] == "True", "a shared node set warns; it does not stop predictions"
    cluster.objects[POLICIES, None, "p"]["status"] = first.status
    await asyncio.to_thread(run_interval, cluster.objects[POLICIES, None, "p"], deps, 1_000_010.0)
    assert [e[1] for e in events].count("NodesSharedWithPolicy") == 1, "one event when it starts, not one per interval"


async def test_a_changed_model_drops_the_challenger_tuned_from_the_old_one(cluster: Any) -> None:
    deps, _ = deps_for(cluster, FixedSource({n: 0.1 for n in NODES}), FirstFeatureModel())
    first = await asyncio.to_thread(run_interval, policy(), deps, 1_000_000.0)
    assert first.status["model"]["version"] == "test-1"
    learner = deps.learners["p"]
    learner.tuned = LoadedModel(FirstFeatureModel(), "test-1-tuned", "tuned in memory", Path("."))
    second = await asyncio.to_thread(run_interval, policy(), deps, 1_000_010.0)
    assert second.status["model"]["version"] == "test-1-tuned", "the promoted challenger serves"
    deps.models.put(ModelRef(source="Path", path="/models/b"), LoadedModel(FirstFeatureModel(), "b-1", "Path", Path("/models/b")))
    third = await asyncio.to_thread(run_interval, policy(model={"source": "Path", "path": "/models/b"}), deps, 1_000_020.0)
    assert third.status["model"]["version"] == "b-1", "a challenger of the old model must not serve the new one"
    assert learner.tuned is None and learner.model_key == "Path:/models/b:"


async def test_a_released_policy_leaves_no_state_and_no_metric_series(cluster: Any) -> None:
    from ftmoe.operator import own_metrics as M

    deps, _ = deps_for(cluster, FixedSource({n: 0.1 for n in NODES}), FirstFeatureModel())
    await asyncio.to_thread(run_interval, policy(), deps, 1_000_000.0)
    dotted = {**policy(), "metadata": {"name": "p.x", "uid": "uid-px", "generation": 1}}
    cluster.objects[POLICIES, None, "p.x"] = dotted
    await asyncio.to_thread(run_interval, dotted, deps, 1_000_000.0)
    assert "p" in deps.learners and deps.written.get("p") and deps.written.get("p.x")
    assert M.REGISTRY.get_sample_value("ftmoe_node_risk", {"policy": "p", "node": "n1"}) is not None
    deps.release("p")
    assert "p" not in deps.learners and "p" not in deps.written
    assert deps.written.get("p.x") and "p.x" in deps.learners, "another policy whose name starts with 'p.' keeps its state"
    assert M.REGISTRY.get_sample_value("ftmoe_node_risk", {"policy": "p", "node": "n1"}) is None
    assert M.REGISTRY.get_sample_value("ftmoe_stale_nodes", {"policy": "p"}) is None
    left = {s.name for m in M.REGISTRY.collect() for s in m.samples if s.labels.get("policy") == "p"}
    assert not left, f"series of the released policy still exported: {sorted(left)}"


def token_run(cluster: Any, labels: dict[str, str] | None, allowed: str | None) -> tuple[Any, list[Any], list[str | None]]:
    """One interval of a policy naming Secret ftmoe-system/prom (absent when ``labels`` is None)."""
    cluster.resources["v1/secrets"] = {}
    if labels is not None:
        cluster.objects["v1/secrets", "ftmoe-system", "prom"] = {
            "metadata": {"name": "prom", "namespace": "ftmoe-system", "labels": labels, "annotations": {"ftmoe.io/allowed-urls": allowed}},
            "data": {"token": "czNjcmV0"},
        }
    source = FixedSource({"n1": 0.95})
    deps, events = deps_for(cluster, source, FirstFeatureModel())
    tokens: list[str | None] = []
    deps.make_source = lambda spec, token: (tokens.append(token), source)[1]
    body = policy(prometheus={"url": "http://prom", "bearerTokenSecret": {"name": "prom"}})
    return run_interval(body, deps, 1_000_000.0), events, tokens


@pytest.mark.parametrize(
    ("labels", "allowed", "says"),
    [
        (None, None, "not found"),
        ({}, "http://prom", "not marked as a Prometheus credential"),
        ({"ftmoe.io/prometheus-credential": "true"}, "http://elsewhere:9090", "may be sent only to http://elsewhere:9090"),
    ],
)
async def test_a_token_the_policy_may_not_use_stops_the_interval_before_any_query(
    cluster: Any, labels: dict[str, str] | None, allowed: str | None, says: str
) -> None:
    result, events, tokens = await asyncio.to_thread(token_run, cluster, labels, allowed)
    conds = {c["type"]: c for c in result.status["conditions"]}
    assert conds["MetricsAvailable"]["status"] == "False" and conds["MetricsAvailable"]["reason"] == "CredentialRefused"
    assert says in conds["MetricsAvailable"]["message"] and conds["Ready"]["status"] == "False"
    assert tokens == [], "no source was built, so the token went nowhere"
    assert [e[1] for e in events] == ["CredentialRefused"], "one Warning event when Ready turns False"
    assert not node(cluster, "n1")["spec"].get("unschedulable"), "no metrics, no action"


async def test_an_allowed_token_reaches_the_source(cluster: Any) -> None:
    result, _, tokens = await asyncio.to_thread(token_run, cluster, {"ftmoe.io/prometheus-credential": "true"}, "http://prom")
    assert tokens == ["s3cret"] and {c["type"]: c["status"] for c in result.status["conditions"]}["MetricsAvailable"] == "True"


class NaNModel(FirstFeatureModel):
    """Risk NaN for every node: a model gone wrong."""

    def raw_predict(self, features: np.ndarray, migrations: np.ndarray, ends: np.ndarray) -> Prediction:
        out = super().raw_predict(features, migrations, ends)
        return Prediction(np.full_like(out.fault_probability, np.nan), out.type_probability, out.threshold)


async def test_an_impossible_input_is_withheld_not_acted_on(cluster: Any) -> None:
    from ftmoe.operator import own_metrics as M

    deps, _ = deps_for(cluster, FixedSource({"n0": 0.1, "n1": 2.0, "n2": 0.1, "n3": 0.1}), FirstFeatureModel())
    before = M.REGISTRY.get_sample_value("ftmoe_inputs_withheld_total", {"policy": "p", "reason": "invalid-input"}) or 0.0
    result = await asyncio.to_thread(run_interval, policy(), deps, 1_000_000.0)
    assert not node(cluster, "n1")["spec"].get("unschedulable"), "memory_used_fraction 2.0 would read as risk 2.0"
    nfp = cluster.objects[PREDICTIONS, None, "p.n1"]["status"]
    assert nfp["action"] == "withheld" and "memory_used_fraction=2" in nfp["reason"] and nfp["risk"] is None
    inputs = {c["type"]: c for c in result.status["conditions"]}["InputsValid"]
    assert inputs["status"] == "False" and "n1: invalid-input" in inputs["message"]
    assert node(cluster, "n1")["metadata"]["annotations"][A.DECISION] == "withheld: invalid-input"
    after = M.REGISTRY.get_sample_value("ftmoe_inputs_withheld_total", {"policy": "p", "reason": "invalid-input"})
    assert after == before + 1


async def test_a_nan_model_writes_status_and_acts_on_nothing(cluster: Any) -> None:
    """Before: every interval failed with HTTP 400 (NaN in JSON) and nodes got ftmoe.io/risk: nan."""
    cluster.objects["v1/nodes", None, "n2"] = {
        "metadata": {
            "name": "n2",
            "uid": "uid-n2",
            "labels": {},
            "annotations": {A.CORDONED_BY: "p", A.HEALTHY_SINCE: "2000-01-01T00:00:00Z"},
        },
        "spec": {"unschedulable": True},
        "status": {"conditions": [{"type": "Ready", "status": "True"}], "allocatable": {"cpu": "4"}},
    }
    deps, _ = deps_for(cluster, FixedSource({n: 0.9 for n in NODES}), NaNModel())
    result = await asyncio.to_thread(run_interval, policy(), deps, 1_000_000.0)
    assert result.status["staleNodes"] == 4 and {c["type"]: c["status"] for c in result.status["conditions"]}["InputsValid"] == "False"
    assert node(cluster, "n2")["spec"]["unschedulable"] is True, "NaN is not healthy: no uncordon"
    assert not any(node(cluster, n)["spec"].get("unschedulable") for n in ("n0", "n1", "n3"))
    assert all(A.RISK not in node(cluster, n)["metadata"]["annotations"] for n in ("n0", "n1", "n3"))
    assert cluster.objects[PREDICTIONS, None, "p.n0"]["status"]["action"] == "withheld"


async def test_a_failing_interval_says_so_in_status_once_in_events_and_every_time_in_the_metric(cluster: Any) -> None:
    from ftmoe.operator import own_metrics as M
    from ftmoe.operator.failures import interval_failed

    deps, events = deps_for(cluster, FixedSource({"n0": 0.1}), FirstFeatureModel())
    await asyncio.to_thread(run_interval, policy(), deps, 1_000_000.0)
    body = policy()
    body["status"] = cluster.objects[POLICIES, None, "p"]["status"]
    before = M.REGISTRY.get_sample_value("ftmoe_interval_failures_total", {"policy": "p"}) or 0.0
    for _ in range(3):
        await asyncio.to_thread(interval_failed, deps, body, RuntimeError("the model ConfigMap has 4 features, its weights 19"))
    status = cluster.objects[POLICIES, None, "p"]["status"]
    conds = {c["type"]: c for c in status["conditions"]}
    assert conds["Ready"]["status"] == "False" and conds["Ready"]["reason"] == "IntervalFailed"
    assert "4 features, its weights 19" in conds["Ready"]["message"] and conds["ModelLoaded"]["status"] == "True", "the rest is kept"
    assert [e[1] for e in events].count("IntervalFailed") == 1, "one event per distinct error"
    assert M.REGISTRY.get_sample_value("ftmoe_interval_failures_total", {"policy": "p"}) == before + 3
    await asyncio.to_thread(interval_failed, deps, body, RuntimeError("another error"))
    assert [e[1] for e in events].count("IntervalFailed") == 2


def test_a_broken_configmap_model_leaves_no_folder_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    cm = {"metadata": {"resourceVersion": "7"}, "data": {"config.json": "{not json"}}
    reads: list[str] = []
    store = ModelStore(lambda ns, name: (reads.append(name), cm)[1])
    ref = ModelRef(source="ConfigMap", config_map={"namespace": "m", "name": "broken"})
    for _ in range(3):
        with pytest.raises(ModelFileError, match="resourceVersion 7"):
            store.get(ref)
    assert list(tmp_path.glob("ftmoe-model-*")) == [] and len(reads) == 3


async def test_every_write_asks_for_the_lease_first(kmock: Any) -> None:
    """A leader frozen past its Lease wrote status 82 ms after 'lost Lease': now the write is not sent."""
    from ftmoe.operator.kube import NotLeader

    kmock.resources["v1/nodes"] = {}
    kmock.objects["v1/nodes", None, "n"] = {"metadata": {"name": "n"}, "spec": {}}
    cfg = client.Configuration()
    cfg.host = str(kmock.url).rstrip("/")
    leader = [True]
    kube = Kube(client.ApiClient(cfg), may_write=lambda: leader[0])
    await asyncio.to_thread(kube.patch_node, "n", {"spec": {"unschedulable": True}})
    leader[0] = False
    for write in (
        lambda: kube.patch_node("n", {"spec": {"unschedulable": None}}),
        lambda: kube.evict("ns", "p", 0),
        lambda: kube.patch_policy_status("p", {}),
        lambda: kube.delete_pod("ns", "p", 0),
    ):
        with pytest.raises(NotLeader):
            await asyncio.to_thread(write)
    assert kmock.objects["v1/nodes", None, "n"]["spec"]["unschedulable"] is True, "the second patch never went out"


async def test_a_node_that_leaves_the_selector_is_handed_over_cordoned_with_a_warning(cluster: Any) -> None:
    deps, events = deps_for(cluster, FixedSource({"n0": 0.1, "n1": 0.95, "n2": 0.1, "n3": 0.1}), FirstFeatureModel())
    await asyncio.to_thread(run_interval, policy(), deps, 1_000_000.0)
    assert node(cluster, "n1")["spec"]["unschedulable"] is True
    narrowed = policy(nodeSelector={"matchLabels": {"pool": "gpu"}})  # no node carries it: n1 leaves with the rest
    await asyncio.to_thread(run_interval, narrowed, deps, 1_000_010.0)
    n1 = node(cluster, "n1")
    assert n1["spec"]["unschedulable"] is True, "it may still be failing: a human decides"
    assert A.CORDONED_BY not in n1["metadata"]["annotations"] and A.RISK_LABEL not in n1["metadata"]["labels"]
    assert ("n1", "CordonHandedOver") in [(e[0], e[1]) for e in events]


async def test_deleting_a_policy_uncordons_what_it_cordoned(cluster: Any) -> None:
    from ftmoe.operator.remediation import release_nodes

    deps, events = deps_for(cluster, FixedSource({"n0": 0.1, "n1": 0.95, "n2": 0.1, "n3": 0.1}), FirstFeatureModel())
    await asyncio.to_thread(run_interval, policy(), deps, 1_000_000.0)
    released = await asyncio.to_thread(lambda: release_nodes(deps.kube, deps.events, policy(), deps.kube.list_nodes(), True))
    assert set(released) == set(NODES), "every node carried the policy's marks"
    assert not node(cluster, "n1")["spec"].get("unschedulable") and ("n1", "CordonReleased") in [(e[0], e[1]) for e in events]
    assert not any(k.startswith("ftmoe.io/") and k != A.CORDON_HISTORY for n in NODES for k in node(cluster, n)["metadata"]["annotations"])
