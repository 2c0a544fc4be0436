"""One Prometheus range query over HTTP, its answer decoded straight into numbers.

prometheus-api-client's ``custom_query_range`` decodes an answer with the standard
library's json into dicts, lists and one string per sample, which ``float()`` then reads
again: every sample became three Python objects. At 5,000 nodes that decoding held the GIL
for half of the operator's busy time, and it was 0.40 CPU-seconds of a 0.64 s read of 16
features on an idle machine. Here the answer is decoded by msgspec into typed structs, each
sample a pair of floats, in one pass over the bytes. The client library still sets up the
connection: PrometheusConnect is given the session (TLS settings made here), mounts its
retries on it and keeps the URL and headers this reader posts with.

An answer msgspec will not read as numbers (a sample that is not a pair, an empty value,
``+Inf``, which it does not parse) is decoded again by the standard library, and
``node_metrics.fill`` drops its bad samples one by one, as before.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import msgspec
import requests
from prometheus_api_client import PrometheusApiClientException, PrometheusConnect

log = logging.getLogger("ftmoe.operator.prometheus_range")


class Series(msgspec.Struct):
    """One series of a range query's answer: its labels and its (time, value) samples."""

    metric: dict[str, str] = {}
    values: list[tuple[float, float]] = []


class _Matrix(msgspec.Struct):
    result: list[Series] = []


class _Answer(msgspec.Struct):
    data: _Matrix = msgspec.field(default_factory=_Matrix)


_DECODER = msgspec.json.Decoder(_Answer, strict=False)  # strict=False: "0.5" -> 0.5, as Prometheus writes values as strings


def as_series(result: list[Any]) -> list[Series]:
    """A query's result as Series, whether decoded here or by the standard library (dicts,
    whose samples are left as they came, for ``fill`` to read or drop)."""
    return [s if isinstance(s, Series) else Series((s or {}).get("metric") or {}, (s or {}).get("values") or []) for s in result]


def decode(body: bytes) -> list[Series]:
    """The series of a query_range answer's body."""
    try:
        return _DECODER.decode(body).data.result
    except msgspec.ValidationError as err:  # JSON, but not all numbers where numbers belong
        log.debug("Prometheus answer not all numbers (%s); reading it sample by sample", err)
    except msgspec.DecodeError as err:
        raise PrometheusApiClientException(f"the answer is not JSON ({err}): {body[:120]!r}") from err
    try:
        result = json.loads(body)["data"]["result"]
        if not isinstance(result, list):
            raise TypeError(f"data.result is a {type(result).__name__}")
        return as_series(result)
    except (KeyError, TypeError, AttributeError) as err:
        raise PrometheusApiClientException(f"the answer is not a range query's ({err}): {body[:120]!r}") from err


class RangeReader:
    """Posts range queries through a PrometheusConnect's own session."""

    def __init__(self, client: PrometheusConnect, session: requests.Session, timeout: float):
        self.client, self.session, self.timeout = client, session, timeout

    def query_range(self, query: str, start: float, end: float, step: str) -> list[Series]:
        # In the body, not the URL: a node matcher for hundreds of nodes does not fit in a URL. Whole
        # seconds, as prometheus-api-client sends them: whole-second timestamps in the answer are
        # shorter to read, and node_metrics.fill places each sample on the nearest step anyway.
        response = self.session.post(
            f"{self.client.url}/api/v1/query_range",
            data={"query": query, "start": str(round(start)), "end": str(round(end)), "step": step},
            headers=self.client.headers,
            timeout=self.timeout,
        )
        if response.status_code != 200:
            raise PrometheusApiClientException(f"HTTP Status Code {response.status_code} ({response.content!r})")
        return decode(response.content)
