"""Feature windows from Prometheus responses: queries, node matchers, alignment, gaps."""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from ftmoe.contract.features import FEATURE_NAMES
from ftmoe.operator import own_metrics as M
from ftmoe.operator.node_metrics import FeatureWindow, PrometheusSource, fill, promql_regex_literal, queries_for, render, window_times
from ftmoe.operator.policy import PrometheusSpec
from ftmoe.operator.prometheus_range import Series, as_series


def test_every_simulator_feature_has_a_default_query_and_unknown_ones_are_reported() -> None:
    spec = PrometheusSpec(url="http://p", queries={"gpu_temperature": "max by (node) (dcgm_gpu_temp{{node}})"})
    found, missing = queries_for([*FEATURE_NAMES, "gpu_temperature", "fan_speed"], spec)
    assert set(found) == {*FEATURE_NAMES, "gpu_temperature"} and missing == ["fan_speed"]


def test_render_fills_matcher_window_and_node_label() -> None:
    spec = PrometheusSpec(url="http://p", node_label="kubernetes_node")
    found, _ = queries_for(["memory_used_fraction", "cpu_utilisation"], spec)
    q = render(found["cpu_utilisation"], spec.node_label, ["node-1", "a.b"], 15.0)
    assert 'kubernetes_node=~"node-1|a\\\\.b"' in q and "[15s]" in q and "by (kubernetes_node)" in q
    assert "{node}" not in q and "{window}" not in q
    assert promql_regex_literal("n-1.x") == "n-1\\\\.x"  # '-' stays bare: PromQL rejects "\-"


def test_window_times_are_one_step_apart_and_end_now() -> None:
    t = window_times(1000.7004, 5.0, 4)
    np.testing.assert_allclose(t, [985.7, 990.7, 995.7, 1000.7])


def test_fill_places_samples_and_leaves_gaps_nan() -> None:
    times = window_times(100.0, 10.0, 3)  # 80, 90, 100
    out = np.full((3, 2), np.nan)
    series = [
        {"metric": {"node": "a"}, "values": [[80, "1"], [90, "2"], [100, "3"]]},
        {"metric": {"node": "b"}, "values": [[90, "5"], [100, "NaN"]]},
        {"metric": {"node": "not-selected"}, "values": [[100, "9"]]},
    ]
    assert fill(out, as_series(series), {"a": 0, "b": 1}, times, 10.0, "node")
    assert list(out[:, 0]) == [1, 2, 3]
    assert np.isnan(out[0, 1]) and out[1, 1] == 5 and np.isnan(out[2, 1])
    assert not fill(np.full((3, 2), np.nan), [], {"a": 0}, times, 10.0, "node")


def test_complete_needs_every_value_and_no_error() -> None:
    values = np.ones((2, 3, 2))
    values[0, 1, 1] = np.nan
    w = FeatureWindow(["a", "b", "c"], np.array([0.0, 1.0]), values, ["f", "g"])
    assert list(w.complete) == [True, False, True]
    w.error = "down"
    assert not w.complete.any()


def test_garbage_samples_are_gaps_and_duplicate_series_leave_the_node_without_data() -> None:
    from ftmoe.operator.node_metrics import fill

    times = np.array([0.0, 5.0, 10.0])
    out = np.full((3, 2), np.nan)
    series = [
        {"metric": {"node": "a"}, "values": [[0, "1.5"], [5, ""], [10, None], ["x", "2"], [10], None]},
        {"metric": {"node": "b"}, "values": [[0, "1"], [5, "1"]]},
        {"metric": {"node": "b"}, "values": [[0, "9"], [5, "9"]]},  # not aggregated by node: ambiguous
    ]
    assert fill(out, as_series(series), {"a": 0, "b": 1}, times, 5.0, "node")
    assert out[0, 0] == 1.5 and np.isnan(out[1:, 0]).all()
    assert np.isnan(out[:, 1]).all()


class SampleLimitedPrometheus:
    """Answers like Prometheus with a small --query.max-samples: a query naming more than
    ``limit`` nodes (or none) is refused with its 422; smaller ones return one series per node."""

    def __init__(self, limit: int, nodes: list[str]):
        self.limit, self.nodes, self.queries = limit, nodes, []  # type: ignore[var-annotated]

    def query_range(self, query: str, start: float, end: float, step: str) -> list[Series]:
        from prometheus_api_client import PrometheusApiClientException

        self.queries.append(query)
        m = re.search(r'node=~"([^"]*)"', query)
        named = m.group(1).split("|") if m else None
        if named is None or len(named) > self.limit:
            raise PrometheusApiClientException(
                'HTTP Status Code 422 (b\'{"status":"error","errorType":"execution","error":"query processing would '
                "load too many samples into memory in query execution\"}')"
            )
        t = start
        return as_series([{"metric": {"node": n}, "values": [[t, "0.5"]]} for n in named])


def source_with(fake: Any) -> PrometheusSource:
    src = PrometheusSource(PrometheusSpec(url="http://p"))
    src.client = fake
    return src


def test_a_query_over_the_sample_limit_is_asked_again_in_halves() -> None:
    nodes = [f"node-{i}" for i in range(300)]
    fake = SampleLimitedPrometheus(limit=80, nodes=nodes)
    w = source_with(fake).fetch(nodes, ["memory_used_fraction"], 1000.0, 5.0, 1, 15.0)
    assert w.error is None and np.isfinite(w.values).all()  # every node got its value
    assert 'node!=""' in fake.queries[0]  # above 200 nodes: no regex of names at first
    assert len(fake.queries) == 1 + 1 + 2 + 4  # all, then 300 -> 150+150 -> four of 75
    assert M.PROMETHEUS_CHUNKED.labels("memory_used_fraction")._value.get() >= 3


def test_a_query_over_the_sample_limit_even_for_one_node_names_the_flag() -> None:
    fake = SampleLimitedPrometheus(limit=0, nodes=["a", "b"])
    w = source_with(fake).fetch(["a", "b"], ["memory_used_fraction"], 1000.0, 5.0, 1, 15.0)
    assert w.error is not None and "--query.max-samples" in w.error and "memory_used_fraction" in w.error
    assert not w.complete.any()  # nothing is acted on


class GridPrometheus:
    """Answers a range query with value(node, t) at each step from start to end, as
    Prometheus evaluates one; records the (start, end) of each query. ``gaps`` holds
    (node, t) pairs that have no sample yet (a late scrape)."""

    def __init__(self, nodes: list[str]):
        self.nodes, self.asked, self.gaps = nodes, [], set()  # type: ignore[var-annotated]

    @staticmethod
    def value(node: str, t: float) -> float:
        return (int(node.split("-")[1]) * 1000 + t) % 97 / 97

    def query_range(self, query: str, start: float, end: float, step: str) -> list[Series]:
        t0, t1, s = start, end, float(step.rstrip("s"))
        self.asked.append((round(t0, 3), round(t1, 3)))
        ts = np.arange(t0, t1 + s / 2, s)
        return as_series(
            [
                {"metric": {"node": n}, "values": [[t, str(self.value(n, t))] for t in ts if (n, round(t, 3)) not in self.gaps]}
                for n in self.nodes
            ]
        )


def fetch_counts() -> tuple[float, float]:
    return tuple(M.PROMETHEUS_WINDOW_FETCHES.labels(k)._value.get() for k in ("full", "incremental"))  # type: ignore[return-value]


def test_the_next_interval_reads_only_its_new_steps_and_equals_a_full_read() -> None:
    nodes = ["node-1", "node-2", "node-3"]
    fake = GridPrometheus(nodes)
    src = source_with(fake)
    full0, inc0 = fetch_counts()
    src.fetch(nodes, ["memory_used_fraction"], 1000.0, 5.0, 6, 15.0)
    assert fake.asked == [(975.0, 1000.0)]
    # Two intervals later, 40 ms late (scheduling jitter): onto the last grid, the two new steps and the last one again.
    w = src.fetch(nodes, ["memory_used_fraction"], 1010.04, 5.0, 6, 15.0)
    assert fake.asked[-1] == (1000.0, 1010.0)
    np.testing.assert_allclose(w.times, [985.0, 990.0, 995.0, 1000.0, 1005.0, 1010.0])
    assert fetch_counts() == (full0 + 1, inc0 + 1)
    fresh = source_with(GridPrometheus(nodes)).fetch(nodes, ["memory_used_fraction"], 1010.0, 5.0, 6, 15.0)
    np.testing.assert_array_equal(w.values, fresh.values)
    assert w.complete.all()


def test_off_grid_a_new_node_set_or_a_failed_read_means_a_full_read() -> None:
    nodes = ["node-1", "node-2"]
    fake = GridPrometheus(nodes)
    src = source_with(fake)
    src.fetch(nodes, ["memory_used_fraction"], 1000.0, 5.0, 4, 15.0)
    src.fetch(nodes, ["memory_used_fraction"], 1007.5, 5.0, 4, 15.0)  # half a step off the grid
    assert fake.asked[-1] == (992.5, 1007.5)
    src.fetch(nodes[:1], ["memory_used_fraction"], 1012.5, 5.0, 4, 15.0)  # another node set
    assert fake.asked[-1] == (997.5, 1012.5)
    src.fetch(nodes, ["memory_used_fraction"], 1027.5, 5.0, 4, 15.0)  # on the grid, but a window later: nothing to keep
    assert fake.asked[-1] == (1012.5, 1027.5)
    src.client = SampleLimitedPrometheus(limit=0, nodes=nodes)  # fails
    assert src.fetch(nodes, ["memory_used_fraction"], 1032.5, 5.0, 4, 15.0).error
    src.client = fake
    src.fetch(nodes, ["memory_used_fraction"], 1037.5, 5.0, 4, 15.0)
    assert fake.asked[-1] == (1022.5, 1037.5)  # the failed read left nothing to build on


def test_a_late_sample_is_read_again_until_it_is_in() -> None:
    nodes = ["node-1", "node-2"]
    fake = GridPrometheus(nodes)
    fake.gaps = {("node-2", 995.0), ("node-2", 1000.0)}  # node-2's last two scrapes are late
    src = source_with(fake)
    w = src.fetch(nodes, ["memory_used_fraction"], 1000.0, 5.0, 6, 15.0)
    assert w.complete.tolist() == [True, False]
    fake.gaps = set()
    w = src.fetch(nodes, ["memory_used_fraction"], 1005.0, 5.0, 6, 15.0)
    assert fake.asked[-1] == (995.0, 1005.0)  # from the first gap, not only the last step
    assert w.complete.all()
    # A node with no value anywhere in its window keeps its gaps without forcing full reads.
    fake.gaps = {("node-2", t) for t in np.arange(900.0, 1100.0, 5.0)}
    src.fetch(nodes, ["memory_used_fraction"], 1040.0, 5.0, 6, 15.0)
    w = src.fetch(nodes, ["memory_used_fraction"], 1045.0, 5.0, 6, 15.0)
    assert fake.asked[-1] == (1040.0, 1045.0) and w.complete.tolist() == [True, False]


class RecordingPrometheus:
    """Answers a query of the recorded series as Prometheus would: one series per node and
    feature asked for (``feature=~"a|b"``), each with its feature label, except ``absent``
    features (no rule loaded for them)."""

    def __init__(self, nodes: list[str], absent: tuple[str, ...] = ()):
        self.nodes, self.absent, self.queries = nodes, absent, []  # type: ignore[var-annotated]

    def query_range(self, query: str, start: float, end: float, step: str) -> list[Series]:
        self.queries.append(query)
        asked = re.search(r'feature=~"([^"]*)"', query).group(1).split("|")  # type: ignore[union-attr]
        t = start
        return as_series(
            [
                {"metric": {"__name__": "ftmoe:node_feature", "feature": f, "node": n}, "values": [[t, str(0.1 * (i + 1))]]}
                for f in asked
                if f not in self.absent
                for i, n in enumerate(self.nodes)
            ]
        )


FOUR = ["cpu_utilisation", "memory_used_fraction", "disk_io_utilisation", "network_receive_bytes_per_second"]


def test_recorded_features_come_from_a_few_queries_of_one_series_split_by_their_feature_label() -> None:
    nodes = ["node-1", "node-2"]
    fake = RecordingPrometheus(nodes)
    src = PrometheusSource(PrometheusSpec(url="http://p", recorded_features="ftmoe:node_feature"))
    src.client = fake
    w = src.fetch(nodes, FOUR, 1000.0, 5.0, 1, 15.0)
    assert w.error is None and w.missing_features == [] and w.complete.all()
    # One query a thread, every feature in exactly one of them, none of the per-feature PromQL.
    assert len(fake.queries) == 4 and all(q.startswith('ftmoe:node_feature{feature=~"') for q in fake.queries)
    asked = sorted(f for q in fake.queries for f in re.search(r'feature=~"([^"]*)"', q).group(1).split("|"))  # type: ignore[union-attr]
    assert asked == sorted(FOUR)
    assert all(q.endswith(',node=~"node-1|node-2"}') for q in fake.queries)  # the node matcher, as for a feature query
    np.testing.assert_allclose(w.values[0], [[0.1] * 4, [0.2] * 4])  # each node's own series, in the model's feature order
    assert all(M.PROMETHEUS_SAMPLES.labels(f)._value.get() == 2 for f in FOUR)  # each feature's samples, from the query that read it


def test_a_feature_without_a_recorded_series_is_missing_and_the_condition_says_load_the_rules() -> None:
    from ftmoe.operator.interval import metrics_condition

    nodes = ["node-1"]
    src = PrometheusSource(PrometheusSpec(url="http://p", recorded_features="ftmoe:node_feature"))
    src.client = RecordingPrometheus(nodes, absent=("disk_io_utilisation",))
    w = src.fetch(nodes, FOUR, 1000.0, 5.0, 1, 15.0)
    assert w.missing_features == ["disk_io_utilisation"] and not w.complete.any()  # never acted on
    cond = metrics_condition(w, nodes, {})
    assert cond.reason == "MissingFeatures" and "ftmoe operator recording-rules" in cond.message and "disk_io_utilisation" in cond.message
