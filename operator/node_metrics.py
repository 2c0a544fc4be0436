"""Each node's feature window from Prometheus: one range query per feature for all nodes.

Up to ``MATCH_NODES_UP_TO`` nodes the query names them (``node=~"a|b|..."``); above that
it selects every series with the node label and keeps the selected nodes' own, since a
regex of thousands of names costs Prometheus more than the extra series. A response that
Prometheus refuses for its sample limit (``--query.max-samples``) is asked again in halves
of the node list, down to one node, and the error names the flag when even that fails.

With ``spec.prometheus.recordedFeatures`` every feature comes from four queries of a series
that Prometheus recording rules keep (``recording_rules.py`` writes them from the same
queries), its ``feature`` label naming the feature: Prometheus evaluates the feature
queries on its own schedule, and an interval reads their results.

The model's feature names are the contract. Every name needs a query: the policy's own
(``spec.prometheus.queries``) or the default for that name (ftmoe.contract.features,
node_exporter/kubelet series with a ``node`` label). A feature without a query, or whose
query returns nothing, is reported, never filled in. A node is usable only when every
feature has a value at every step of its window; anything less leaves the node without
a prediction this interval, so the operator never acts on data it could not read.
"""

from __future__ import annotations

import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import unquote

import numpy as np
from prometheus_api_client import PrometheusApiClientException

from ftmoe.contract.features import BY_NAME
from ftmoe.operator import own_metrics as M
from ftmoe.operator.durations import format_duration
from ftmoe.operator.policy import PrometheusSpec
from ftmoe.operator.prometheus_range import RangeReader, Series


@dataclass
class FeatureWindow:
    nodes: list[str]
    times: np.ndarray  # [W] epoch seconds, oldest first
    values: np.ndarray  # [W, H, F]; NaN where Prometheus had no value
    features: list[str]
    missing_features: list[str] = field(default_factory=list)
    error: str | None = None  # Prometheus unreachable or a query failed
    unreachable: bool = False  # the error was the connection, not the query
    recorded: str | None = None  # the recorded series read (spec.prometheus.recordedFeatures), if any

    @property
    def complete(self) -> np.ndarray:
        """[H] True for nodes with every feature at every step."""
        if self.error or self.missing_features:
            return np.zeros(len(self.nodes), dtype=bool)
        return np.isfinite(self.values).all(axis=(0, 2))


def default_query(feature: str, node_label: str) -> str | None:
    feat = BY_NAME.get(feature)
    if feat is None:
        return None
    # The defaults group by `node`; a cluster whose series name the node otherwise gets the same queries.
    return feat.promql.replace("by (node)", f"by ({node_label})")


def queries_for(features: list[str], spec: PrometheusSpec) -> tuple[dict[str, str], list[str]]:
    """The query per model feature and the features that have none."""
    found: dict[str, str] = {}
    missing: list[str] = []
    for name in features:
        q = spec.queries.get(name) or default_query(name, spec.node_label)
        if q:
            found[name] = q
        else:
            missing.append(name)
    return found, missing


MATCH_NODES_UP_TO = 200
QUERY_THREADS = 4
KEPT_WINDOWS = 8  # last windows kept per Prometheus: one per policy that reads it, a few spare
GRID_TOLERANCE = 0.05  # of a step: how far off the last window's grid an interval may start and still reuse it


@dataclass
class CachedWindow:
    times: np.ndarray  # [W]
    values: np.ndarray  # [W, H, F]


def kept_steps(last: np.ndarray, steps: int) -> int:
    """How many leading steps of the new window to take from the last one [W, H, F], moved
    on by ``steps``. Never its last step (read again: a scrape may have landed since). Not a
    gap either, where that node's series had values elsewhere in the window: a late sample
    (a remote-write or federation lag) is read again until it is in, where a full query would
    have found it too. A series with no value at all in the window keeps its gaps."""
    window = last.shape[0]
    kept = window - 1 - steps
    reporting = np.isfinite(last).any(axis=0)  # [H, F]
    late = (~np.isfinite(last[steps : steps + kept]) & reporting).any(axis=(1, 2))  # [kept]
    return int(np.argmax(late)) if late.any() else kept


def steps_after(last: np.ndarray, times: np.ndarray, step: float) -> int | None:
    """Whole steps from the last window to this one, when this one ends on the last one's
    grid (within ``GRID_TOLERANCE`` of a step: the intervals keep a steady cadence, to
    scheduling jitter); None otherwise."""
    moved = float(times[-1] - last[-1])
    steps = round(moved / step)
    if steps < 0 or abs(moved - steps * step) > GRID_TOLERANCE * step:
        return None
    return steps


def render(query: str, node_label: str, nodes: list[str] | None, rate_window: float) -> str:
    """The query for ``nodes`` (None: every series that has the node label)."""
    if nodes is None:
        matcher = f'{node_label}!=""'
    else:
        matcher = f'{node_label}=~"{"|".join(promql_regex_literal(n) for n in nodes)}"'
    # `metric{{node}}` -> `metric{node=~"..."}`; `{mode="idle",{node}}` gains the matcher.
    return query.replace("{node}", matcher).replace("{window}", format_duration(rate_window))


def promql_regex_literal(text: str) -> str:
    """``text`` as a literal inside a PromQL regex string: regex metacharacters get a
    backslash, which the PromQL string itself needs doubled (Python's re.escape also
    escapes '-', which PromQL rejects)."""
    return re.sub(r"([.^$*+?()\[\]{}|\\])", r"\\\\\1", text)


def window_times(now: float, step: float, window: int) -> np.ndarray:
    """The W sample times, one step apart, ending at ``now`` (to the millisecond): the
    freshest samples there are. A window that ended at the last whole step would make each
    prediction up to one interval older than the node conditions read in the same interval."""
    end = np.floor(now * 1000.0) / 1000.0
    return end - step * np.arange(window - 1, -1, -1, dtype=np.float64)


class MetricsSource(Protocol):
    def fetch(self, nodes: list[str], features: list[str], now: float, step: float, window: int, rate_window: float) -> FeatureWindow: ...


class RangeClient(Protocol):
    def query_range(self, query: str, start: float, end: float, step: str) -> list[Series]: ...


class PrometheusSource:
    """Reads feature windows through prometheus-api-client's session (prometheus_range.py)."""

    def __init__(self, spec: PrometheusSpec, token: str | None = None):
        import requests
        from prometheus_api_client import PrometheusConnect
        from urllib3.util.retry import Retry

        headers: dict[str, str] = {}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        session = requests.Session()
        session.verify = False if spec.insecure_skip_verify else (spec.ca_file or True)
        self.spec = spec
        # One quick retry only: a Prometheus that is down must fail the interval fast, not stall it.
        connect = PrometheusConnect(
            url=spec.url,
            headers=headers,
            session=session,
            timeout=int(max(1, spec.timeout)),
            retry=Retry(total=1, backoff_factor=0.2, status_forcelist=[502, 503, 504], allowed_methods=None),
        )
        self.client: RangeClient = RangeReader(connect, session, spec.timeout)
        self.pool = ThreadPoolExecutor(max_workers=QUERY_THREADS, thread_name_prefix="prometheus")
        self.windows: dict[tuple[Any, ...], CachedWindow] = {}  # the last window per (nodes, features, ...), oldest first
        self.lock = threading.Lock()  # policies sharing a Prometheus fetch from their own threads

    def fetch(self, nodes: list[str], features: list[str], now: float, step: float, window: int, rate_window: float) -> FeatureWindow:
        times = window_times(now, step, window)
        values = np.full((window, len(nodes), len(features)), np.nan)
        result = FeatureWindow(nodes, times, values, list(features))
        recorded = self.spec.recorded_features
        if recorded:
            # The recorded series instead of the feature queries: Prometheus evaluated those already.
            result.recorded = recorded
            queries: dict[str, str] = {}
            # In QUERY_THREADS parts: Prometheus answers them in parallel, where one would serialise 16 features' series.
            parts = [features[i::QUERY_THREADS] for i in range(min(QUERY_THREADS, len(features)))]
            jobs = [(recorded, recorded_query(recorded, part), part) for part in parts]
        else:
            queries, result.missing_features = queries_for(features, self.spec)
            jobs = [(name, queries[name], [name]) for name in features if name in queries]
        if not nodes:
            return result
        key = (tuple(nodes), tuple(features), tuple(sorted(queries.items())), recorded, step, window, rate_window)
        with self.lock:
            last = self.windows.pop(key, None)
        kept = 0  # leading steps of the window taken from the last fetch
        if last is not None:
            steps = steps_after(last.times, times, step)
            if steps is not None and steps < window - 1:
                # Onto the last window's grid, so its older steps are the very samples a full query would return.
                result.times = times = last.times + steps * step
                kept = kept_steps(last.values, steps)
                values[:kept] = last.values[steps : steps + kept]
        M.PROMETHEUS_WINDOW_FETCHES.labels("incremental" if kept else "full").inc()
        asked = times[kept:]
        index = {n: i for i, n in enumerate(nodes)}
        start, end = float(asked[0]), float(asked[-1])
        # A few queries in flight at once: Prometheus evaluates one while the last one's answer is read.
        pending = [(label, names, self.pool.submit(self.query, label, q, nodes, start, end, step, rate_window)) for label, q, names in jobs]
        found: dict[str, bool] = {}
        for label, names, future in pending:
            try:
                series = future.result()
            except Exception as err:  # noqa: BLE001 - connection, HTTP and parse errors all mean "no data"
                for _, _, rest in pending:
                    rest.cancel()
                result.unreachable = not isinstance(err, PrometheusApiClientException)
                result.error = (
                    unreachable_message(err, self.spec.url, self.spec.timeout)
                    if result.unreachable
                    else f"query for {label} failed: {describe(err)}"
                )
                return result
            for name, part in (by_feature(series, names) if recorded else {label: series}).items():
                f = features.index(name)
                M.PROMETHEUS_SAMPLES.labels(name).set(sum(len(s.values) for s in part))
                found[name] = fill(values[kept:, :, f], part, index, asked, step, self.spec.node_label)
        for f, name in enumerate(features):
            if (name in queries or recorded) and not found.get(name) and not np.isfinite(values[:, :, f]).any():
                result.missing_features.append(name)
        with self.lock:
            self.windows[key] = CachedWindow(times.copy(), values.copy())
            while len(self.windows) > KEPT_WINDOWS:
                self.windows.pop(next(iter(self.windows)))
        return result

    def query(self, feature: str, query: str, nodes: list[str], start: float, end: float, step: float, rate_window: float) -> list[Series]:
        """One feature's series for ``nodes``: all at once, else in halves (sample limit)."""
        if len(nodes) > MATCH_NODES_UP_TO:
            try:
                return self._range(feature, render(query, self.spec.node_label, None, rate_window), start, end, step)
            except PrometheusApiClientException as err:
                if not too_many_samples(err):
                    raise
                M.PROMETHEUS_CHUNKED.labels(feature).inc()
        return self._chunked(feature, query, nodes, start, end, step, rate_window)

    def _chunked(
        self, feature: str, query: str, nodes: list[str], start: float, end: float, step: float, rate_window: float
    ) -> list[Series]:
        try:
            return self._range(feature, render(query, self.spec.node_label, nodes, rate_window), start, end, step)
        except PrometheusApiClientException as err:
            if not too_many_samples(err):
                raise
            if len(nodes) <= 1:
                raise PrometheusApiClientException(
                    "over Prometheus' sample limit even for one node: raise its --query.max-samples, or use a model with a shorter window"
                ) from err
            M.PROMETHEUS_CHUNKED.labels(feature).inc()
            half = len(nodes) // 2
            return [
                *self._chunked(feature, query, nodes[:half], start, end, step, rate_window),
                *self._chunked(feature, query, nodes[half:], start, end, step, rate_window),
            ]

    def _range(self, feature: str, promql: str, start: float, end: float, step: float) -> list[Series]:
        t0 = time.perf_counter()
        try:
            return self.client.query_range(promql, start, end, format_duration(step))
        finally:
            M.PROMETHEUS_QUERY_SECONDS.labels(feature).observe(time.perf_counter() - t0)


RECORDED_FEATURE_LABEL = "feature"  # the label of a recorded series that names the feature


def recorded_query(series: str, features: list[str]) -> str:
    """A query of the recorded series for ``features`` (``{node}`` still to render)."""
    names = "|".join(promql_regex_literal(f) for f in features)
    return f'{series}{{{RECORDED_FEATURE_LABEL}=~"{names}",{{node}}}}'


def by_feature(series: list[Series], features: list[str]) -> dict[str, list[Series]]:
    """The recorded series grouped by their feature label (only the features asked for)."""
    groups: dict[str, list[Series]] = {name: [] for name in features}
    for s in series:
        name = s.metric.get(RECORDED_FEATURE_LABEL)
        if name in groups:
            groups[name].append(s)
    return groups


def too_many_samples(err: Exception) -> bool:
    """Prometheus' answer when a query would exceed --query.max-samples (HTTP 422)."""
    return "too many samples" in str(err)


def fill(out: np.ndarray, series: list[Series], index: dict[str, int], times: np.ndarray, step: float, label: str) -> bool:
    """Write each series' samples into out[W, H]; False when no selected node had any.

    A sample that is not a (time, number) pair is a gap, not an error. Two series for one
    node (a query that does not aggregate ``by (node)``) leave that node without data for
    the feature: either value could be the wrong one."""
    seen: set[int] = set()
    ambiguous: set[int] = set()
    rows: list[tuple[int, list[Any]]] = []
    for s in series:
        h = index.get(s.metric.get(label, ""))
        if h is None:
            continue
        if h in seen:
            ambiguous.add(h)
            continue
        seen.add(h)
        rows.append((h, s.values))
    for h in ambiguous:
        out[:, h] = np.nan
    rows = [(h, v) for h, v in rows if h not in ambiguous]
    if not rows:
        return False
    w, value, node = samples_of(rows, float(times[0]), step)
    ok = (w >= 0) & (w < len(times)) & np.isfinite(value)
    out[w[ok], node[ok]] = value[ok]
    return bool(ok.any())


def samples_of(rows: list[tuple[int, list[Any]]], t0: float, step: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(window index, value, node index) of every [time, "value"] pair of every node, in one
    numpy conversion (thousands of nodes per query; one per node cost more than the rest of
    the read); a malformed response is read node by node, its bad pairs dropped."""
    flat = [pair for _, values in rows for pair in values]
    try:
        arr = as_pairs(flat)
        node = np.repeat(np.array([h for h, _ in rows], dtype=np.int64), [len(v) for _, v in rows])
    except (TypeError, ValueError):
        parts = [(h, good_pairs(values)) for h, values in rows]
        arr = np.concatenate([pairs for _, pairs in parts])
        node = np.concatenate([np.full(len(pairs), h, dtype=np.int64) for h, pairs in parts])
    return np.rint((arr[:, 0] - t0) / step).astype(np.int64), arr[:, 1], node


def as_pairs(values: list[Any]) -> np.ndarray:
    """[N, 2] (time, value) of N samples; ValueError or TypeError unless every one is a pair of numbers."""
    arr = np.asarray(values, dtype=np.float64).reshape(-1, 2)
    if len(arr) != len(values):
        raise ValueError("not pairs")
    return arr


def good_pairs(values: list[Any]) -> np.ndarray:
    """[N, 2] of one series' samples, its malformed ones dropped."""
    try:
        return as_pairs(values)
    except (TypeError, ValueError):
        good = []
        for sample in values:
            try:
                ts, raw = sample
                good.append((float(ts), float(raw)))
            except (TypeError, ValueError):
                continue
        return np.asarray(good, dtype=np.float64).reshape(-1, 2)


def describe(err: Exception) -> str:
    text = str(err).splitlines()[0] if str(err) else type(err).__name__
    return f"{type(err).__name__}: {unquote(text)[:300]}"


def unreachable_message(err: Exception, url: str, timeout: float) -> str:
    """Why Prometheus could not be reached, in words, instead of requests' nested, URL-encoded repr."""
    import requests

    chain: list[BaseException] = []
    cause: BaseException | None = err
    while cause is not None and len(chain) < 10:
        chain.append(cause)
        nested = getattr(cause, "reason", None)
        if not isinstance(nested, BaseException) and cause.args and isinstance(cause.args[0], BaseException):
            nested = cause.args[0]
        cause = nested if isinstance(nested, BaseException) and nested not in chain else cause.__cause__
    names = " ".join(type(c).__name__ for c in chain)
    if "NameResolutionError" in names or "gaierror" in names:
        why = "its host name does not resolve"
    elif isinstance(err, requests.exceptions.Timeout) or "Timeout" in names:
        why = f"no answer within spec.prometheus.timeout ({format_duration(timeout)})"
    elif "SSLError" in names:
        why = "the TLS handshake failed (spec.prometheus.caFile, or insecureSkipVerify for a test cluster)"
    elif "NewConnectionError" in names or "ConnectionRefused" in names:
        why = "the connection was refused (nothing listens there)"
    else:
        why = describe(err)
    return f"cannot reach Prometheus at {url}: {why}; check spec.prometheus.url"
