"""Feature windows from Prometheus responses: queries, node matchers, alignment, gaps."""

from __future__ import annotations

import numpy as np

from ftmoe.contract.features import FEATURE_NAMES
from ftmoe.operator.node_metrics import FeatureWindow, fill, promql_regex_literal, queries_for, render, window_times
from ftmoe.operator.policy import PrometheusSpec


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
    assert fill(out, series, {"a": 0, "b": 1}, times, 10.0, "node")
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
    assert fill(out, series, {"a": 0, "b": 1}, times, 5.0, "node")
    assert out[0, 0] == 1.5 and np.isnan(out[1:, 0]).all()
    assert np.isnan(out[:, 1]).all()
